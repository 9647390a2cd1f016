// The default launch gives the node ranks every core of their host
// (cpu-layout=host, docs/running.md "Cores"). ctest starts these with plain
// `mpirun -n K` -- no --bind-to, no --num-cpus -- through with_host_cores.sh,
// which sets PRISM_TEST_HOST_CORES to the cores the host lets the job use.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <prism/prism.hpp>
#include <thread>
#include <vector>

namespace {

// When the task started and ended (steady clock, microseconds).
std::pair<long, long> hold_a_slot(int ms) {
  auto us = [] {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
  };
  const long t0 = us();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return {t0, us()};
}
PRISM_REMOTE(hold_a_slot);

int host_cores() {
  const char* v = std::getenv("PRISM_TEST_HOST_CORES");
  return v ? std::atoi(v) : 0;
}

}  // namespace

TEST(Layout, NodeRanksOfTheHostHoldAllItsCores) {
  const int cores = host_cores();
  if (cores <= 0) GTEST_SKIP() << "run through tests/mpi/with_host_cores.sh";
  const auto nodes = prism::nodes();
  ASSERT_EQ(static_cast<int>(nodes.size()), prism::num_nodes());
  if (static_cast<int>(nodes.size()) > cores) {  // more virtual nodes than cores: one worker each
    for (const auto& n : nodes) EXPECT_EQ(n.num_cpus, 1) << "node " << n.node;
    return;
  }
  double total = 0;
  for (const auto& n : nodes) {
    EXPECT_GE(n.num_cpus, 1) << "node " << n.node;
    total += n.num_cpus;
  }
  EXPECT_EQ(total, cores) << "the node ranks of this host should split its " << cores
                          << " cores between them (the GCS rank takes none)";
}

// The slots are real: as many tasks as node 0 has slots run at once.
TEST(Layout, TheDriversNodeRunsAsManyTasksAtOnceAsItHasSlots) {
  if (host_cores() <= 0) GTEST_SKIP() << "run through tests/mpi/with_host_cores.sh";
  const int slots = static_cast<int>(prism::nodes().at(0).num_cpus);
  if (slots < 2) GTEST_SKIP() << "node 0 has one slot";
  std::vector<prism::ObjectRef<std::pair<long, long>>> refs;
  for (int i = 0; i < slots; ++i)
    refs.push_back(prism::task(hold_a_slot).options({.node = 0}).remote(300));
  const auto spans = prism::get(refs);
  long latest_start = 0, earliest_end = spans.front().second;
  for (const auto& [start, end] : spans) {
    latest_start = std::max(latest_start, start);
    earliest_end = std::min(earliest_end, end);
  }
  EXPECT_LT(latest_start, earliest_end) << "the " << slots << " tasks did not overlap";
}
