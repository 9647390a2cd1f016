#include <gtest/gtest.h>

#include "common/codec.hpp"
#include "runtime/protocol.hpp"

using namespace prism;

TEST(Codec, RoundTripsScalarsAndStrings) {
  Writer w;
  w.put<uint32_t>(7);
  w.put<double>(2.5);
  w.put_string("hello");
  Reader r(w.buffer());
  EXPECT_EQ(r.get<uint32_t>(), 7u);
  EXPECT_EQ(r.get<double>(), 2.5);
  EXPECT_EQ(r.get_string(), "hello");
  EXPECT_TRUE(r.finish("test").is_ok());
}

TEST(Codec, TruncationIsAnErrorNotACrash) {
  Writer w;
  w.put_string("a long enough string");
  auto bytes = w.take();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Reader r(std::span<const std::byte>(bytes.data(), cut));
    (void)r.get_string();
    Status st = r.finish("string");
    EXPECT_EQ(st.code(), Errc::kMalformedMessage) << "cut at " << cut;
  }
}

TEST(Codec, TrailingBytesAreReported) {
  Writer w;
  w.put<uint8_t>(1);
  w.put<uint8_t>(2);
  Reader r(w.buffer());
  (void)r.get<uint8_t>();
  Status st = r.finish("pair");
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_NE(st.message().find("trailing"), std::string::npos);
}

TEST(Protocol, TaskSpecRoundTrip) {
  runtime::TaskSpec t;
  t.id = {3, 0, 42};
  t.function = "square";
  t.name = "sq";
  t.resources.num_cpus = 2;
  t.resources.memory = 1 << 20;
  t.resources.custom["fpga"] = 1;
  t.args.resize(3);
  t.args[0].value = {std::byte{1}, std::byte{2}};
  t.args[1].kind = runtime::WireArg::Kind::kRef;
  t.args[1].ref = {1, 0, 9};
  t.args[2].kind = runtime::WireArg::Kind::kRemoteValue;
  t.args[2].location = {2, 64};
  Writer w;
  encode_task(t, w);
  Reader r(w.buffer());
  runtime::TaskSpec u;
  ASSERT_TRUE(decode_task(r, u).is_ok());
  EXPECT_EQ(u.id, t.id);
  EXPECT_EQ(u.resources.num_cpus, 2);
  EXPECT_EQ(u.resources.memory, 1u << 20);
  EXPECT_EQ(u.resources.custom.at("fpga"), 1);
  EXPECT_EQ(u.function, "square");
  EXPECT_EQ(u.args[0].value, t.args[0].value);
  EXPECT_EQ(u.args[1].ref, t.args[1].ref);
  EXPECT_EQ(u.args[2].location.size, 64u);
}

TEST(Protocol, EveryTruncatedTaskSpecIsRejected) {
  runtime::TaskSpec t;
  t.id = {0, 0, 1};
  t.function = "f";
  t.args.resize(1);
  t.args[0].value.assign(10, std::byte{5});
  Writer w;
  encode_task(t, w);
  auto bytes = w.take();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Reader r(std::span<const std::byte>(bytes.data(), cut));
    runtime::TaskSpec u;
    EXPECT_FALSE(decode_task(r, u).is_ok()) << "cut at " << cut;
  }
}

TEST(Protocol, BadArgumentKindIsRejected) {
  Writer w;
  runtime::encode_object_id({0, 0, 1}, w);
  w.put_string("f");
  w.put_string("f");
  w.put(1.0);          // num_cpus
  w.put(0.0);          // num_gpus
  w.put<uint64_t>(0);  // memory
  w.put<uint32_t>(0);  // custom resources
  w.put<uint32_t>(1);  // arguments
  w.put<uint8_t>(9);   // no such kind
  Reader r(w.buffer());
  runtime::TaskSpec u;
  Status st = decode_task(r, u);
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_NE(st.message().find("argument kind"), std::string::npos);
}

TEST(Protocol, SpillHeaderAndNodeLoadRoundTrip) {
  scheduler::TaskRequest q;
  q.num_cpus = 2;
  q.num_gpus = 0.5;
  q.memory = 123;
  q.custom["fpga"] = 1;
  q.data_node = 3;
  q.data_bytes = 1 << 27;
  q.name = "train";
  Writer w;
  runtime::encode_spill_header(q, w);
  Reader r(w.buffer());
  scheduler::TaskRequest u;
  ASSERT_TRUE(runtime::decode_spill_header(r, u).is_ok());
  EXPECT_EQ(u.num_cpus, 2);
  EXPECT_EQ(u.num_gpus, 0.5);
  EXPECT_EQ(u.custom.at("fpga"), 1);
  EXPECT_EQ(u.data_node, 3);
  EXPECT_EQ(u.data_bytes, 1u << 27);
  EXPECT_EQ(u.name, "train");

  scheduler::NodeLoad l{4, 2, 77, 3, 9, true};
  Writer w2;
  runtime::encode_node_load(l, w2);
  auto bytes = w2.take();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {  // every truncation is an error
    Reader rc(std::span<const std::byte>(bytes.data(), cut));
    scheduler::NodeLoad x;
    EXPECT_FALSE(runtime::decode_node_load(rc, x).is_ok());
  }
  Reader r2(bytes);
  scheduler::NodeLoad m;
  ASSERT_TRUE(runtime::decode_node_load(r2, m).is_ok());
  EXPECT_EQ(m.queued, 4u);
  EXPECT_EQ(m.received_from_global, 77u);
  EXPECT_EQ(m.movable, 3u);
  EXPECT_EQ(m.pushes_received, 9u);
  EXPECT_TRUE(m.ask_ahead);
  bytes.back() = std::byte{2};  // the ask-ahead flag is 0 or 1
  Reader r2b(bytes);
  EXPECT_EQ(runtime::decode_node_load(r2b, m).code(), Errc::kMalformedMessage);

  scheduler::NodeLoad bad{1, 0, 0, 2, 0};  // more movable than queued
  Writer w3;
  runtime::encode_node_load(bad, w3);
  Reader r3(w3.buffer());
  EXPECT_EQ(runtime::decode_node_load(r3, m).code(), Errc::kMalformedMessage);

  Writer w4;
  runtime::encode_steal_order({0, 5, 64}, w4);
  Reader r4(w4.buffer());
  scheduler::StealOrder o;
  ASSERT_TRUE(runtime::decode_steal_order(r4, o).is_ok());
  EXPECT_EQ(o.thief, 5);
  EXPECT_EQ(o.count, 64u);
  Writer w5;
  runtime::encode_steal_order({0, -1, 64}, w5);
  Reader r5(w5.buffer());
  EXPECT_EQ(runtime::decode_steal_order(r5, o).code(), Errc::kMalformedMessage);
}

// Every sender of TaskResult (executor, global scheduler) goes through
// encode_task_result; the owner reads it with decode_task_result.
TEST(Protocol, TaskResultRoundTripsWithAndWithoutContainedRefs) {
  runtime::ObjectValue v;
  v.kind = runtime::ObjectValue::Kind::kError;
  v.error = "global scheduler: no node";
  for (std::vector<ObjectId> refs : {std::vector<ObjectId>{}, std::vector<ObjectId>{{1, 0, 5}}}) {
    Writer w;
    runtime::encode_task_result({2, 0, 7}, v, refs, w);
    Reader r(w.buffer());
    ASSERT_EQ(r.get<runtime::MessageKind>(), runtime::MessageKind::kTaskResult);
    ObjectId id;
    runtime::ObjectValue u;
    std::vector<ObjectId> contained;
    ASSERT_TRUE(runtime::decode_task_result(r, id, u, contained).is_ok());
    EXPECT_EQ(id, (ObjectId{2, 0, 7}));
    EXPECT_EQ(u.error, v.error);
    EXPECT_EQ(contained, refs);
  }
  Writer bad;  // a corrupt count is refused before anything is allocated for it
  runtime::encode_object_id({2, 0, 7}, bad);
  runtime::encode_object_value(v, bad);
  bad.put<uint32_t>(0xFFFFFFFF);
  Reader r(bad.buffer());
  ObjectId id;
  runtime::ObjectValue u;
  std::vector<ObjectId> contained;
  EXPECT_EQ(runtime::decode_task_result(r, id, u, contained).code(), Errc::kMalformedMessage);
}

TEST(Protocol, MessageBatchRoundTripsAndRefusesTruncation) {
  runtime::MessageBatch batch(runtime::MessageKind::kSubmitTasks);
  for (uint32_t i = 0; i < 3; ++i) {
    Writer& w = batch.begin();
    for (uint32_t k = 0; k <= i; ++k) w.put<uint32_t>(100 + k);
    batch.end();
  }
  EXPECT_EQ(batch.count(), 3u);
  Writer msg = batch.take();
  EXPECT_EQ(batch.count(), 0u);
  auto bytes = msg.take();
  Reader r(bytes);
  EXPECT_EQ(r.get<runtime::MessageKind>(), runtime::MessageKind::kSubmitTasks);
  std::vector<size_t> sizes;
  ASSERT_TRUE(runtime::for_each_batched(r, [&](std::span<const std::byte> body) {
                sizes.push_back(body.size());
                Reader b(body);
                EXPECT_EQ(b.get<uint32_t>(), 100u);
              }).is_ok());
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 8, 12}));

  // Cut short: refused whole, no body delivered.
  bytes.resize(bytes.size() - 2);
  Reader cut(bytes);
  (void)cut.get<runtime::MessageKind>();
  int delivered = 0;
  auto st = runtime::for_each_batched(cut, [&](std::span<const std::byte>) { ++delivered; });
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_EQ(delivered, 0);
}

// The actor and lost-object messages: each decodes to what was encoded, and
// every truncation, trailing byte or flag byte other than 0/1 is refused.
TEST(Protocol, ActorAndLostObjectMessagesRoundTripAndRefuseMalformedOnes) {
  auto bytes_of = [](const auto& m) {
    Writer w;
    runtime::encode_message(m, w);
    auto b = w.take();
    return std::vector<std::byte>(b.begin() + 1, b.end());  // after the kind byte
  };
  auto refuses_every_cut_and_extension = [](const std::vector<std::byte>& b, auto m) {
    for (size_t cut = 0; cut < b.size(); ++cut) {
      Reader r(std::span<const std::byte>(b.data(), cut));
      EXPECT_FALSE(runtime::decode_message(r, m).is_ok()) << "cut at " << cut;
    }
    auto longer = b;
    longer.push_back(std::byte{0});
    Reader r(longer);
    EXPECT_FALSE(runtime::decode_message(r, m).is_ok());
  };

  const runtime::KillActorMsg kill{{1, 2, 3}, "was killed by prism::kill", true};
  auto b = bytes_of(kill);
  runtime::KillActorMsg k;
  Reader rk(b);
  ASSERT_TRUE(runtime::decode_message(rk, k).is_ok());
  EXPECT_EQ(k.actor, kill.actor);
  EXPECT_EQ(k.reason, kill.reason);
  EXPECT_TRUE(k.crash);
  refuses_every_cut_and_extension(b, k);
  b.back() = std::byte{2};  // the crash flag
  Reader rk2(b);
  auto st = runtime::decode_message(rk2, k);
  EXPECT_EQ(st.code(), Errc::kMalformedMessage);
  EXPECT_NE(st.message().find("kill actor"), std::string::npos) << st.message();

  const runtime::ActorDiedMsg died{{1, 2, 3}, "crashed", 4, true};
  b = bytes_of(died);
  runtime::ActorDiedMsg d;
  Reader rd(b);
  ASSERT_TRUE(runtime::decode_message(rd, d).is_ok());
  EXPECT_EQ(d.actor, died.actor);
  EXPECT_EQ(d.reason, "crashed");
  EXPECT_EQ(d.incarnation, 4u);
  EXPECT_TRUE(d.restartable);
  refuses_every_cut_and_extension(b, d);

  const std::vector<std::byte> image(100, std::byte{7});
  const runtime::ActorCheckpointMsg cp{{1, 2, 3}, 2, 40, image};
  b = bytes_of(cp);
  runtime::ActorCheckpointMsg c;
  Reader rc(b);
  ASSERT_TRUE(runtime::decode_message(rc, c).is_ok());
  EXPECT_EQ(c.actor, cp.actor);
  EXPECT_EQ(c.incarnation, 2u);
  EXPECT_EQ(c.calls, 40u);
  EXPECT_TRUE(std::equal(c.image.begin(), c.image.end(), image.begin(), image.end()));
  refuses_every_cut_and_extension(b, c);

  const runtime::ObjectLostMsg lost{{5, 0, 9}, "its spill file is gone"};
  b = bytes_of(lost);
  runtime::ObjectLostMsg l;
  Reader rl(b);
  ASSERT_TRUE(runtime::decode_message(rl, l).is_ok());
  EXPECT_EQ(l.object, lost.object);
  EXPECT_EQ(l.why, lost.why);
  refuses_every_cut_and_extension(b, l);
}
