// Chain replication without failures: the write path, reads at the tail,
// sharding, retries and duplicate detection, an unreliable network.
#include <gtest/gtest.h>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::Envelope;
using testing::oid;
using testing::task;

TEST(GcsChain, SingleReplicaPutGetRemove) {
  Cluster c({.gcs = 1, .replicas = 0, .clients = 1});
  ASSERT_EQ(c.layout.shards, 1);
  ASSERT_EQ(c.layout.replicas, 1);
  EXPECT_TRUE(c.await([&](DoneCallback d) { c.client().put<TaskTable>(oid(1), task("f"), d); }));
  auto got = c.get<TaskTable>(oid(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->function_name, "f");
  EXPECT_TRUE(c.await([&](DoneCallback d) { c.client().remove<TaskTable>(oid(1), d); }));
  EXPECT_EQ(c.get<TaskTable>(oid(1)).status().code(), Errc::kNotFound);
  EXPECT_EQ(c.await([&](DoneCallback d) { c.client().remove<TaskTable>(oid(1), d); }).code(),
            Errc::kNotFound);
}

// Actor names are claimed with an insert: the first claim wins on every
// replica, a second one is refused with the row that holds the name.
TEST(GcsChain, InsertClaimsAKeyOnceAndReportsTheHolder) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  const ActorId key = actor_name_key("ps");
  const ActorRecord first{"7Counter", -1, ActorState::kAlive, 0, "ps", oid(1)};
  std::optional<Status> a, b;
  std::optional<ActorRecord> holder;
  c.client(0).insert<ActorTable>(key, first, [&](Status s, std::optional<ActorRecord>) { a = s; });
  c.deliver_all();
  ActorRecord second = first;
  second.actor = oid(2);
  c.client(1).insert<ActorTable>(key, second, [&](Status s, std::optional<ActorRecord> have) {
    b = s;
    holder = std::move(have);
  });
  c.deliver_all();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->is_ok()) << a->to_string();
  EXPECT_EQ(b->code(), Errc::kAlreadyExists);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->actor, oid(1));
  for (int r : c.config(0).members) {
    const auto* row = c.server(r).store(0)->actors.find(key);
    ASSERT_NE(row, nullptr) << r;
    EXPECT_EQ(row->actor, oid(1));
  }
  // The tasks table has runs: no inserts there.
  WriteOp bad = make_op(OpKind::kInsert, TableId::kTasks, encode_key<TaskTable>(oid(3)),
                        encode_record<TaskTable>(task("f")));
  EXPECT_EQ(validate(bad).code(), Errc::kInvalidArgument);
  EXPECT_TRUE(is_actor_name_key(key));
  EXPECT_NE(actor_name_key("ps"), actor_name_key("pt"));
}

TEST(GcsChain, WriteTravelsHeadToTailAndTailReplies) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  c.deliver_all();  // initial heartbeats
  const ChainConfig chain = c.config(0);
  ASSERT_EQ(chain.members, (std::vector<int>{100, 101, 102}));
  bool done = false;
  c.client().put<ActorTable>(oid(5), ActorRecord{"A", 1, ActorState::kAlive, 0, "", {}},
                             [&](Status s) { done = s.is_ok(); });
  // Step by step: client -> head -> middle -> tail -> (reply to client, ack up).
  std::vector<std::pair<int, int>> hops;
  while (!done) {
    auto e = c.net.take_next();
    ASSERT_TRUE(e.has_value());
    hops.emplace_back(e->src, e->dst);
    c.route(*e);
  }
  ASSERT_GE(hops.size(), 4u);
  EXPECT_EQ(hops[0], std::make_pair(0, 100));
  EXPECT_EQ(hops[1], std::make_pair(100, 101));
  EXPECT_EQ(hops[2], std::make_pair(101, 102));
  EXPECT_EQ(hops[3], std::make_pair(102, 0));
  c.deliver_all();  // the acks
  for (int r : chain.members) {
    const ShardStatus st = c.server(r).shard_status(0);
    EXPECT_EQ(st.applied, 1u);
    EXPECT_EQ(st.committed, 1u) << r;
    ASSERT_NE(c.server(r).store(0)->actors.find(oid(5)), nullptr);
  }
}

// Commits start after the committed entries the log keeps for catch-up:
// with a short log and many writes in flight, each write is still replied
// to exactly once, in order, and every replica commits all of them.
TEST(GcsChain, CommitsPastTheRetainedLogReplyOnceEach) {
  ClusterOptions o{.gcs = 3, .replicas = 3, .clients = 1};
  o.server.log_retain = 4;
  Cluster c(o);
  c.deliver_all();
  constexpr int kWrites = 60;
  std::vector<int> replies(kWrites, 0);
  int pending = 0;
  size_t reply_messages = 0;  // on the wire: a repeated reply would not reach a callback
  for (int round = 0; round < 3; ++round) {  // 20 writes in flight at a time
    for (int i = round * 20; i < (round + 1) * 20; ++i) {
      ++pending;
      c.client().put<NodeTable>(static_cast<uint32_t>(i), NodeRecord{}, [&, i](Status s) {
        EXPECT_TRUE(s) << s.to_string();
        ++replies[static_cast<size_t>(i)];
        --pending;
      });
    }
    while (auto e = c.net.take_next()) {
      if (e->dst == 0 && e->kind() == MsgKind::kReply) ++reply_messages;
      c.route(*e);
    }
    ASSERT_EQ(pending, 0);
  }
  EXPECT_EQ(reply_messages, static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(replies[static_cast<size_t>(i)], 1) << i;
  for (int r : c.config(0).members) {
    const ShardStatus st = c.server(r).shard_status(0);
    EXPECT_EQ(st.applied, static_cast<uint64_t>(kWrites)) << r;
    EXPECT_EQ(st.committed, static_cast<uint64_t>(kWrites)) << r;
    EXPECT_LE(st.log_size, 4u) << r;
    EXPECT_EQ(c.server(r).store(0)->nodes.size(), static_cast<size_t>(kWrites)) << r;
  }
}

// Retained entries serve a successor's catch-up; a GCS of one rank can never
// have one, so it keeps none, while a chain keeps log_retain of them.
TEST(GcsChain, ALoneRankKeepsNoCommittedLog) {
  Cluster lone({.gcs = 1, .replicas = 0, .clients = 1});
  Cluster chain({.gcs = 3, .replicas = 3, .clients = 1});
  for (Cluster* c : {&lone, &chain}) {
    for (uint32_t i = 0; i < 10; ++i)
      ASSERT_TRUE(
          c->await([&](DoneCallback d) { c->client().put<NodeTable>(i, NodeRecord{}, d); }));
    c->deliver_all();
  }
  const ShardStatus alone = lone.server(lone.config(0).tail()).shard_status(0);
  EXPECT_EQ(alone.committed, 10u);
  EXPECT_EQ(alone.log_size, 0u);
  for (int r : chain.config(0).members) {
    const ShardStatus st = chain.server(r).shard_status(0);
    EXPECT_EQ(st.committed, 10u) << r;
    EXPECT_EQ(st.log_size, 10u) << r;  // under the default log_retain (1,024)
  }
}

TEST(GcsChain, ReadsAreServedByTheTail) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<NodeTable>(7, NodeRecord{}, d); }));
  c.deliver_all();
  std::optional<Expected<NodeRecord>> got;
  c.client().get<NodeTable>(7, [&](Expected<NodeRecord> r) { got.emplace(std::move(r)); });
  ASSERT_EQ(c.net.queue().size(), 1u);
  EXPECT_EQ(c.net.queue().front().dst, 102);
  c.deliver_all();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->has_value());
}

TEST(GcsChain, ShardsHoldOnlyTheirKeys) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  ASSERT_EQ(c.layout.shards, 2);
  int pending = 0;
  for (uint64_t i = 1; i <= 40; ++i) {
    ++pending;
    c.client().put<ObjectTable>(oid(i), ObjectRecord{{1}, i, 0}, [&](Status s) {
      EXPECT_TRUE(s);
      --pending;
    });
  }
  ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  size_t total = 0;
  for (int s = 0; s < 2; ++s) {
    const ShardStore* st = c.server(c.config(s).tail()).store(s);
    ASSERT_NE(st, nullptr);
    for (const auto& [k, v] : st->objects.rows())
      EXPECT_EQ(c.layout.shard_of(TableId::kObjects, encode_key<ObjectTable>(k)), s);
    total += st->objects.size();
    EXPECT_GT(st->objects.size(), 5u);
  }
  EXPECT_EQ(total, 40u);
}

TEST(GcsChain, RetriedWriteIsAppliedOnce) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  c.deliver_all();
  // Forge the same request twice, as a client whose reply was lost would.
  WriteOp op = make_op(OpKind::kAddLocation, TableId::kObjects, encode_key<ObjectTable>(oid(1)));
  op.rank = 4;
  const Bytes req = encode(WriteRequest{55, 9, 1, 0, op});
  c.net.post(0, 100, req);
  c.deliver_all();
  c.net.post(0, 100, req);
  c.net.post(0, 100, req);
  c.deliver_all();
  for (int r : {100, 101, 102}) EXPECT_EQ(c.server(r).shard_status(0).applied, 1u);
  // The client got one reply from the tail and one per retry from the head,
  // all naming commit position 1.
  int replies = 0;
  for (int i = 0; i < 3; ++i) {
    c.net.post(0, 100, req);
    while (auto e = c.net.take_next()) {
      if (e->dst == 0) {
        Reply rep;
        ASSERT_TRUE(decode(e->bytes, rep));
        EXPECT_EQ(rep.req_id, 55u);
        EXPECT_EQ(rep.seq, 1u);
        ++replies;
      } else {
        c.route(*e);
      }
    }
  }
  EXPECT_EQ(replies, 3);
  EXPECT_EQ(c.server(100).shard_status(0).applied, 1u);
}

TEST(GcsChain, LossyReorderingDuplicatingNetworkStillCommitsEverythingOnce) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    Cluster c({.gcs = 3, .replicas = 3, .clients = 2, .seed = seed});
    c.net.set_drop_probability(0.1);
    c.net.set_duplicate_probability(0.1);
    c.net.set_reorder(true);
    int pending = 0, writes = 0;
    for (uint64_t i = 1; i <= 30; ++i) {
      for (int cl = 0; cl < 2; ++cl) {
        ++pending;
        ++writes;
        c.client(cl).add_object_location(oid(i), 10 + cl, 64, 0, [&](Status s) {
          EXPECT_TRUE(s) << s.to_string();
          --pending;
        });
      }
    }
    ASSERT_TRUE(c.run_until([&] { return pending == 0; })) << "seed " << seed;
    c.net.set_drop_probability(0);
    c.net.set_duplicate_probability(0);
    ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
    // Each write took exactly one position in the history: none applied twice.
    EXPECT_EQ(c.server(102).shard_status(0).applied, static_cast<uint64_t>(writes));
    for (int r : {100, 101, 102}) {
      const ShardStore* st = c.server(r).store(0);
      ASSERT_EQ(st->objects.size(), 30u);
      for (const auto& [k, v] : st->objects.rows())
        EXPECT_EQ(v.locations, (std::vector<int32_t>{10, 11}));
    }
  }
}

TEST(GcsChain, AtomicUpdatesAndTaskState) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<TaskTable>(oid(3), task("g"), d); }));
  ASSERT_TRUE(c.await(
      [&](DoneCallback d) { c.client().set_task_state(oid(3), TaskState::kFinished, 4, d); }));
  auto t = c.get<TaskTable>(oid(3));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->state, TaskState::kFinished);
  EXPECT_EQ(t->node, 4);
  EXPECT_EQ(t->function_name, "g");
  EXPECT_EQ(c.await([&](DoneCallback d) {
               c.client().set_task_state(oid(99), TaskState::kRunning, 1, d);
             }).code(),
            Errc::kNotFound);
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client().add_object_location(oid(8), 5, 10, 2, d); }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(8), 3, 0, -1, d); }));
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().remove_object_location(oid(8), 5, d); }));
  auto o = c.get<ObjectTable>(oid(8));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->locations, (std::vector<int32_t>{3}));
  EXPECT_EQ(o->size, 10u);
  EXPECT_EQ(o->owner, 2);
}

TEST(GcsChain, ScanGathersEveryShard) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  int pending = 0;
  for (int32_t n = 0; n < 10; ++n) {
    ++pending;
    NodeRecord rec;
    rec.queue_length = static_cast<uint32_t>(n);
    c.client().put<NodeTable>(n, rec, [&](Status s) {
      EXPECT_TRUE(s);
      --pending;
    });
  }
  ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  std::optional<Expected<std::vector<std::pair<NodeRank, NodeRecord>>>> rows;
  c.client().scan<NodeTable>([&](auto r) { rows.emplace(std::move(r)); });
  ASSERT_TRUE(c.run_until([&] { return rows.has_value(); }));
  ASSERT_TRUE(rows->has_value());
  EXPECT_EQ((*rows)->size(), 10u);
}

TEST(GcsChain, DeadlinesTellTheCallerWhenToTickNext) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  const uint64_t hb = c.opt.server.heartbeat_interval_us;
  for (auto& [r, s] : c.servers) {
    EXPECT_GT(s->next_deadline_us(), c.now - 1);
    EXPECT_LE(s->next_deadline_us(), c.now + hb);
  }
  EXPECT_EQ(c.client().next_deadline_us(), UINT64_MAX);
  c.client().put<NodeTable>(1, NodeRecord{}, [](Status) {});
  EXPECT_EQ(c.client().next_deadline_us(), c.now + c.opt.client.request_timeout_us);
}

TEST(GcsChain, ClientGivesUpAfterMaxAttempts) {
  ClusterOptions o{.gcs = 1, .replicas = 1, .clients = 1};
  o.client.max_attempts = 3;
  Cluster c(o);
  c.server(100).set_silent(true);
  Status st = c.await([&](DoneCallback d) { c.client().put<NodeTable>(1, NodeRecord{}, d); });
  EXPECT_EQ(st.code(), Errc::kTimeout);
  EXPECT_EQ(c.client().in_flight(), 0u);
}

}  // namespace
}  // namespace prism::gcs
