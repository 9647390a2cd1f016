// Idle ranks sleep: while the driver does nothing, the other node ranks must
// use (almost) no CPU time, even with spinning allowed before sleeping.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <prism/prism.hpp>
#include <thread>

namespace {
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
PRISM_REMOTE(process_cpu_seconds);
}  // namespace

TEST(Idle, NodeRanksUseNoCpuWhileIdle) {
  const int nodes = prism::num_nodes();
  std::vector<prism::ObjectRef<double>> before, after;
  for (int n = 1; n < nodes; ++n)
    before.push_back(prism::task(process_cpu_seconds).options({.node = n}).remote());
  auto b = prism::get(before);
  const double idle_seconds = 0.5;
  std::this_thread::sleep_for(std::chrono::duration<double>(idle_seconds));
  for (int n = 1; n < nodes; ++n)
    after.push_back(prism::task(process_cpu_seconds).options({.node = n}).remote());
  auto a = prism::get(after);
  for (size_t i = 0; i < a.size(); ++i) {
    const double used = a[i] - b[i];
    // A spinning rank would use ~idle_seconds (or its share of 2 cores).
    EXPECT_LT(used, 0.05 * idle_seconds) << "node " << i + 1 << " used " << used << " s of CPU";
  }
}
