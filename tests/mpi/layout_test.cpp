// The default launch gives the node ranks every core of their host
// (cpu-layout=host, docs/running.md "Cores"). ctest starts these with plain
// `mpirun -n K` -- no --bind-to, no --num-cpus -- through with_host_cores.sh,
// which sets PRISM_TEST_HOST_CORES to the cores the host lets the job use.
#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <prism/prism.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
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

// CPUs a list such as "0-3,6,8-9" names.
int count_cpu_list(const std::string& list) {
  int n = 0;
  std::stringstream in(list);
  std::string part;
  while (std::getline(in, part, ',')) {
    const auto dash = part.find('-');
    n += dash == std::string::npos ? 1 : std::stoi(part.substr(dash + 1)) - std::stoi(part) + 1;
  }
  return n;
}

// {CPUs the calling worker thread may run on, CPUs of its process (its main
// thread's, which the runtime bound to the rank's share of the host)}.
std::pair<int, int> worker_and_process_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int mine =
      pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  std::ifstream status("/proc/self/status");
  std::string line;
  int process = -1;
  while (std::getline(status, line))
    if (line.rfind("Cpus_allowed_list:", 0) == 0)
      process = count_cpu_list(line.substr(line.find_first_not_of(" \t", 18)));
  return {mine, process};
}
PRISM_REMOTE(worker_and_process_cpus);

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

// Where each worker has a core, it is pinned to one; with more node ranks
// than cores each node rank's one worker floats over all of them (a pinned
// one would wait for its core while another idles; docs/running.md "Cores").
TEST(Layout, WorkersArePinnedOnlyWhenEachHasACoreOfItsOwn) {
  const int cores = host_cores();
  if (cores <= 0) GTEST_SKIP() << "run through tests/mpi/with_host_cores.sh";
  const auto nodes = prism::nodes();
  for (const auto& n : nodes) {
    // wait() first: a get() could run the queued task inline on this thread.
    std::vector refs{prism::task(worker_and_process_cpus).options({.node = n.node}).remote()};
    ASSERT_EQ(prism::wait(refs, 1, std::chrono::seconds(30)).first.size(), 1u);
    const auto [worker, process] = prism::get(refs[0]);
    ASSERT_GT(worker, 0);
    ASSERT_GT(process, 0);
    if (static_cast<int>(nodes.size()) > cores) {
      EXPECT_EQ(worker, process) << "node " << n.node << ": its worker should float";
      EXPECT_GE(process, cores) << "node " << n.node << ": should float over every core";
    } else {  // one core's CPUs of the share's
      EXPECT_LE(worker * static_cast<int>(n.num_cpus), process)
          << "node " << n.node << ": its worker should be pinned to one core";
    }
  }
}
