// Gang placement, alone: how many members fit, where each goes, and the
// error that names the shortfall (src/group/placement.hpp).
#include "group/placement.hpp"

#include <gtest/gtest.h>

namespace prism::groups {
namespace {

scheduler::NodeResources node(double cpus, double gpus = 0) {
  scheduler::NodeResources n;
  n.num_cpus = cpus;
  n.num_gpus = gpus;
  return n;
}

TEST(GroupPlacement, CountsMembersByTheScarcestResource) {
  EXPECT_EQ(members_that_fit(node(8, 2), {1, 1, 0, {}}, 100), 2);
  EXPECT_EQ(members_that_fit(node(8, 2), {1, 0.5, 0, {}}, 100), 4);
  EXPECT_EQ(members_that_fit(node(8), {3, 0, 0, {}}, 100), 2);
  EXPECT_EQ(members_that_fit(node(8), {1, 0, 0, {}}, 5), 5);
  EXPECT_EQ(members_that_fit(node(8), {1, 0, 0, {{"fpga", 1}}}, 5), 0);
}

TEST(GroupPlacement, PackFillsTheFirstNodeThenTheNext) {
  auto p = plan_members(5, {2, 4, 4}, Spread::kPack, 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<int>{1, 1, 1, 1, 2}));
}

TEST(GroupPlacement, SpreadUsesEveryNodeAndKeepsANodesMembersTogether) {
  auto p = plan_members(5, {2, 2, 2}, Spread::kSpread, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<int>{0, 0, 1, 1, 2}));
  auto q = plan_members(3, {1, 0, 5, 1}, Spread::kSpread, 0);
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, (std::vector<int>{0, 2, 3}));
}

TEST(GroupPlacement, OnePerNodeNeedsAsManyNodesWithRoom) {
  auto p = plan_members(3, {4, 1, 0, 2}, Spread::kOnePerNode, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<int>{0, 1, 3}));
  EXPECT_FALSE(plan_members(4, {4, 1, 0, 2}, Spread::kOnePerNode, 0));
}

TEST(GroupPlacement, TooLittleRoomIsNoPlan) {
  auto p = plan_members(5, {2, 2}, Spread::kPack, 0);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Errc::kBusy);
}

TEST(GroupPlacement, InfeasibilityNamesTheShortfallPerNode) {
  const std::vector<scheduler::NodeResources> nodes{node(2), node(1), node(0)};
  EXPECT_EQ(infeasibility("g", 3, {1, 0, 0, {}}, nodes, Spread::kPack), "");
  const std::string why =
      infeasibility("actor group of 4 W", 4, {1, 0, 0, {}}, nodes, Spread::kPack);
  EXPECT_NE(why.find("actor group of 4 W needs 4 members of {1 CPU}"), std::string::npos) << why;
  EXPECT_NE(why.find("can hold 3 (node 0: 2, node 1: 1, node 2: 0): 1 short"), std::string::npos)
      << why;
  const std::string mpi =
      infeasibility("MPI task 'f' on 3 node ranks", 3, {1, 0, 0, {}}, nodes, Spread::kOnePerNode);
  EXPECT_NE(mpi.find("each on a node rank of its own"), std::string::npos) << mpi;
  EXPECT_NE(mpi.find("can hold 2 such ranks"), std::string::npos) << mpi;
  EXPECT_EQ(describe({2, 0.5, 64u << 20, {{"fpga", 1}}}),
            "2 CPUs, 0.5 GPUs, 1 fpga, 64 MiB memory");
}

TEST(GroupPlacement, ALostNodeHoldsNoMembers) {
  const std::vector<scheduler::NodeResources> nodes{node(2), node(2), node(2)};
  EXPECT_EQ(infeasibility("g", 6, {1, 0, 0, {}}, nodes, Spread::kPack), "");
  const std::string why = infeasibility("g", 6, {1, 0, 0, {}}, nodes, Spread::kPack, {1});
  EXPECT_NE(why.find("can hold 4 (node 0: 2, node 1: lost, node 2: 2): 2 short"), std::string::npos)
      << why;
  // Even members that ask for nothing a lost node has.
  const std::string mpi = infeasibility("m", 3, {0, 0, 0, {}}, nodes, Spread::kOnePerNode, {2});
  EXPECT_NE(mpi.find("node 2: lost"), std::string::npos) << mpi;
}

}  // namespace
}  // namespace prism::groups
