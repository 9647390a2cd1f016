// Layout derivation, record and message encodings, decoder robustness.
#include <gtest/gtest.h>

#include <random>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::oid;

TEST(GcsLayout, DerivesShardsAndReplicasFromGroupSize) {
  struct Case {
    int g, r_override, shards, replicas, spares;
  } cases[] = {{1, 0, 1, 1, 0}, {2, 0, 1, 2, 0}, {3, 0, 1, 3, 0}, {4, 0, 1, 3, 1},
               {6, 0, 2, 3, 0}, {7, 0, 2, 3, 1}, {5, 2, 2, 2, 1}, {4, 1, 4, 1, 0}};
  for (const auto& c : cases) {
    std::vector<int> ranks;
    for (int i = 0; i < c.g; ++i) ranks.push_back(10 + i);
    auto l = GcsLayout::make(ranks, c.r_override);
    ASSERT_TRUE(l.has_value()) << c.g;
    EXPECT_EQ(l->shards, c.shards) << "G=" << c.g << " R=" << c.r_override;
    EXPECT_EQ(l->replicas, c.replicas) << "G=" << c.g;
    EXPECT_EQ(l->spares().size(), static_cast<size_t>(c.spares)) << "G=" << c.g;
    // Initial chains are disjoint and use distinct ranks.
    std::set<int> used;
    for (int s = 0; s < l->shards; ++s)
      for (int m : l->initial_chain(s).members) EXPECT_TRUE(used.insert(m).second);
  }
}

TEST(GcsLayout, RejectsBadGroups) {
  EXPECT_FALSE(GcsLayout::make({}, 0).has_value());
  EXPECT_FALSE(GcsLayout::make({1, 2}, 3).has_value());
  EXPECT_FALSE(GcsLayout::make({1, 1}, 0).has_value());
  EXPECT_FALSE(GcsLayout::make({-1}, 0).has_value());
  EXPECT_FALSE(GcsLayout::make({1}, -1).has_value());
}

TEST(GcsLayout, FromConfigUsesLastRanks) {
  Config cfg;
  cfg.gcs_ranks = 3;
  cfg.gcs_replicas = 0;
  auto l = GcsLayout::from_config(cfg, 8);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->ranks, (std::vector<int>{5, 6, 7}));
  EXPECT_EQ(l->replicas, 3);
  cfg.gcs_replicas = 1;
  l = GcsLayout::from_config(cfg, 8);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->shards, 3);
  cfg.gcs_ranks = 8;
  EXPECT_FALSE(GcsLayout::from_config(cfg, 8).has_value());
}

TEST(GcsLayout, ShardOfIsDeterministicAndSpreads) {
  auto l = *GcsLayout::make({0, 1, 2, 3}, 1);
  std::vector<int> count(4, 0);
  for (uint64_t i = 1; i <= 4000; ++i) {
    const Bytes k = encode_key<ObjectTable>(oid(i));
    const int s = l.shard_of(TableId::kObjects, k);
    ASSERT_GE(s, 0);
    ASSERT_LT(s, 4);
    EXPECT_EQ(s, l.shard_of(TableId::kObjects, k));
    ++count[static_cast<size_t>(s)];
  }
  for (int c : count) EXPECT_GT(c, 800);
}

TEST(ChainConfig, NeighboursAndOrder) {
  ChainConfig c{3, {4, 5, 6}, {1, 1, 3}};
  EXPECT_EQ(c.head(), 4);
  EXPECT_EQ(c.tail(), 6);
  EXPECT_EQ(c.predecessor(4), -1);
  EXPECT_EQ(c.successor(4), 5);
  EXPECT_EQ(c.predecessor(6), 5);
  EXPECT_EQ(c.successor(6), -1);
  EXPECT_EQ(c.successor(9), -1);
  EXPECT_EQ(c.joined_at(6), 3u);
  EXPECT_EQ(c.joined_at(9), 0u);
  ChainConfig newer{4, {4, 5}, {1, 1}};
  EXPECT_TRUE(supersedes(newer, c));
  EXPECT_FALSE(supersedes(c, newer));
  EXPECT_FALSE(supersedes(c, c));
  // Same epoch: a total order, so exactly one of two conflicting configs wins.
  ChainConfig a{4, {5, 6}, {1, 3}}, b{4, {4, 6}, {1, 3}};
  EXPECT_NE(supersedes(a, b), supersedes(b, a));
}

// ---- records ----------------------------------------------------------------------

TaskRecord sample_task() {
  TaskRecord t;
  t.function_name = "step";
  t.state = TaskState::kRunning;
  t.node = 3;
  t.args = {oid(1), oid(2, 1, 1)};
  t.parent = oid(9, 2);
  t.num_returns = 2;
  return t;
}

NodeRecord sample_node() {
  NodeRecord n;
  n.resources = {{"CPU", 4}, {"GPU", 1}};
  n.available = {{"CPU", 2.5}};
  n.queue_length = 7;
  n.last_heartbeat_us = 123456789;
  n.alive = false;
  return n;
}

template <class Tag>
void expect_round_trip_and_truncation(const typename Tag::Record& v) {
  const Bytes b = encode_record<Tag>(v);
  auto back = decode_record<Tag>(b);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(*back, v);
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_FALSE(decode_record<Tag>(std::span(b).first(n)).has_value()) << "prefix " << n;
  Bytes longer = b;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_record<Tag>(longer).has_value());
}

TEST(GcsRecords, RoundTripAndEveryTruncationFails) {
  expect_round_trip_and_truncation<TaskTable>(sample_task());
  expect_round_trip_and_truncation<ObjectTable>(ObjectRecord{{1, 4, 9}, 1 << 20, 2});
  expect_round_trip_and_truncation<ActorTable>(ActorRecord{"Policy", 5, ActorState::kAlive, 2, "policy", ObjectId{1, 0, 7}});
  expect_round_trip_and_truncation<NodeTable>(sample_node());
}

TEST(GcsRecords, RejectsBadEnumsAndHugeCounts) {
  Bytes b = encode_record<TaskTable>(sample_task());
  // state byte follows the u32 length and the name
  b[4 + 4] = std::byte{9};
  EXPECT_FALSE(decode_record<TaskTable>(b).has_value());

  Writer w;
  w.put<uint32_t>(0xFFFFFFFFu);  // a location count no buffer can hold
  EXPECT_FALSE(decode_record<ObjectTable>(w.buffer()).has_value());

  EXPECT_FALSE(decode_key<NodeTable>(encode_key<NodeTable>(-3)).has_value());
  EXPECT_FALSE(decode_key<ObjectTable>(Bytes(15)).has_value());
  EXPECT_TRUE(decode_key<ObjectTable>(Bytes(16)).has_value());
  EXPECT_EQ(validate_key(static_cast<TableId>(9), Bytes(16)).code(), Errc::kNotFound);
}

// ---- messages ---------------------------------------------------------------------

LogEntry sample_entry() {
  LogEntry e;
  e.seq = 12;
  e.client = 3;
  e.incarnation = 77;
  e.req_id = 5;
  e.ack_floor = 4;
  e.op = make_op(OpKind::kPut, TableId::kTasks, encode_key<TaskTable>(oid(1)),
                 encode_record<TaskTable>(sample_task()));
  e.result = {Errc::kNotFound, "x", true, Bytes{std::byte{1}}};
  e.notify = true;
  e.present = true;
  e.post = Bytes{std::byte{2}, std::byte{3}};
  return e;
}

std::vector<Bytes> every_kind_of_message() {
  std::vector<Bytes> v;
  WriteOp loc = make_op(OpKind::kAddLocation, TableId::kObjects, encode_key<ObjectTable>(oid(3)));
  loc.rank = 2;
  loc.size = 99;
  loc.owner = 1;
  v.push_back(encode(WriteRequest{7, 1, 3, 0, loc}));
  v.push_back(encode(ReadRequest{8, 0, ReadKind::kGet, TableId::kNodes, encode_key<NodeTable>(4)}));
  v.push_back(encode(Reply{9, 3, {Errc::kOk, "", true, Bytes(5)}}));
  v.push_back(encode(Redirect{10, 1, ChainConfig{2, {1, 2}, {1, 2}}}));
  v.push_back(encode(Notify{0, 4, TableId::kActors, Bytes(16), true, Bytes(3)}));
  v.push_back(encode(Heartbeat{{{0, ChainConfig{1, {5, 6}, {1, 1}}}}}));
  LogEntry e = sample_entry();
  v.push_back(encode(Forward{0, 2, e}));
  v.push_back(encode(Ack{0, 2, 11}));
  v.push_back(encode(SyncRequest{0, 2, true, 10}));
  v.push_back(encode(StateTransfer{0, 2, Bytes(40)}));
  return v;
}

template <class M>
Status decode_as(const Bytes& b) {
  M m;
  return decode(b, m);
}

Status decode_any(const Bytes& b) {
  auto k = peek_kind(b);
  if (!k) return k.status();
  switch (*k) {
    case MsgKind::kWriteRequest:
      return decode_as<WriteRequest>(b);
    case MsgKind::kReadRequest:
      return decode_as<ReadRequest>(b);
    case MsgKind::kReply:
      return decode_as<Reply>(b);
    case MsgKind::kRedirect:
      return decode_as<Redirect>(b);
    case MsgKind::kNotify:
      return decode_as<Notify>(b);
    case MsgKind::kHeartbeat:
      return decode_as<Heartbeat>(b);
    case MsgKind::kForward:
      return decode_as<Forward>(b);
    case MsgKind::kAck:
      return decode_as<Ack>(b);
    case MsgKind::kSyncRequest:
      return decode_as<SyncRequest>(b);
    case MsgKind::kStateTransfer:
      return decode_as<StateTransfer>(b);
  }
  return {Errc::kMalformedMessage, "unknown kind"};
}

TEST(GcsMessages, KindsStayInTheGcsRange) {
  for (const Bytes& b : every_kind_of_message()) {
    EXPECT_TRUE(is_gcs_message(b[0]));
    EXPECT_NE(is_gcs_server_message(b[0]), is_gcs_client_message(b[0]));
  }
}

TEST(GcsMessages, RoundTrip) {
  WriteRequest w;
  ASSERT_TRUE(decode(every_kind_of_message()[0], w));
  EXPECT_EQ(w.req_id, 7u);
  EXPECT_EQ(w.op.kind, OpKind::kAddLocation);
  EXPECT_EQ(w.op.rank, 2);
  EXPECT_EQ(w.op.size, 99u);
  Forward f;
  ASSERT_TRUE(decode(every_kind_of_message()[6], f));
  EXPECT_EQ(f.entry.seq, 12u);
  EXPECT_EQ(f.entry.op, sample_entry().op);
  Redirect r;
  ASSERT_TRUE(decode(every_kind_of_message()[3], r));
  EXPECT_EQ(r.config, (ChainConfig{2, {1, 2}, {1, 2}}));

  // A log entry with its outcome (state transfer form).
  Writer wr;
  put_entry(wr, sample_entry(), true);
  Reader rd(wr.buffer());
  LogEntry e;
  get_entry(rd, e, true);
  ASSERT_TRUE(rd.finish("entry"));
  EXPECT_EQ(e.result, sample_entry().result);
  EXPECT_EQ(e.post, sample_entry().post);
}

TEST(GcsMessages, EveryTruncationAndExtensionIsRejected) {
  for (const Bytes& b : every_kind_of_message()) {
    ASSERT_TRUE(decode_any(b)) << static_cast<int>(b[0]);
    for (size_t n = 0; n < b.size(); ++n)
      EXPECT_FALSE(decode_any(Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n))))
          << "kind " << static_cast<int>(b[0]) << " prefix " << n;
    Bytes longer = b;
    longer.push_back(std::byte{0});
    EXPECT_FALSE(decode_any(longer));
  }
}

TEST(GcsMessages, RandomBytesNeverCrashDecoders) {
  std::mt19937_64 rng(42);
  const auto samples = every_kind_of_message();
  for (int i = 0; i < 20000; ++i) {
    Bytes b = samples[static_cast<size_t>(i) % samples.size()];
    // Flip a few bytes (never the kind byte), or replace the body entirely.
    if (i % 3 == 0) {
      b.resize(1 + rng() % 64);
      for (size_t j = 1; j < b.size(); ++j) b[j] = static_cast<std::byte>(rng());
    } else {
      for (int f = 0; f < 3; ++f)
        if (b.size() > 1) b[1 + rng() % (b.size() - 1)] = static_cast<std::byte>(rng());
    }
    (void)decode_any(b);  // must return, whatever it says
  }
  EXPECT_FALSE(peek_kind(Bytes{}).has_value());
  EXPECT_FALSE(peek_kind(Bytes{std::byte{0x10}}).has_value());
  EXPECT_FALSE(peek_kind(Bytes{std::byte{0x60}}).has_value());
}

}  // namespace
}  // namespace prism::gcs
