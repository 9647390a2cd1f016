// Controlled duration heterogeneity, shared by the apps and the BSP baselines.
//
// A real environment's episode costs what its trajectory length costs; to
// compare Prism with bulk-synchronous MPI at a chosen heterogeneity, each
// episode j can also carry extra simulation work d_j drawn from a gamma
// distribution with a given mean and coefficient of variation (CV = 0: every
// episode costs the same; CV = 1: exponential; CV = 2: a few episodes cost
// most of the total). d_j depends only on (seed, j), so a Prism run and an MPI
// run do the same work whichever rank or worker runs episode j.
#pragma once

#include <cstdint>
#include <ctime>
#include <random>

#include "control/cartpole.hpp"

namespace control {

/// Extra CPU work of episode `j`, in microseconds (0 when mean_us is 0).
inline double extra_work_us(uint64_t seed, uint64_t j, double mean_us, double cv) {
  if (mean_us <= 0) return 0;
  if (cv <= 0) return mean_us;
  std::mt19937_64 rng(mix_seed(seed ^ 0x5eedULL, j));
  const double shape = 1.0 / (cv * cv);  // gamma(k, theta): mean k theta, CV 1/sqrt(k)
  std::gamma_distribution<double> g(shape, mean_us / shape);
  return g(rng);
}

/// CPU time of the calling thread, in microseconds.
inline double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

/// Spends `us` microseconds of this thread's CPU time (not wall time: on a
/// shared or oversubscribed host, a descheduled thread must not count as
/// working). Stands for the physics of a costlier simulator. Returns a value
/// that depends on the work, so that the compiler cannot drop it.
inline double burn_cpu_us(double us) {
  const double end = thread_cpu_us() + us;
  double x = 1.0;
  while (thread_cpu_us() < end)
    for (int k = 0; k < 256; ++k) x = x * 0.999999 + 1e-6;
  return x;
}

}  // namespace control
