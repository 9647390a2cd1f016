// Pub/sub: object locations, node death, actor state; delivery across a tail
// failure; unsubscribe.
#include <gtest/gtest.h>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::oid;

TEST(GcsPubSub, ObjectLocationUpdatesReachTheSubscriber) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  std::vector<std::vector<int32_t>> seen;
  std::vector<uint64_t> versions;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<ObjectTable>(
        oid(7),
        [&](const ObjectId& id, const std::optional<ObjectRecord>& row, uint64_t v) {
          EXPECT_EQ(id, oid(7));
          ASSERT_TRUE(row.has_value());
          seen.push_back(row->locations);
          versions.push_back(v);
        },
        d);
  }));
  EXPECT_TRUE(seen.empty());  // nothing there yet
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(7), 4, 64, 1, d); }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(7), 2, 64, 1, d); }));
  // Unrelated key and a no-op write (location already there): no notification.
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(8), 4, 64, 1, d); }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(7), 2, 64, 1, d); }));
  c.deliver_all();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::vector<int32_t>{4}));
  EXPECT_EQ(seen[1], (std::vector<int32_t>{2, 4}));
  EXPECT_LT(versions[0], versions[1]);
}

TEST(GcsPubSub, SubscribingToAnExistingRowDeliversItAtOnce) {
  Cluster c({.gcs = 1, .replicas = 1, .clients = 2});
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(3), 9, 8, 1, d); }));
  std::optional<ObjectRecord> got;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<ObjectTable>(
        oid(3), [&](const ObjectId&, const std::optional<ObjectRecord>& r, uint64_t) { got = r; },
        d);
  }));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->locations, (std::vector<int32_t>{9}));
}

TEST(GcsPubSub, NodeDeathReachesEveryTableSubscriber) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 3});  // two shards
  std::map<int, std::vector<std::pair<NodeRank, bool>>> events;
  for (int cl : {0, 1}) {
    ASSERT_TRUE(c.await([&](DoneCallback d) {
      c.client(cl).subscribe_all<NodeTable>(
          [&, cl](const NodeRank& r, const std::optional<NodeRecord>& row, uint64_t) {
            events[cl].emplace_back(r, row && row->alive);
          },
          d);
    }));
  }
  for (NodeRank n = 0; n < 6; ++n) {
    NodeRecord rec;
    rec.resources = {{"CPU", 2}};
    ASSERT_TRUE(c.await([&](DoneCallback d) { c.client(2).put<NodeTable>(n, rec, d); }));
  }
  NodeRecord dead;
  dead.alive = false;
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client(2).put<NodeTable>(4, dead, d); }));
  c.deliver_all();
  for (int cl : {0, 1}) {
    ASSERT_EQ(events[cl].size(), 7u) << cl;
    EXPECT_EQ(events[cl].back(), std::make_pair(NodeRank{4}, false));
  }
}

TEST(GcsPubSub, ActorStateChangesAndRemoval) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  std::vector<std::optional<ActorState>> states;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<ActorTable>(
        oid(1, 2),
        [&](const ActorId&, const std::optional<ActorRecord>& r, uint64_t) {
          states.push_back(r ? std::optional(r->state) : std::nullopt);
        },
        d);
  }));
  for (ActorState s : {ActorState::kPending, ActorState::kAlive, ActorState::kRestarting}) {
    ASSERT_TRUE(c.await([&](DoneCallback d) {
      c.client(1).put<ActorTable>(oid(1, 2), ActorRecord{"P", 3, s, 0, "", {}}, d);
    }));
  }
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client(1).remove<ActorTable>(oid(1, 2), d); }));
  c.deliver_all();
  ASSERT_EQ(states.size(), 4u);
  EXPECT_EQ(states[0], ActorState::kPending);
  EXPECT_EQ(states[2], ActorState::kRestarting);
  EXPECT_EQ(states[3], std::nullopt);
}

TEST(GcsPubSub, SubscriptionsSurviveTheLossOfTheTail) {
  Cluster c({.gcs = 4, .replicas = 3, .clients = 2});
  int notified = 0;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<ObjectTable>(
        oid(5), [&](const ObjectId&, const std::optional<ObjectRecord>&, uint64_t) { ++notified; },
        d);
  }));
  c.server(102).set_silent(true);  // the tail that would publish
  ASSERT_TRUE(c.run_until([&] { return c.settled(0, 3); }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(5), 1, 1, 1, d); }));
  c.deliver_all();
  EXPECT_EQ(notified, 1);
  // The new tail (the spare, given the subscription by state transfer).
  EXPECT_EQ(c.config(0).tail(), 103);
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).add_object_location(oid(5), 2, 1, 1, d); }));
  c.deliver_all();
  EXPECT_EQ(notified, 2);
}

TEST(GcsPubSub, NotificationOfAWriteCommittedDuringFailoverIsNotLost) {
  Cluster c({.gcs = 4, .replicas = 3, .clients = 2});
  std::vector<std::vector<int32_t>> seen;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<ObjectTable>(
        oid(5),
        [&](const ObjectId&, const std::optional<ObjectRecord>& r, uint64_t) {
          seen.push_back(r->locations);
        },
        d);
  }));
  // The write reaches the middle replica, then the tail dies before seeing it.
  bool done = false;
  c.client(1).add_object_location(oid(5), 1, 1, 1, [&](Status s) { done = s.is_ok(); });
  c.deliver_one();  // client -> head
  c.deliver_one();  // head -> middle (middle forwards to the tail)
  c.server(102).set_silent(true);
  ASSERT_TRUE(c.run_until([&] { return done && c.settled(0, 3); }));
  c.deliver_all();
  ASSERT_GE(seen.size(), 1u);  // at least once
  EXPECT_EQ(seen.back(), (std::vector<int32_t>{1}));
}

TEST(GcsPubSub, UnsubscribeStopsDelivery) {
  Cluster c({.gcs = 3, .replicas = 3, .clients = 2});
  int key_events = 0, table_events = 0;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<TaskTable>(
        oid(1), [&](const TaskId&, const std::optional<TaskRecord>&, uint64_t) { ++key_events; },
        d);
  }));
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe_all<TaskTable>(
        [&](const TaskId&, const std::optional<TaskRecord>&, uint64_t) { ++table_events; }, d);
  }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).put<TaskTable>(oid(1), testing::task("f"), d); }));
  c.deliver_all();
  EXPECT_EQ(key_events, 1);
  EXPECT_EQ(table_events, 1);
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client(0).unsubscribe<TaskTable>(oid(1), d); }));
  ASSERT_TRUE(c.await([&](DoneCallback d) { c.client(0).unsubscribe_all<TaskTable>(d); }));
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client(1).put<TaskTable>(oid(1), testing::task("g"), d); }));
  c.deliver_all();
  EXPECT_EQ(key_events, 1);
  EXPECT_EQ(table_events, 1);
  // And the server forgot the subscriber (nothing is sent to it at all).
  EXPECT_TRUE(
      c.server(102).store(0)->subscribers(TableId::kTasks, encode_key<TaskTable>(oid(1))).empty());
}

}  // namespace
}  // namespace prism::gcs
