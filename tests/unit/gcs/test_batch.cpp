// Batched writes (OpKind::kBatch): several ops on one shard as one write.
// Applied in order on every replica, one code per op, published to
// subscribers, carried through state transfer, refused when malformed.
#include <gtest/gtest.h>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::oid;
using testing::task;

/// Keys of `shard`: object ids whose hash lands there.
std::vector<ObjectId> keys_of(const GcsLayout& l, TableId t, int shard, size_t n,
                              uint64_t from = 1) {
  std::vector<ObjectId> out;
  for (uint64_t s = from; out.size() < n; ++s)
    if (l.shard_of(t, encode_key<TaskTable>(oid(s))) == shard) out.push_back(oid(s));
  return out;
}

WriteOp put_task(const ObjectId& id, const TaskRecord& rec) {
  return make_op(OpKind::kPut, TableId::kTasks, encode_key<TaskTable>(id),
                 encode_record<TaskTable>(rec));
}

WriteOp set_state(const ObjectId& id, TaskState st, int32_t node) {
  WriteOp op = make_op(OpKind::kSetTaskState, TableId::kTasks, encode_key<TaskTable>(id));
  op.task_state = st;
  op.node = node;
  return op;
}

WriteOp add_location(const ObjectId& id, int32_t rank) {
  WriteOp op = make_op(OpKind::kAddLocation, TableId::kObjects, encode_key<ObjectTable>(id));
  op.rank = rank;
  op.size = 100;
  op.owner = 0;
  return op;
}

std::optional<OpResult> write(Cluster& c, uint32_t shard, WriteOp op) {
  std::optional<OpResult> out;
  c.client().write(shard, std::move(op), [&](const OpResult& r, uint64_t) { out = r; });
  c.run_until([&] { return out.has_value(); });
  return out;
}

TEST(GcsBatch, AppliesEveryOpInOrderOnEveryReplica) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  const auto ids = keys_of(c.layout, TableId::kTasks, 0, 3);
  auto r = write(c, 0,
                 make_batch({put_task(ids[0], task("f")), put_task(ids[1], task("g")),
                             set_state(ids[0], TaskState::kFinished, 4),
                             set_state(ids[2], TaskState::kFailed, 1),  // no such row
                             add_location(oid(77), 3)}));
  ASSERT_TRUE(r.has_value());
  auto codes = batch_codes(*r);
  ASSERT_TRUE(codes) << codes.status().to_string();
  EXPECT_EQ(*codes, (std::vector<Errc>{Errc::kOk, Errc::kOk, Errc::kOk, Errc::kNotFound,
                                       Errc::kOk}));
  // One write: one sequence number on every replica.
  c.run_for(100'000);
  for (int s : {100, 101, 102}) {
    EXPECT_EQ(c.server(s).shard_status(0).applied, 1u) << s;
    const ShardStore* st = c.server(s).store(0);
    ASSERT_NE(st, nullptr);
    const TaskRecord* t = st->tasks.find(ids[0]);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->state, TaskState::kFinished);
    EXPECT_EQ(t->node, 4);
    EXPECT_EQ(st->tasks.find(ids[2]), nullptr);
    ASSERT_NE(st->objects.find(oid(77)), nullptr);
  }
  auto got = c.get<TaskTable>(ids[1]);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->function_name, "g");
}

TEST(GcsBatch, RetriedBatchIsAppliedOnce) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  // Lose every reply: the client retries until the network heals.
  c.net.hold([](const testing::Envelope& e) { return e.kind() == MsgKind::kReply; });
  std::optional<OpResult> out;
  c.client().write(0, make_batch({add_location(oid(5), 1), add_location(oid(5), 2)}),
                   [&](const OpResult& r, uint64_t) { out = r; });
  c.run_for(300'000);
  EXPECT_FALSE(out.has_value());
  c.net.release_held();
  ASSERT_TRUE(c.run_until([&] { return out.has_value(); }));
  EXPECT_TRUE(batch_codes(*out));
  c.run_for(100'000);
  for (int s : {100, 101, 102}) EXPECT_EQ(c.server(s).shard_status(0).applied, 1u) << s;
  auto row = c.get<ObjectTable>(oid(5));
  ASSERT_TRUE(row);
  EXPECT_EQ(row->locations, (std::vector<int32_t>{1, 2}));
}

TEST(GcsBatch, SubscribersHearTheLastStateOfEachRow) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  std::vector<ObjectRecord> seen;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(1).subscribe<ObjectTable>(
        oid(9),
        [&](const ObjectId&, const std::optional<ObjectRecord>& row, uint64_t) {
          ASSERT_TRUE(row.has_value());
          seen.push_back(*row);
        },
        d);
  }));
  std::vector<NodeRank> nodes_seen;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(1).subscribe_all<NodeTable>(
        [&](const NodeRank& r, const std::optional<NodeRecord>&, uint64_t) {
          nodes_seen.push_back(r);
        },
        d);
  }));
  NodeRecord nr;
  nr.alive = false;
  auto r = write(c, 0,
                 make_batch({add_location(oid(9), 3), add_location(oid(9), 5),
                             add_location(oid(10), 1),  // nobody listens
                             make_op(OpKind::kPut, TableId::kNodes, encode_key<NodeTable>(6),
                                     encode_record<NodeTable>(nr))}));
  ASSERT_TRUE(r && batch_codes(*r));
  c.run_for(100'000);
  ASSERT_EQ(seen.size(), 1u);  // one notification per row and batch: its last state
  EXPECT_EQ(seen[0].locations, (std::vector<int32_t>{3, 5}));
  EXPECT_EQ(nodes_seen, (std::vector<NodeRank>{6}));
}

TEST(GcsBatch, ASpareGetsBatchesThroughStateTransferAndTheNewTailPublishes) {
  Cluster c({.gcs = 4, .replicas = 3, .clients = 2});  // chain 100..102, spare 103
  std::vector<ObjectRecord> seen;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(1).subscribe<ObjectTable>(
        oid(3),
        [&](const ObjectId&, const std::optional<ObjectRecord>& row, uint64_t) {
          if (row) seen.push_back(*row);
        },
        d);
  }));
  for (uint64_t i = 1; i <= 20; ++i)
    ASSERT_TRUE(write(c, 0, make_batch({add_location(oid(i), 1), add_location(oid(i), 2)})));
  // The tail dies with a batch applied at the middle but not yet at the tail.
  c.net.hold([](const testing::Envelope& e) { return e.dst == 102; });
  std::optional<OpResult> last;
  c.client(0).write(0, make_batch({add_location(oid(3), 7)}),
                    [&](const OpResult& r, uint64_t) { last = r; });
  c.deliver_all();
  c.server(102).set_silent(true);
  c.net.release_held();
  ASSERT_TRUE(c.run_until([&] { return last.has_value() && c.settled(0, 3); }));
  EXPECT_TRUE(batch_codes(*last));
  EXPECT_TRUE(c.config(0).contains(103));
  const ShardStore* spare = c.server(103).store(0);
  ASSERT_NE(spare, nullptr);
  for (uint64_t i = 1; i <= 20; ++i) {
    const ObjectRecord* row = spare->objects.find(oid(i));
    ASSERT_NE(row, nullptr) << i;
    EXPECT_EQ(row->locations, (i == 3 ? std::vector<int32_t>{1, 2, 7} : std::vector<int32_t>{1, 2}));
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().locations, (std::vector<int32_t>{1, 2, 7}));
}

TEST(GcsBatch, MalformedBatchesGetErrorRepliesAndChangeNothing) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});  // two shards
  const auto s0 = keys_of(c.layout, TableId::kTasks, 0, 1);
  const auto s1 = keys_of(c.layout, TableId::kTasks, 1, 1);
  // A key of the other shard.
  auto r = write(c, 0, make_batch({put_task(s0[0], task("a")), put_task(s1[0], task("b"))}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::kInvalidArgument) << r->message;
  // Empty, nested, a subscription inside, a bad sub-op.
  r = write(c, 0, make_batch({}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::kInvalidArgument);
  r = write(c, 0, make_batch({make_batch({put_task(s0[0], task("a"))})}));
  ASSERT_TRUE(r);
  EXPECT_NE(r->code, Errc::kOk);
  r = write(c, 0, make_batch({make_op(OpKind::kSubscribe, TableId::kTasks, {})}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::kInvalidArgument);
  r = write(c, 0, make_batch({make_op(OpKind::kPut, TableId::kTasks, Bytes(3), Bytes(1))}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, Errc::kInvalidArgument);
  // Sub-ops outside a batch (they cannot travel, but validate() says so).
  WriteOp odd = put_task(s0[0], task("a"));
  odd.ops.push_back(put_task(s0[0], task("b")));
  EXPECT_EQ(validate(odd).code(), Errc::kInvalidArgument);
  // A batch whose count claims more ops than its bytes hold is malformed.
  Bytes cut = encode(WriteRequest{999, 1, 1, 0, make_batch({put_task(s0[0], task("a"))})});
  cut.resize(cut.size() - 2);
  EXPECT_FALSE(c.server(100).handle(0, cut));
  c.run_for(100'000);
  for (auto& [rank, s] : c.servers) {
    for (int shard = 0; shard < 2; ++shard)
      EXPECT_EQ(s->shard_status(shard).applied, 0u) << "rank " << rank << " shard " << shard;
  }
}

TEST(GcsBatch, CodecRoundTripsBatchesAndNotices) {
  WriteOp b = make_batch({put_task(oid(1), task("f")), set_state(oid(2), TaskState::kRunning, 3),
                          add_location(oid(4), 2)});
  const Bytes m = encode(WriteRequest{7, 1, 1, 0, b});
  WriteRequest back;
  ASSERT_TRUE(decode(m, back));
  EXPECT_EQ(back.op, b);
  LogEntry e;
  e.seq = 3;
  e.client = 1;
  e.op = b;
  e.result = {Errc::kOk, "", true, Bytes{std::byte{0}, std::byte{0}, std::byte{4}}};
  e.notify = true;
  e.notices = {BatchNotice{TableId::kObjects, encode_key<ObjectTable>(oid(4)), true, Bytes(5)}};
  Writer w;
  put_entry(w, e, /*with_outcome=*/true);
  const Bytes eb = w.take();
  Reader r(eb);
  LogEntry e2;
  get_entry(r, e2, /*with_outcome=*/true);
  ASSERT_TRUE(r.finish("entry"));
  EXPECT_EQ(e2.op, e.op);
  EXPECT_EQ(e2.notices, e.notices);
  auto codes = batch_codes(e2.result);
  ASSERT_TRUE(codes);
  EXPECT_EQ(codes->size(), 3u);
  EXPECT_EQ((*codes)[2], Errc::kNotFound);
}

}  // namespace
}  // namespace prism::gcs
