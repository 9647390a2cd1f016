// Malformed messages and bad requests: error replies or dropped with a
// Status, never a crash, never a state change.
#include <gtest/gtest.h>

#include <random>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::Envelope;
using testing::oid;

/// Sends `msg` from `src` to the head and returns the reply it caused, if any.
std::optional<Reply> ask(Cluster& c, int dst, Bytes msg, Status* handle_status = nullptr) {
  const Status s = c.server(dst).handle(50, msg);
  if (handle_status) *handle_status = s;
  std::optional<Reply> out;
  while (auto e = c.net.take_next()) {
    if (e->dst == 50 && e->kind() == MsgKind::kReply) {
      Reply r;
      EXPECT_TRUE(decode(e->bytes, r));
      out = r;
    } else {
      c.route(*e);
    }
  }
  return out;
}

TEST(GcsMalformed, BadRequestsGetErrorReplies) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  c.deliver_all();
  // Unknown table.
  WriteOp op = make_op(OpKind::kPut, static_cast<TableId>(9), Bytes(16), Bytes(4));
  auto r = ask(c, 100, encode(WriteRequest{1, 1, 1, 0, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->req_id, 1u);
  EXPECT_EQ(r->result.code, Errc::kNotFound);
  // Malformed key (15 bytes for an object id).
  op = make_op(OpKind::kRemove, TableId::kObjects, Bytes(15));
  r = ask(c, 100, encode(WriteRequest{2, 1, 1, 0, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  // Record that does not decode as a task.
  const Bytes key = encode_key<TaskTable>(oid(1));
  const auto shard = static_cast<uint32_t>(c.layout.shard_of(TableId::kTasks, key));
  op = make_op(OpKind::kPut, TableId::kTasks, key, Bytes(3));
  r = ask(c, 100, encode(WriteRequest{3, 1, 1, shard, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  // Location op on the wrong table; node key that is negative.
  op = make_op(OpKind::kAddLocation, TableId::kActors, encode_key<ActorTable>(oid(1)));
  r = ask(c, 100, encode(WriteRequest{4, 1, 1, 0, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  op = make_op(OpKind::kRemove, TableId::kNodes, encode_key<NodeTable>(-1));
  r = ask(c, 100, encode(WriteRequest{5, 1, 1, 0, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  // Shard out of range.
  op = make_op(OpKind::kRemove, TableId::kTasks, key);
  r = ask(c, 100, encode(WriteRequest{6, 1, 1, 7, op}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  // Reads: unknown table, malformed key.
  r = ask(c, 102, encode(ReadRequest{7, 0, ReadKind::kGet, static_cast<TableId>(0), key}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kNotFound);
  r = ask(c, 102, encode(ReadRequest{8, 0, ReadKind::kGet, TableId::kTasks, Bytes(2)}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result.code, Errc::kInvalidArgument);
  // A truncated request whose id is readable is answered too.
  Bytes cut = encode(WriteRequest{9, 1, 1, 0, make_op(OpKind::kRemove, TableId::kTasks, key)});
  cut.resize(cut.size() - 3);
  Status hs;
  r = ask(c, 100, cut, &hs);
  EXPECT_FALSE(hs);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->req_id, 9u);
  EXPECT_EQ(r->result.code, Errc::kMalformedMessage);
  // Nothing was applied.
  for (int s : {100, 101, 102}) EXPECT_EQ(c.server(s).shard_status(0).applied, 0u);
}

TEST(GcsMalformed, ClientSurfacesServerErrors) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  std::optional<OpResult> res;
  c.client().write(0, make_op(OpKind::kPut, static_cast<TableId>(42), Bytes(16), Bytes{}),
                   [&](const OpResult& r, uint64_t) { res = r; });
  ASSERT_TRUE(c.run_until([&] { return res.has_value(); }));
  EXPECT_EQ(res->code, Errc::kNotFound);
  res.reset();
  c.client().read(0, ReadKind::kGet, TableId::kObjects, Bytes(1),
                  [&](const OpResult& r, uint64_t) { res = r; });
  ASSERT_TRUE(c.run_until([&] { return res.has_value(); }));
  EXPECT_EQ(res->code, Errc::kInvalidArgument);
}

TEST(GcsMalformed, ServerToServerMessagesFromStrangersAreDropped) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  c.deliver_all();
  LogEntry e;
  e.seq = 1;
  e.client = 0;
  e.op = make_op(OpKind::kPut, TableId::kNodes, encode_key<NodeTable>(1),
                 encode_record<NodeTable>(NodeRecord{}));
  const Bytes fwd = encode(Forward{0, 1, e});
  EXPECT_FALSE(c.server(101).handle(0, fwd));    // a client rank
  EXPECT_FALSE(c.server(101).handle(102, fwd));  // a GCS rank, not the predecessor
  EXPECT_FALSE(c.server(101).handle(100, encode(Forward{0, 9, e})));  // a future epoch
  EXPECT_FALSE(c.server(100).handle(102, encode(Ack{0, 1, 99})));     // not from the successor
  EXPECT_FALSE(c.server(101).handle(0, encode(StateTransfer{0, 1, Bytes(8)})));
  const Bytes junk(8, std::byte{1});  // claims a long history, then ends
  EXPECT_FALSE(c.server(102).handle(101, encode(StateTransfer{0, 1, junk})));  // garbage state
  EXPECT_FALSE(c.server(100).handle(0, encode(Heartbeat{})));
  // A heartbeat naming non-GCS ranks is ignored.
  Heartbeat hb{{{0, ChainConfig{9, {1, 2}, {1, 1}}}}};
  EXPECT_TRUE(c.server(100).handle(101, encode(hb)));
  EXPECT_EQ(c.server(100).config(0).epoch, 1u);
  // Client messages sent to a server and vice versa.
  EXPECT_FALSE(c.server(100).handle(0, encode(Reply{1, 0, {}})));
  EXPECT_FALSE(c.client().handle(100, encode(Ack{0, 1, 1})));
  c.deliver_all();
  for (int s : {100, 101, 102}) EXPECT_EQ(c.server(s).shard_status(0).applied, 0u);
  EXPECT_TRUE(c.settled(0, 3));
}

TEST(GcsMalformed, FuzzedBytesNeverCrashOrChangeState) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<NodeTable>(1, NodeRecord{}, d); }));
  c.deliver_all();
  std::mt19937_64 rng(7);
  const uint8_t kinds[] = {0x40, 0x41, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x50, 0x51, 0x52, 0x4F, 0x5F};
  for (int i = 0; i < 20000; ++i) {
    Bytes b(rng() % 80);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    if (!b.empty() && i % 4 != 0) b[0] = static_cast<std::byte>(kinds[rng() % std::size(kinds)]);
    // From a non-GCS rank, so heartbeats/forwards cannot reconfigure anything.
    (void)c.server(100 + static_cast<int>(rng() % 3)).handle(7, b);
    (void)c.client().handle(100, b);
  }
  // Replies to the fuzzer's readable request ids go to rank 7: ignore them.
  c.deliver_all();
  for (int s : {100, 101, 102}) EXPECT_EQ(c.server(s).shard_status(0).applied, 1u);
  EXPECT_TRUE(c.settled(0, 3));
  EXPECT_TRUE(c.get<NodeTable>(1).has_value());
}

TEST(GcsMalformed, MalformedClientMessagesAreDropped) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  EXPECT_FALSE(c.client().handle(100, Bytes{}));
  EXPECT_FALSE(c.client().handle(100, Bytes{std::byte{0x50}}));
  // A redirect to ranks outside the GCS group must not poison the view.
  EXPECT_FALSE(c.client().handle(100, encode(Redirect{1, 0, ChainConfig{5, {3}, {5}}})));
  EXPECT_FALSE(c.client().handle(100, encode(Redirect{1, 9, ChainConfig{5, {100}, {1}}})));
  EXPECT_EQ(c.client().view(0).epoch, 1u);
  // A reply for an unknown request is ignored (a duplicate).
  EXPECT_TRUE(c.client().handle(100, encode(Reply{12345, 0, {}})));
}

}  // namespace
}  // namespace prism::gcs
