// Work stealing across real ranks (docs/scheduling.md, "Stealing"): a
// recursion started on one node rank keeps its children there, and idle node
// ranks take the oldest of them on the global scheduler's orders.
#include <gtest/gtest.h>

#include <bit>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <prism/prism.hpp>

namespace {

// {bitmask of the node ranks its leaves ran on, leaves}. Each leaf works
// ~200 us, so the tree is worth spreading.
std::vector<long> tree(int depth) {
  if (depth == 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    while (std::chrono::steady_clock::now() < until) {
    }
    return {1L << prism::node_id(), 1};
  }
  auto left = prism::task(tree).remote(depth - 1);
  auto right = prism::task(tree).remote(depth - 1);
  const auto a = prism::get(left), b = prism::get(right);
  return {a[0] | b[0], a[1] + b[1]};
}
PRISM_REMOTE(tree);

}  // namespace

// Works ~3 ms and says where it ran.
int long_task(int) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3);
  while (std::chrono::steady_clock::now() < until) {
  }
  return prism::node_id();
}
PRISM_REMOTE(long_task);

TEST(Stealing, ARecursionStartedOnOneNodeSpreadsToTheOthers) {
  const int nodes = prism::num_nodes();
  if (nodes < 2) GTEST_SKIP() << "needs two node ranks";
  // Pinned root: everything below it is submitted on node 0 and, as children
  // of a task, stays there unless an idle node takes it.
  const auto r = prism::get(prism::task(tree).options({.node = 0}).remote(10));
  EXPECT_EQ(r.at(1), 1024);
  const int used = std::popcount(static_cast<unsigned long>(r.at(0)));
  std::printf("1024 leaves ran on %d of %d node ranks\n", used, nodes);
  EXPECT_GE(used, 2) << "no node rank took work from node 0";
}

// The driver's plain tasks queue on its node; the others take them. Tasks
// this long make a node ask for the next before it runs dry (ask_ahead):
// mpi_work_stealing checks the global scheduler's log for such orders.
TEST(Stealing, NodesRunningLongTasksAreServedBeforeTheyRunDry) {
  const int nodes = prism::num_nodes();
  if (nodes < 2) GTEST_SKIP() << "needs two node ranks";
  std::vector<prism::ObjectRef<int>> refs;
  for (int i = 0; i < 24 * nodes; ++i) refs.push_back(prism::task(long_task).remote(i));
  std::vector<int> ran(static_cast<size_t>(nodes), 0);
  for (auto& r : refs) ++ran.at(static_cast<size_t>(prism::get(r)));
  for (int n = 0; n < nodes; ++n) std::printf("node %d ran %d tasks of 3 ms\n", n, ran[n]);
  EXPECT_LT(ran[0], 24 * nodes) << "no node rank took work from the driver's";
}
