// Corrupt counts in the runtime's own messages (runtime/protocol.hpp): a
// decoder refuses a count the message cannot hold before it builds anything
// for it, so a flipped length field costs an error, never a large allocation.
// (Boost-encoded user values: serialization_test.cpp. GCS messages:
// gcs/test_codec.cpp.)
#include <gtest/gtest.h>

#include <cstring>

#include "common/codec.hpp"
#include "runtime/protocol.hpp"

using namespace prism;

namespace {

std::vector<std::byte> encoded(const runtime::TaskSpec& t) {
  Writer w;
  runtime::encode_task(t, w);
  return w.take();
}

void put_u32(std::vector<std::byte>& b, size_t at, uint32_t v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

runtime::TaskSpec group_member_task() {
  runtime::TaskSpec t;
  t.id = {0, 0, 1};
  t.function = "f";
  t.args.resize(2);
  t.args[0].value.assign(8, std::byte{1});
  t.args[1].kind = runtime::WireArg::Kind::kValueWithRefs;
  t.args[1].value.assign(4, std::byte{2});
  t.args[1].contained = {{1, 0, 2}, {1, 0, 3}};
  t.group = {0, 0, 9};
  t.group_nodes = {1, 2};
  t.attempt = 3;
  return t;
}

// True if nothing `t` holds is larger than `bytes` could have described.
void expect_within(const runtime::TaskSpec& t, size_t bytes, size_t at) {
  EXPECT_LE(t.args.size(), bytes) << "patched at " << at;
  EXPECT_LE(t.group_nodes.size() * sizeof(int32_t), bytes) << "patched at " << at;
  for (const auto& a : t.args) {
    EXPECT_LE(a.value.size(), bytes) << "patched at " << at;
    EXPECT_LE(a.contained.size() * 16, bytes) << "patched at " << at;
  }
}

}  // namespace

TEST(DecoderLimits, ArgumentCountBeyondTheMessageIsRefusedBeforeResizing) {
  Writer w;  // a task spec that claims 1000 arguments (under kMaxArgs) and has none
  runtime::encode_object_id({0, 0, 1}, w);
  w.put_string("f");
  w.put_string("f");
  runtime::encode_resource_demand({}, w);
  w.put<uint32_t>(1000);
  Reader r(w.buffer());
  runtime::TaskSpec t;
  const Status st = runtime::decode_task(r, t);
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_NE(st.message().find("argument count 1000"), std::string::npos) << st.message();
  EXPECT_TRUE(t.args.empty());  // no WireArg was built for the claimed count
}

TEST(DecoderLimits, GroupSizeBeyondTheMessageIsRefusedBeforeResizing) {
  auto b = encoded(group_member_task());
  // The tail: member count, 2 members, the label's length (empty), attempt.
  const size_t count_at = b.size() - 4 - 4 - 2 * 4 - 4;
  put_u32(b, count_at, 1u << 20);  // 4 MB of members in a 100-byte message
  Reader r(b);
  runtime::TaskSpec t;
  const Status st = runtime::decode_task(r, t);
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_NE(st.message().find("1048576 members"), std::string::npos) << st.message();
  EXPECT_TRUE(t.group_nodes.empty());
}

TEST(DecoderLimits, EveryCorruptCountBuildsNoMoreThanTheMessageHolds) {
  // Every 4-byte window of a task spec and of a task result overwritten
  // with large counts: whatever field it hits, the decoder fails or
  // decodes something no larger than the message.
  const auto task = encoded(group_member_task());
  runtime::ObjectValue v;
  v.bytes.assign(std::span<const std::byte>(task));
  Writer rw;
  const ObjectId refs[] = {{1, 0, 2}};
  runtime::encode_task_result({2, 0, 7}, v, refs, rw, 1);
  const auto result = rw.take();
  for (uint32_t big : {0xFFFFFFFFu, 1u << 20, 1000u, 100u}) {
    for (size_t at = 0; at + 4 <= task.size(); ++at) {
      auto b = task;
      put_u32(b, at, big);
      Reader r(b);
      runtime::TaskSpec t;
      (void)runtime::decode_task(r, t);
      expect_within(t, b.size(), at);
    }
    for (size_t at = 1; at + 4 <= result.size(); ++at) {
      auto b = result;
      put_u32(b, at, big);
      Reader r(std::span<const std::byte>(b).subspan(1));
      ObjectId id;
      runtime::ObjectValue u;
      std::vector<ObjectId> contained;
      (void)runtime::decode_task_result(r, id, u, contained);
      EXPECT_LE(u.bytes.size(), b.size()) << "patched at " << at;
      EXPECT_LE(contained.size() * 16, b.size()) << "patched at " << at;
    }
  }
}

TEST(DecoderLimits, BatchCountBeyondTheMessageIsRefusedWhole) {
  runtime::MessageBatch batch(runtime::MessageKind::kSubmitTasks);
  batch.begin().put<uint32_t>(7);
  batch.end();
  auto b = batch.take().take();
  put_u32(b, 1, 0xFFFFFFFF);  // the count
  Reader r(std::span<const std::byte>(b).subspan(1));
  size_t bodies = 0;
  const Status st = runtime::for_each_batched(r, [&](std::span<const std::byte>) { ++bodies; });
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_EQ(bodies, 0u);  // refused whole: no body of a malformed batch is handled
}
