// 04 — rollouts: where dynamic tasks beat bulk-synchronous MPI.
//
// An RL-style workload: 2000 rollouts whose durations are exponentially
// distributed (mean 1 ms, CPU-bound). The same list of rollouts runs two ways:
//
//   --mode=bsp    plain MPI: every step, each rank runs its share of the next
//                 rollouts, then MPI_Allreduce (the policy update) — everyone
//                 waits for the slowest rollout of the step;
//   --mode=prism  Prism tasks: submit everything, collect results as they come
//                 (prism::wait), so a long rollout delays nothing else.
//
// Efficiency = total rollout time / (wall time x cores): 1.0 is perfect.
//   mpirun -n 2 ./prism-rollouts --mode=bsp --per-step=1
//   mpirun -n 3 ./prism-rollouts --mode=prism          (1 GCS + 2 node ranks)
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <prism/prism.hpp>
#include <random>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

// One rollout: burn `micros` microseconds of this thread's CPU time (not wall
// time: on an oversubscribed host a descheduled rollout must not count as
// working); return a "reward".
double rollout(int id, int micros) {
  const double end = thread_cpu_us() + micros;
  double reward = id;
  while (thread_cpu_us() < end)
    for (int k = 0; k < 64; ++k) reward = reward * 0.999 + 1.0;
  return reward;
}
PRISM_REMOTE(rollout);

std::vector<int> durations(int n, double mean_us, unsigned seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<double> exp(1.0 / mean_us);
  std::vector<int> d(static_cast<size_t>(n));
  for (auto& x : d) x = std::max(1, static_cast<int>(exp(rng)));
  return d;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void report(const char* mode, double work_s, double wall_s, int cores, int n) {
  std::printf("%s: %d rollouts, work %.3f s, wall %.3f s on %d cores, efficiency %.2f\n", mode, n,
              work_s, wall_s, cores, work_s / (wall_s * cores));
}

int run_bsp(const std::vector<int>& d, int per_step, int cores) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  const size_t n = d.size(), step = static_cast<size_t>(size * per_step);
  double total = 0;
  for (size_t base = 0; base < n; base += step) {
    double local = 0;
    for (int k = 0; k < per_step; ++k) {
      const size_t i = base + static_cast<size_t>(rank * per_step + k);
      if (i < n) local += rollout(static_cast<int>(i), d[i]);
    }
    double sum = 0;  // the policy update everyone waits for
    MPI_Allreduce(&local, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    total += sum;
  }
  const double wall = seconds(Clock::now() - t0);
  double work = 0;
  for (int x : d) work += x * 1e-6;
  if (rank == 0) {
    char mode[64];
    std::snprintf(mode, sizeof mode, "bsp (%d ranks, %d per step)", size, per_step);
    report(mode, work, wall, std::min(cores, size), static_cast<int>(n));
    std::printf("prism-rollouts: OK (checksum %.1f)\n", total);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"RL rollouts: Prism tasks vs bulk-synchronous MPI"};
  std::string mode = "prism";
  int n = 2000, per_step = 1, cores = static_cast<int>(std::thread::hardware_concurrency());
  double mean_us = 1000;
  app.add_option("--mode", mode, "prism or bsp")->check(CLI::IsMember({"prism", "bsp"}));
  app.add_option("--rollouts", n, "number of rollouts");
  app.add_option("--mean-us", mean_us, "mean rollout duration (exponential)");
  app.add_option("--per-step", per_step, "bsp: rollouts per rank per step");
  app.add_option("--cores", cores, "cores the efficiency is measured against");
  app.allow_extras();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto d = durations(n, mean_us, 42);
  if (mode == "bsp") {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rc = run_bsp(d, per_step, cores);
    MPI_Finalize();
    return rc;
  }
  return prism::run(argc, argv, [&] {
    const auto t0 = Clock::now();
    std::vector<prism::ObjectRef<double>> pending;
    pending.reserve(d.size());
    for (size_t i = 0; i < d.size(); ++i)
      pending.push_back(prism::task(rollout).remote(static_cast<int>(i), d[i]));
    double total = 0;
    size_t done = 0;
    while (!pending.empty()) {  // consume results in completion order, as an RL learner does
      auto [ready, rest] = prism::wait(pending, std::min<size_t>(pending.size(), 16));
      for (auto& r : ready) total += prism::get(r);
      done += ready.size();
      pending = std::move(rest);
    }
    const double wall = seconds(Clock::now() - t0);
    double work = 0;
    for (int x : d) work += x * 1e-6;
    char label[64];
    std::snprintf(label, sizeof label, "prism (%d node ranks)", prism::num_nodes());
    report(label, work, wall, cores, static_cast<int>(done));
    std::printf("prism-rollouts: OK (checksum %.1f)\n", total);
  });
}
