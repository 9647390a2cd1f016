// The bulk-synchronous MPI twin of apps/rollouts.cpp: the same episodes (same
// seeds, same extra work per episode), the same REINFORCE update, written the
// way data-parallel RL is written with MPI: every iteration each of the P
// ranks plays `--per-rank` episodes with the current policy, the episodes'
// gradient sums are gathered on every rank (MPI_Allgather), and every rank
// makes the same update. An iteration lasts as long as its slowest rank.
//
//   mpirun -n 2 ./bsp_rollouts --episodes 400 --extra-ms 2 --cv 1
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "control/reinforce.hpp"

namespace {

// One episode's gradient as a fixed-size row of doubles, so that one
// MPI_Allgather moves a whole iteration: [episode, version, length, cpu_us,
// sum_ret, sum_ret2, g_ret..., g_one...]; length -1 marks padding.
constexpr size_t kHead = 6;

void pack(const control::EpisodeGradient& e, double* row) {
  row[0] = static_cast<double>(e.episode), row[1] = e.version, row[2] = e.length;
  row[3] = e.cpu_us, row[4] = e.sum_ret, row[5] = e.sum_ret2;
  std::copy(e.g_ret.begin(), e.g_ret.end(), row + kHead);
  std::copy(e.g_one.begin(), e.g_one.end(), row + kHead + e.g_ret.size());
}

control::EpisodeGradient unpack(const double* row, size_t n) {
  control::EpisodeGradient e;
  e.episode = static_cast<uint64_t>(row[0]), e.version = static_cast<int>(row[1]);
  e.length = static_cast<int>(row[2]), e.cpu_us = row[3], e.sum_ret = row[4], e.sum_ret2 = row[5];
  e.g_ret.assign(row + kHead, row + kHead + n);
  e.g_one.assign(row + kHead + n, row + kHead + 2 * n);
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"RL rollouts, bulk-synchronous MPI (the baseline of apps/rollouts)"};
  int episodes = 600, per_rank = 1, hidden = 8, substeps = 1;
  float lr = 0.01f;
  uint64_t seed = 1;
  double extra_ms = 0, cv = 0;
  app.add_option("--episodes", episodes, "episodes to play");
  app.add_option("--per-rank", per_rank, "episodes per rank per iteration");
  app.add_option("--hidden", hidden, "hidden units of the policy (0: linear)");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--seed", seed, "job seed (environments, sampling, extra work)");
  app.add_option("--substeps", substeps, "physics substeps per environment step");
  app.add_option("--extra-ms", extra_ms, "mean extra work per episode, ms");
  app.add_option("--cv", cv, "coefficient of variation of the extra work");
  CLI11_PARSE(app, argc, argv);

  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  control::Reinforce algo(hidden, seed, lr);  // the same policy on every rank
  const size_t n = algo.params().size(), row = kHead + 2 * n;
  const int batch = size * per_rank;
  std::vector<double> mine(static_cast<size_t>(per_rank) * row), all(mine.size() * size);
  std::vector<int> returns;
  double work_us = 0;

  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  for (int base = 0; base < episodes; base += batch) {
    for (int k = 0; k < per_rank; ++k) {
      const int j = base + rank * per_rank + k;
      double* out = mine.data() + static_cast<size_t>(k) * row;
      if (j >= episodes) {
        out[2] = -1;
        continue;
      }
      control::EpisodeSpec spec{.seed = seed,
                                .episode = static_cast<uint64_t>(j),
                                .version = algo.version(),
                                .hidden = hidden,
                                .substeps = substeps,
                                .extra_mean_us = extra_ms * 1e3,
                                .extra_cv = cv};
      pack(control::play_episode(algo.params(), spec), out);
    }
    // The synchronization point: everyone waits here for the slowest rank.
    MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                  static_cast<int>(mine.size()), MPI_DOUBLE, MPI_COMM_WORLD);
    std::vector<control::EpisodeGradient> got;
    for (size_t r = 0; r < all.size() / row; ++r)
      if (all[r * row + 2] >= 0) got.push_back(unpack(&all[r * row], n));
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.episode < b.episode; });
    for (const auto& e : got) returns.push_back(e.length), work_us += e.cpu_us;
    algo.update(got);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rank == 0) {
    const size_t m = returns.size(), tenth = std::max<size_t>(1, m / 10);
    double first = 0, final = 0;
    for (size_t i = 0; i < tenth; ++i) first += returns[i], final += returns[m - 1 - i];
    first /= static_cast<double>(tenth), final /= static_cast<double>(tenth);
    std::printf(
        "%zu episodes in %.3f s: %d updates, efficiency %.2f (CPU time of episodes / "
        "(wall x %d ranks))\n",
        m, wall, algo.version(), work_us * 1e-6 / (wall * size), size);
    std::printf(
        "bench: program=bsp app=rollouts slots=%d episodes=%zu cv=%g extra_ms=%g "
        "wall_s=%.4f work_s=%.4f first_return=%.1f final_return=%.1f\n",
        size, m, cv, extra_ms, wall, work_us * 1e-6, first, final);
  }
  MPI_Finalize();
  return 0;
}
