// Replica failures: at every step of a write, one after another, several at
// once, during state transfer, under a chaotic network; spares joining by
// state transfer; a revived replica with stale state.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <tuple>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::ClusterOptions;
using testing::Envelope;
using testing::oid;

Bytes dump(const ShardStore* s) {
  Writer w;
  if (s) s->encode(w);
  return w.take();
}

/// Every member of the shard's chain holds exactly the same state.
void expect_replicas_identical(Cluster& c, int shard) {
  const ChainConfig cfg = c.config(shard);
  ASSERT_FALSE(cfg.members.empty());
  const Bytes tail = dump(c.server(cfg.tail()).store(shard));
  for (int m : cfg.members) {
    const ShardStore* st = c.server(m).store(shard);
    ASSERT_NE(st, nullptr) << "rank " << m;
    EXPECT_EQ(dump(st), tail) << "rank " << m << " differs from tail " << cfg.tail();
  }
}

ActorRecord actor(uint32_t n) {
  return {"Actor" + std::to_string(n), int32_t(n % 7), ActorState::kAlive, n, "", {}};
}

// ---- a failure at every step of one write --------------------------------------

class FailureAtEveryStep : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(FailureAtEveryStep, AcknowledgedWritesSurviveAndTheChainReforms) {
  const auto [victim_pos, steps] = GetParam();
  Cluster c({.gcs = 4, .replicas = 3, .clients = 1});  // chain 100,101,102; spare 103
  std::map<uint64_t, ActorRecord> acked;
  for (uint32_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(i), actor(i), d); }));
    acked[i] = actor(i);
  }
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));

  bool done = false;
  Status st{Errc::kInternal, "unset"};
  c.client().put<ActorTable>(oid(50), actor(50), [&](Status s) {
    st = s;
    done = true;
  });
  // Let the write get `steps` messages far (client->head->mid->tail->reply,
  // acks), then the victim stops answering.
  for (int i = 0; i < steps && c.deliver_one(); ++i) {
  }
  const int victim = c.config(0).members[static_cast<size_t>(victim_pos)];
  c.server(victim).set_silent(true);

  ASSERT_TRUE(c.run_until([&] { return done && c.settled(0, 3); }))
      << "victim " << victim << " after " << steps << " steps; chain " << c.config(0).to_string();
  EXPECT_TRUE(st) << st.to_string();
  acked[50] = actor(50);

  const ChainConfig cfg = c.config(0);
  EXPECT_FALSE(cfg.contains(victim));
  EXPECT_TRUE(cfg.contains(103)) << "the spare joins at the tail: " << cfg.to_string();
  EXPECT_EQ(cfg.tail(), 103);
  for (const auto& [k, v] : acked) {
    auto got = c.get<ActorTable>(oid(k));
    ASSERT_TRUE(got.has_value()) << k << " lost: " << got.status().to_string();
    EXPECT_EQ(*got, v);
  }
  expect_replicas_identical(c, 0);
  // Exactly-once: 3 warm-up writes + the one under test.
  EXPECT_EQ(c.server(cfg.tail()).shard_status(0).applied, 4u);
}

std::string step_name(const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
  const char* const pos[] = {"Head", "Middle", "Tail"};
  return std::string(pos[std::get<0>(info.param)]) + "AfterStep" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(HeadMiddleTail, FailureAtEveryStep,
                         ::testing::Combine(::testing::Values(0, 1, 2), ::testing::Range(0, 9)),
                         step_name);

// ---- more failure patterns --------------------------------------------------------

TEST(GcsFailover, SequentialFailuresUseSparesAndLoseNothing) {
  Cluster c({.gcs = 5, .replicas = 3, .clients = 2});  // chain 100..102, spares 103, 104
  std::map<uint64_t, ActorRecord> acked;
  uint32_t next = 1;
  auto write_batch = [&](int n) {
    int pending = 0;
    for (int i = 0; i < n; ++i, ++next) {
      ++pending;
      const uint32_t k = next;
      c.client(static_cast<int>(k % 2)).put<ActorTable>(oid(k), actor(k), [&, k](Status s) {
        EXPECT_TRUE(s);
        if (s) acked[k] = actor(k);
        --pending;
      });
    }
    ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  };
  write_batch(20);
  c.server(100).set_silent(true);  // the head
  write_batch(20);
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  c.server(c.config(0).tail()).set_silent(true);  // then the tail (the first spare)
  write_batch(20);
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  const ChainConfig cfg = c.config(0);
  EXPECT_EQ(cfg.members, (std::vector<int>{101, 102, 104}));
  EXPECT_EQ(acked.size(), 60u);
  for (const auto& [k, v] : acked) {
    auto got = c.get<ActorTable>(oid(k));
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(*got, v);
  }
  expect_replicas_identical(c, 0);
}

TEST(GcsFailover, TwoOfThreeFailAtOnce) {
  Cluster c({.gcs = 5, .replicas = 3, .clients = 1});
  int pending = 0;
  for (uint32_t k = 1; k <= 30; ++k) {
    ++pending;
    c.client().put<ActorTable>(oid(k), actor(k), [&](Status s) {
      EXPECT_TRUE(s);
      --pending;
    });
  }
  // Crash head and tail while the writes are in flight.
  for (int i = 0; i < 40; ++i) c.deliver_one();
  c.server(100).set_silent(true);
  c.server(102).set_silent(true);
  ASSERT_TRUE(c.run_until([&] { return pending == 0 && c.settled(0, 3); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{101, 103, 104}));
  for (uint32_t k = 1; k <= 30; ++k) {
    auto got = c.get<ActorTable>(oid(k));
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(*got, actor(k));
  }
  expect_replicas_identical(c, 0);
  EXPECT_EQ(c.server(104).shard_status(0).applied, 30u);
}

TEST(GcsFailover, ChainWithoutSpareShrinksAndKeepsServing) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(1), actor(1), d); }));
  c.server(101).set_silent(true);
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(2), actor(2), d); }));
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 2); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{100, 102}));
  EXPECT_TRUE(c.get<ActorTable>(oid(1)).has_value());
  EXPECT_TRUE(c.get<ActorTable>(oid(2)).has_value());
  // Down to one replica: still serving.
  c.server(102).set_silent(true);
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(3), actor(3), d); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{100}));
  for (uint32_t k = 1; k <= 3; ++k) EXPECT_TRUE(c.get<ActorTable>(oid(k)).has_value()) << k;
}

TEST(GcsFailover, SpareJoinsByStateTransferWhileWritesContinue) {
  Cluster c({.gcs = 4, .replicas = 3, .clients = 2});
  int pending = 0;
  for (uint32_t k = 1; k <= 500; ++k) {
    ++pending;
    c.client(0).add_object_location(oid(k), 1, k, 0, [&](Status s) {
      EXPECT_TRUE(s);
      --pending;
    });
  }
  ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  c.server(102).set_silent(true);  // the tail; 103 must catch up from scratch
  // Keep writing while the chain re-forms and the state travels.
  for (int round = 0; round < 40; ++round) {
    for (uint32_t k = 1; k <= 5; ++k) {
      ++pending;
      c.client(1).add_object_location(oid(k + 5 * static_cast<uint32_t>(round)), 2, 0, -1,
                                      [&](Status s) {
                                        EXPECT_TRUE(s);
                                        --pending;
                                      });
    }
    for (int i = 0; i < 5; ++i) c.deliver_one();
    c.advance();
  }
  ASSERT_TRUE(c.run_until([&] { return pending == 0 && c.settled(0, 3); }));
  EXPECT_EQ(c.config(0).tail(), 103);
  expect_replicas_identical(c, 0);
  const ShardStore* st = c.server(103).store(0);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->objects.size(), 500u);
  EXPECT_EQ(st->objects.find(oid(200))->locations, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(st->objects.find(oid(201))->locations, (std::vector<int32_t>{1}));
}

TEST(GcsFailover, StateTransferSurvivesLossOfItsSource) {
  Cluster c({.gcs = 5, .replicas = 3, .clients = 1});  // spares 103, 104
  for (uint32_t k = 1; k <= 20; ++k)
    ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(k), actor(k), d); }));
  // Lose every state transfer, then kill the tail: 103 joins but never gets
  // its state from 101; then 101 dies too and 103 must get it from 100.
  c.net.hold([](const Envelope& e) { return e.kind() == MsgKind::kStateTransfer; });
  c.server(102).set_silent(true);
  ASSERT_TRUE(c.run_until([&] { return c.config(0).contains(103); }));
  c.run_for(50'000);
  EXPECT_FALSE(c.server(103).shard_status(0).installed);
  c.server(101).set_silent(true);
  c.net.release_held();  // stale transfers from 101 arrive late: refused (wrong predecessor)
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{100, 103, 104}));
  for (uint32_t k = 1; k <= 20; ++k) EXPECT_TRUE(c.get<ActorTable>(oid(k)).has_value()) << k;
  expect_replicas_identical(c, 0);
}

TEST(GcsFailover, RevivedReplicaDropsItsStaleStateAndRejoinsAsSpare) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});  // no spare
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(1), actor(1), d); }));
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  // A write reaches the head only (its forward is held back), then the head
  // goes silent: it holds a write that never commits.
  c.net.hold([](const Envelope& e) { return e.kind() == MsgKind::kForward; });
  WriteOp op = make_op(OpKind::kPut, TableId::kActors, encode_key<ActorTable>(oid(66)),
                       encode_record<ActorTable>(actor(66)));
  c.net.post(50, 100, encode(WriteRequest{1, 1, 1, 0, op}));  // a client that never retries
  c.deliver_all();
  ASSERT_EQ(c.server(100).shard_status(0).applied, 2u);
  c.server(100).set_silent(true);
  ASSERT_TRUE(c.run_until([&] { return c.config(0).members == std::vector<int>{101, 102}; }));
  c.net.release_held();  // the stale forward arrives now: refused, its epoch is over
  // 101 is head now and commits a different write at the same position.
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(2), actor(2), d); }));
  ASSERT_EQ(c.server(102).shard_status(0).applied, 2u);

  // Back from silence. It must learn of its re-addition before its removal,
  // so hold every heartbeat to it and later drop those without it.
  c.net.hold([](const Envelope& e) { return e.dst == 100 && e.kind() == MsgKind::kHeartbeat; });
  c.server(100).set_silent(false);
  ASSERT_TRUE(c.run_until([&] { return c.config(0).contains(100); }));
  auto& held = c.net.held_messages();
  std::erase_if(held, [](const Envelope& e) {
    Heartbeat hb;
    return !decode(e.bytes, hb) || hb.configs.empty() || !hb.configs[0].second.contains(100);
  });
  ASSERT_FALSE(held.empty());
  c.net.release_held();
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{101, 102, 100}));
  const ShardStore* st = c.server(100).store(0);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(st->actors.find(oid(2)), nullptr);
  EXPECT_EQ(st->actors.find(oid(66)), nullptr);
  EXPECT_EQ(c.get<ActorTable>(oid(66)).status().code(), Errc::kNotFound);
  expect_replicas_identical(c, 0);
}

TEST(GcsFailover, TwoShardsShareOneSpare) {
  Cluster c({.gcs = 7, .replicas = 3, .clients = 1});  // shards {100..102}, {103..105}, spare 106
  ASSERT_EQ(c.layout.shards, 2);
  std::map<uint64_t, ActorRecord> acked;
  int pending = 0;
  for (uint32_t k = 1; k <= 40; ++k) {
    ++pending;
    c.client().put<ActorTable>(oid(k), actor(k), [&, k](Status s) {
      if (s) acked[k] = actor(k);
      --pending;
    });
  }
  for (int i = 0; i < 30; ++i) c.deliver_one();
  c.server(101).set_silent(true);
  c.server(105).set_silent(true);
  ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  // Both chains are whole again (the spare serves both) or one is short.
  ASSERT_TRUE(c.run_until([&] {
    for (int s = 0; s < 2; ++s)
      if (!c.settled(s, 3) && !c.settled(s, 2)) return false;
    return true;
  }));
  EXPECT_EQ(acked.size(), 40u);
  for (const auto& [k, v] : acked) {
    auto got = c.get<ActorTable>(oid(k));
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(*got, v);
  }
  for (int s = 0; s < 2; ++s) expect_replicas_identical(c, s);
}

TEST(GcsFailover, AStallOfTheWholeJobCutsNobodyOut) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  const uint64_t epoch = c.config(0).epoch;
  c.advance(5'000'000);  // everyone was descheduled for 5 s
  c.run_for(500'000);
  EXPECT_EQ(c.config(0).epoch, epoch);
  EXPECT_TRUE(c.settled(0, 3));
}

TEST(GcsFailover, LoneSurvivorOfAStallKeepsServing) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(1), actor(1), d); }));
  c.server(101).set_silent(true);
  c.server(102).set_silent(true);
  c.advance(5'000'000);  // the survivor stalls too: nobody will refresh its view
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(2), actor(2), d); }));
  EXPECT_EQ(c.config(0).members, (std::vector<int>{100}));
  EXPECT_TRUE(c.get<ActorTable>(oid(1)).has_value());
}

// Seeds to run in the randomized tests: PRISM_GCS_CHAOS_SEEDS=500 for a soak.
uint64_t chaos_seeds(uint64_t dflt) {
  const char* e = std::getenv("PRISM_GCS_CHAOS_SEEDS");
  return e ? std::strtoull(e, nullptr, 10) : dflt;
}

/// Installed, live members of a shard's chain, per the servers themselves.
int live_installed(Cluster& c, int shard) {
  int n = 0;
  for (auto& [r, s] : c.servers)
    if (!s->silent() && s->shard_status(shard).installed) ++n;
  return n;
}

void dump_state(Cluster& c) {
  for (auto& [r, sv] : c.servers)
    for (int sh = 0; sh < c.layout.shards; ++sh) {
      const ShardStatus st = sv->shard_status(sh);
      std::fprintf(
          stderr,
          "rank %d shard %d silent %d cfg %s member %d installed %d applied %llu committed %llu\n",
          r, sh, sv->silent(), st.config.to_string().c_str(), st.member, st.installed,
          static_cast<unsigned long long>(st.applied),
          static_cast<unsigned long long>(st.committed));
    }
}

/// Random writes with unique keys while replicas crash and come back, over a
/// network that drops, duplicates, reorders and congests. Every write must
/// eventually be acknowledged and every acknowledged write must be there.
void chaos_run(uint64_t seed, int gcs, bool revive) {
  Cluster c({.gcs = gcs, .replicas = 3, .clients = 2, .seed = seed});
  c.net.set_reorder(true);
  c.net.set_drop_probability(0.02);
  c.net.set_duplicate_probability(0.02);
  std::mt19937_64 rng(seed * 7919);
  std::map<uint64_t, ObjectRecord> acked;
  std::vector<int> silent;
  int pending = 0;
  uint64_t next = 1;
  for (int step = 0; step < 300; ++step) {
    for (int i = 0; i < 2; ++i, ++next) {
      const uint64_t k = next;
      ObjectRecord rec{{static_cast<int32_t>(k % 5)}, k, 1};
      ++pending;
      c.client(static_cast<int>(rng() % 2)).put<ObjectTable>(oid(k), rec, [&, k, rec](Status s) {
        if (s) acked[k] = rec;
        --pending;
      });
    }
    const size_t n = rng() % 60;
    for (size_t i = 0; i < n; ++i) c.deliver_one();
    if (rng() % 25 == 0) {
      // Silence a random GCS rank, but leave every shard an installed copy.
      const int victim =
          Cluster::kFirstGcsRank + static_cast<int>(rng() % static_cast<uint64_t>(gcs));
      bool safe = !c.server(victim).silent() && silent.size() + 3 < static_cast<size_t>(gcs) + 1;
      for (int sh = 0; sh < c.layout.shards && safe; ++sh)
        if (c.server(victim).shard_status(sh).installed && live_installed(c, sh) < 2) safe = false;
      if (safe) {
        c.server(victim).set_silent(true);
        silent.push_back(victim);
      }
    }
    if (revive && !silent.empty() && rng() % 30 == 0) {
      c.server(silent.front()).set_silent(false);
      silent.erase(silent.begin());
    }
    c.advance();
  }
  c.net.set_drop_probability(0);
  c.net.set_duplicate_probability(0);
  const bool finished = c.run_until([&] { return pending == 0; }, 60'000'000);
  if (!finished) dump_state(c);
  ASSERT_TRUE(finished) << "seed " << seed << " pending " << pending;
  const bool calm = c.run_until([&] {
    for (int sh = 0; sh < c.layout.shards; ++sh)
      if (!c.settled(sh, 3) && !c.settled(sh, 2) && !c.settled(sh, 1)) return false;
    return true;
  });
  if (!calm) dump_state(c);
  ASSERT_TRUE(calm) << "seed " << seed;
  EXPECT_EQ(acked.size(), 600u) << "seed " << seed;
  for (const auto& [k, v] : acked) {
    const Bytes key = encode_key<ObjectTable>(oid(k));
    const int sh = c.layout.shard_of(TableId::kObjects, key);
    const ShardStore* st = c.server(c.config(sh).tail()).store(sh);
    ASSERT_NE(st, nullptr);
    const ObjectRecord* got = st->objects.find(oid(k));
    ASSERT_NE(got, nullptr) << "seed " << seed << " lost " << k;
    EXPECT_EQ(*got, v);
  }
  for (int sh = 0; sh < c.layout.shards; ++sh) expect_replicas_identical(c, sh);
}

TEST(GcsFailover, RandomCrashesUnderAChaoticNetworkNeverLoseAcknowledgedWrites) {
  for (uint64_t seed = 1; seed <= chaos_seeds(6); ++seed) {
    chaos_run(seed, 5, /*revive=*/false);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(GcsFailover, RandomCrashesAndRevivalsOverTwoShards) {
  for (uint64_t seed = 1; seed <= chaos_seeds(4); ++seed) {
    chaos_run(seed, 7, /*revive=*/true);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace prism::gcs

// ---- the client's view after a failover ------------------------------------------

namespace prism::gcs {
namespace {

// After a head failure, the retry that finally succeeds may reach the new head
// directly: it answers instead of redirecting, so the client never sees the
// new chain. Later requests must not keep paying a timeout at the dead rank
// (regression: every write after the failover waited request_timeout_us).
TEST(GcsFailover, ClientStopsWaitingOnADeadHeadAfterFailover) {
  for (uint64_t failure_ms : {130, 230, 330, 430}) {
    ClusterOptions o{.gcs = 3, .replicas = 3, .clients = 1};
    o.server.failure_timeout_us = failure_ms * 1000;
    o.client.request_timeout_us = 50'000;
    o.client.max_backoff_us = 50'000;
    Cluster c(o);
    ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(1), actor(1), d); }));
    c.server(100).set_silent(true);
    ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(2), actor(2), d); }))
        << failure_ms;
    for (uint32_t i = 3; i <= 6; ++i) {
      const uint64_t t0 = c.now;
      ASSERT_TRUE(c.await([&](DoneCallback d) { c.client().put<ActorTable>(oid(i), actor(i), d); }));
      EXPECT_LT(c.now - t0, o.client.request_timeout_us)
          << "write " << i << " waited for a timeout (failure timeout " << failure_ms << " ms)";
      auto got = c.get<ActorTable>(oid(i));
      ASSERT_TRUE(got);
    }
  }
}

}  // namespace
}  // namespace prism::gcs
