#include <gtest/gtest.h>

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
