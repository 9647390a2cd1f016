#include <gtest/gtest.h>

#include "scheduler/global_scheduler.hpp"
#include "scheduler/scheduler.hpp"

using namespace prism;
using namespace prism::scheduler;

namespace {
std::vector<NodeResources> three_nodes() {
  return {{0, 2, 0, 0, {}}, {1, 2, 1, 0, {{"fpga", 1}}}, {2, 4, 0, 0, {}}};
}
}  // namespace

TEST(Scheduler, LocalFirstWhileThereIsRoom) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  EXPECT_EQ(*s.pick(r), 0);
  s.on_dispatch(0);
  EXPECT_EQ(*s.pick(r), 0);
  s.on_dispatch(0);
  // Local node full (2 slots): spill to the least-loaded other node.
  int n = *s.pick(r);
  EXPECT_NE(n, 0);
}

TEST(Scheduler, SaturatedNodesSpreadByLoad) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  std::vector<int> count(3, 0);
  for (int i = 0; i < 80; ++i) {
    int n = *s.pick(r);
    s.on_dispatch(n);
    ++count[n];
  }
  // Load is balanced per CPU slot: node 2 has twice the slots.
  EXPECT_NEAR(count[2], 2 * count[1], 3);
  EXPECT_NEAR(count[0], count[1], 3);
}

TEST(Scheduler, ResourcesRestrictPlacement) {
  Scheduler s(0, three_nodes());
  TaskRequest gpu;
  gpu.num_gpus = 1;
  EXPECT_EQ(*s.pick(gpu), 1);
  TaskRequest fpga;
  fpga.custom["fpga"] = 1;
  EXPECT_EQ(*s.pick(fpga), 1);
}

TEST(Scheduler, InfeasibleRequestNamesTheResource) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  r.num_gpus = 2;
  r.name = "train";
  auto n = s.pick(r);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.status().code(), Errc::kInfeasible);
  EXPECT_NE(n.status().message().find("num_gpus"), std::string::npos);
  EXPECT_NE(n.status().message().find("train"), std::string::npos);
}

TEST(Scheduler, ExplicitNode) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  r.node = 2;
  EXPECT_EQ(*s.pick(r), 2);
  r.node = 7;
  EXPECT_EQ(s.pick(r).status().code(), Errc::kInvalidArgument);
  r.node = 0;
  r.num_gpus = 1;
  EXPECT_EQ(s.pick(r).status().code(), Errc::kInfeasible);
}

TEST(Scheduler, SpreadRotates) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  r.placement = 1;
  std::set<int> seen;
  for (int i = 0; i < 3; ++i) seen.insert(*s.pick(r));
  EXPECT_EQ(seen.size(), 3u);
}

TEST(Scheduler, LargeArgumentDrawsTheTaskToItsNode) {
  Scheduler s(0, three_nodes());
  TaskRequest r;
  r.data_node = 2;
  r.data_bytes = 100 << 20;
  EXPECT_EQ(*s.pick(r), 2);  // although the local node has room
  r.data_bytes = 1000;       // small: local first
  EXPECT_EQ(*s.pick(r), 0);
  r.data_bytes = 100 << 20;
  for (int i = 0; i < 8; ++i) s.on_dispatch(2);  // node 2 far over its 4 slots
  EXPECT_NE(*s.pick(r), 2);
}

TEST(Scheduler, ALoneNodeKeepsItsTasksWhenFullAndStillRefusesTheInfeasible) {
  Scheduler s(0, {{0, 1, 0, 0, {}}});
  TaskRequest r;
  EXPECT_EQ(*s.pick(r, false), 0);  // queue long: nowhere else to go
  r.placement = 1;                  // spread over one node
  EXPECT_EQ(*s.pick(r, false), 0);
  TaskRequest gpu;
  gpu.num_gpus = 1;
  auto n = s.pick(gpu, false);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.status().code(), Errc::kInfeasible);
}

// ---- with a global scheduler (the submitter's side) ----

TEST(Scheduler, SpillsToTheGlobalSchedulerWhenTheLocalNodeIsFull) {
  Scheduler s(0, three_nodes());
  s.use_global_scheduler(true);
  TaskRequest r;
  EXPECT_EQ(*s.pick(r, true), 0);
  EXPECT_EQ(*s.pick(r, false), Scheduler::kGlobal);
  r.placement = 2;  // pack: stay even when full
  EXPECT_EQ(*s.pick(r, false), 0);
  TaskRequest gpu;  // only node 1 can: no choice to make, sent there directly
  gpu.num_gpus = 1;
  EXPECT_EQ(*s.pick(gpu, true), 1);
}

TEST(Scheduler, LargeArgumentElsewhereGoesThroughTheGlobalScheduler) {
  Scheduler s(0, three_nodes());
  s.use_global_scheduler(true);
  TaskRequest r;
  r.data_node = 2;
  r.data_bytes = 100 << 20;
  EXPECT_EQ(*s.pick(r, true), Scheduler::kGlobal);
  r.data_node = 0;  // here: stays even when the node is busy
  EXPECT_EQ(*s.pick(r, false), 0);
}

// ---- the global scheduler ----

TEST(GlobalScheduler, BurstSpreadsByCpuSlotsBeforeAnyHeartbeat) {
  GlobalScheduler g(three_nodes());  // 2, 2 and 4 CPU slots
  std::vector<int> count(3, 0);
  for (int i = 0; i < 80; ++i) ++count[*g.pick(TaskRequest{})];
  EXPECT_NEAR(count[2], 2 * count[1], 3);
  EXPECT_NEAR(count[0], count[1], 3);
}

TEST(GlobalScheduler, HeartbeatsSteerAwayFromBusyNodes) {
  GlobalScheduler g(three_nodes());
  // Node 2 is busy with local work the scheduler never sent; node 1 idle.
  g.on_heartbeat(2, NodeLoad{40, 4, 0});
  g.on_heartbeat(0, NodeLoad{4, 2, 0});
  EXPECT_EQ(*g.pick(TaskRequest{}), 1);
  EXPECT_EQ(*g.pick(TaskRequest{}), 1);
  // Tasks sent but not yet reported received count as load.
  EXPECT_DOUBLE_EQ(g.estimated_tasks(1), 2.0);
  g.on_heartbeat(1, NodeLoad{0, 2, 2});  // it got both, runs them
  EXPECT_DOUBLE_EQ(g.estimated_tasks(1), 2.0);
  g.on_heartbeat(1, NodeLoad{0, 0, 2});  // and finished them
  EXPECT_DOUBLE_EQ(g.estimated_tasks(1), 0.0);
  EXPECT_EQ(g.heartbeats(), 4u);
}

TEST(GlobalScheduler, PrefersTheNodeHoldingALargeArgumentUnlessOverloaded) {
  GlobalScheduler g(three_nodes());
  TaskRequest r;
  r.data_node = 1;
  r.data_bytes = 100 << 20;
  EXPECT_EQ(*g.pick(r), 1);
  g.on_heartbeat(1, NodeLoad{10, 2, 1});  // 12 tasks on 2 slots: move the data instead
  EXPECT_NE(*g.pick(r), 1);
  r.data_bytes = 1000;  // small: load decides
  g.on_heartbeat(1, NodeLoad{0, 0, 1});
  g.on_heartbeat(0, NodeLoad{5, 2, 0});
  g.on_heartbeat(2, NodeLoad{9, 4, 1});
  EXPECT_EQ(*g.pick(r), 1);
}

// Work stealing: an idle node gets an order to take from the busiest node
// enough movable tasks to even out tasks per slot; one order per idle node
// is outstanding until its heartbeat counts the push.
TEST(GlobalScheduler, IdleNodeGetsTheTasksThatEvenOutTheLoad) {
  GlobalScheduler g({{0, 2, 0, 0, {}}, {1, 2, 0, 0, {}}, {2, 4, 0, 0, {}}});
  // Nothing movable anywhere: no order, whoever is idle.
  EXPECT_TRUE(g.on_heartbeat(0, NodeLoad{20, 2, 0, 0, 0}).empty());
  // Node 0 holds 22 tasks on 2 slots, 20 of them movable; node 1 idle.
  auto orders = g.on_heartbeat(0, NodeLoad{20, 2, 0, 20, 0});
  ASSERT_EQ(orders.size(), 2u);  // nodes 1 and 2 are both idle
  EXPECT_EQ(orders[0].victim, 0);
  EXPECT_EQ(orders[0].thief, 1);
  // 22 tasks over 8 slots: node 1 takes 22 * 2 / 8 = 5 (rounded down), node 2
  // then 17 * 4 / 6 = 11, leaving node 0 with 6 (3, 2.5 and 2.75 per slot).
  EXPECT_EQ(orders[0].count, 5u);
  EXPECT_EQ(orders[1].victim, 0);
  EXPECT_EQ(orders[1].thief, 2);
  EXPECT_EQ(orders[1].count, 11u);
  EXPECT_DOUBLE_EQ(g.estimated_tasks(0), 6.0);
  EXPECT_DOUBLE_EQ(g.estimated_tasks(1), 5.0);
  // Outstanding: node 1 gets no second order before its heartbeat counts
  // the push, even when node 0 reports more work.
  EXPECT_TRUE(g.on_heartbeat(0, NodeLoad{30, 2, 0, 30, 0}).empty());
  EXPECT_EQ(g.steal_orders(), 2u);
  // Node 1 got its push and ran it all; idle again: a new order.
  orders = g.on_heartbeat(1, NodeLoad{0, 0, 0, 0, 1});
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].thief, 1);
}

TEST(GlobalScheduler, OneBusyNodeSharesEvenlyWithSeveralIdleOnes) {
  GlobalScheduler g({{0, 1, 0, 0, {}}, {1, 1, 0, 0, {}}, {2, 1, 0, 0, {}}, {3, 1, 0, 0, {}}});
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(g.on_heartbeat(i, NodeLoad{}).empty());
  const auto orders = g.on_heartbeat(0, NodeLoad{7, 1, 0, 7, 0});  // 8 tasks on 4 nodes
  ASSERT_EQ(orders.size(), 3u);
  for (const auto& o : orders) EXPECT_EQ(o.count, 2u);
  EXPECT_DOUBLE_EQ(g.estimated_tasks(0), 2.0);
  // Three tasks (one running) and three idle nodes: one each for two of them.
  GlobalScheduler h({{0, 1, 0, 0, {}}, {1, 1, 0, 0, {}}, {2, 1, 0, 0, {}}, {3, 1, 0, 0, {}}});
  const auto few = h.on_heartbeat(0, NodeLoad{2, 1, 0, 2, 0});
  ASSERT_EQ(few.size(), 2u);
  EXPECT_EQ(few[0].count + few[1].count, 2u);
}

TEST(GlobalScheduler, BusyNodesAskBeforeTheyRunDryAndOnlyMovableTasksMove) {
  GlobalScheduler g({{0, 1, 0, 0, {}}, {1, 1, 0, 0, {}}});
  // Node 1 runs a task on its only slot: not idle, and its tasks are short.
  EXPECT_TRUE(g.on_heartbeat(1, NodeLoad{0, 1, 0, 0, 0}).empty());
  EXPECT_TRUE(g.on_heartbeat(0, NodeLoad{50, 1, 0, 50, 0}).empty());
  // Its tasks run long and one waits behind the running one: still no order.
  EXPECT_TRUE(g.on_heartbeat(1, NodeLoad{1, 1, 0, 0, 0, true}).empty());
  // Nothing waits behind it any more: it is served before it runs dry
  // (kQueueAheadPerSlot), half of the difference.
  auto ahead = g.on_heartbeat(1, NodeLoad{0, 1, 0, 0, 0, true});
  ASSERT_EQ(ahead.size(), 1u);
  EXPECT_EQ(ahead[0].victim, 0);
  EXPECT_EQ(ahead[0].thief, 1);
  EXPECT_EQ(ahead[0].count, 25u);  // (51 - 1) / 2
  EXPECT_EQ(g.orders_ahead(), 1u);
  // Outstanding until node 1's heartbeat counts the push.
  EXPECT_TRUE(g.on_heartbeat(0, NodeLoad{50, 1, 0, 50, 0}).empty());
  // Node 0 queues 2 tasks, but only 1 may move, and node 1 is idle now.
  g.on_heartbeat(0, NodeLoad{2, 1, 0, 1, 0});
  auto orders = g.on_heartbeat(1, NodeLoad{0, 0, 0, 0, 1});
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].count, 1u);
  // A lost victim: outstanding orders are forgotten and nothing is ordered from it.
  g.mark_lost(0);
  EXPECT_TRUE(g.on_heartbeat(1, NodeLoad{0, 0, 0, 0, 0}).empty());
}

TEST(GlobalScheduler, RespectsResourcesAndNamesInfeasibleOnes) {
  GlobalScheduler g(three_nodes());
  TaskRequest fpga;
  fpga.custom["fpga"] = 1;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*g.pick(fpga), 1);
  TaskRequest huge;
  huge.num_cpus = 64;
  huge.name = "huge";
  auto n = g.pick(huge);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.status().code(), Errc::kInfeasible);
  EXPECT_NE(n.status().message().find("num_cpus"), std::string::npos);
}

// The runtime checks a request at submit time and picks its node later:
// the check must not move the spread rotation (it used to be a pick() call,
// so with two nodes every spread task went to the same one).
TEST(Scheduler, CheckingARequestDoesNotMoveTheSpreadRotation) {
  Scheduler s(0, {{0, 2, 0, 0, {}}, {1, 2, 0, 0, {}}});
  TaskRequest r;
  r.placement = 1;
  std::set<int> seen;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(s.check(r).is_ok());
    seen.insert(*s.pick(r));
  }
  EXPECT_EQ(seen.size(), 2u);
  TaskRequest bad;
  bad.node = 5;
  EXPECT_EQ(s.check(bad).code(), Errc::kInvalidArgument);
  bad.node = -1;
  bad.num_gpus = 1;
  EXPECT_EQ(s.check(bad).code(), Errc::kInfeasible);
}
