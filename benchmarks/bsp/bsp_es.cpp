// The bulk-synchronous MPI twin of apps/es.cpp: the same pairs (same seeds,
// noise offsets and extra work), the same update, written the way ES is
// written with MPI: each rank builds the noise table from the seed; every
// generation each of the P ranks evaluates `--per-rank` mirrored pairs with
// the current parameters, the results are gathered on every rank
// (MPI_Allgather) and every rank makes the same update. A generation lasts as
// long as its slowest rank.
//
//   mpirun -n 2 ./bsp_es --generations 100 --extra-ms 2 --cv 1
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <vector>

#include "control/es.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Evolution Strategies, bulk-synchronous MPI (the baseline of apps/es)"};
  int generations = 100, per_rank = 1, hidden = 0, eval_episodes = 10;
  float sigma = 0.2f, lr = 0.1f;
  uint64_t seed = 1;
  size_t noise_floats = size_t{1} << 20;
  double extra_ms = 0, cv = 0;
  app.add_option("--generations", generations, "updates");
  app.add_option("--per-rank", per_rank, "mirrored pairs per rank per generation");
  app.add_option("--hidden", hidden, "hidden units of the policy (0: linear)");
  app.add_option("--sigma", sigma, "perturbation scale");
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--seed", seed, "job seed (noise table, environments, extra work)");
  app.add_option("--noise-floats", noise_floats, "size of the shared noise table");
  app.add_option("--eval-episodes", eval_episodes, "episodes of the final score");
  app.add_option("--extra-ms", extra_ms, "mean extra work per pair, ms");
  app.add_option("--cv", cv, "coefficient of variation of the extra work");
  CLI11_PARSE(app, argc, argv);

  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const control::PolicyShape shape{hidden};
  const std::vector<float> noise = control::make_noise_table(noise_floats, seed);
  control::EsOptimizer opt(shape, seed, sigma, lr);  // the same on every rank
  control::PairSpec spec{.seed = seed,
                         .hidden = hidden,
                         .sigma = sigma,
                         .extra_mean_us = extra_ms * 1e3,
                         .extra_cv = cv};
  std::vector<control::PairResult> mine(static_cast<size_t>(per_rank)),
      all(mine.size() * static_cast<size_t>(size));
  const int bytes = static_cast<int>(mine.size() * sizeof(control::PairResult));
  double work_us = 0;
  long pairs = 0;

  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  for (int g = 0; g < generations; ++g) {
    const uint64_t base = static_cast<uint64_t>(g) * static_cast<uint64_t>(size * per_rank);
    for (int k = 0; k < per_rank; ++k) {
      spec.pair = base + static_cast<uint64_t>(rank * per_rank + k);
      spec.version = opt.version();
      mine[static_cast<size_t>(k)] =
          control::evaluate_pair(noise.data(), noise.size(), opt.theta(), spec);
    }
    // The synchronization point: everyone waits here for the slowest rank.
    MPI_Allgather(mine.data(), bytes, MPI_BYTE, all.data(), bytes, MPI_BYTE, MPI_COMM_WORLD);
    for (const auto& r : all) work_us += r.cpu_us;
    pairs += static_cast<long>(all.size());
    opt.update(all, noise.data());
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rank == 0) {
    const double score = control::es_score(shape, opt.theta(), seed, eval_episodes);
    std::printf(
        "%d generations, %ld pairs in %.3f s, efficiency %.2f (CPU time of pairs / "
        "(wall x %d ranks)), score %.1f\n",
        generations, pairs, wall, work_us * 1e-6 / (wall * size), size, score);
    std::printf(
        "bench: program=bsp app=es slots=%d pairs=%ld cv=%g extra_ms=%g wall_s=%.4f "
        "work_s=%.4f first_return=%.1f final_return=%.1f\n",
        size, pairs, cv, extra_ms, wall, work_us * 1e-6, score, score);
  }
  MPI_Finalize();
  return 0;
}
