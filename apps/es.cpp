// 05 — es: Evolution Strategies (Salimans et al. 2017), as in the Ray paper.
//
// A policy for cart-pole (apps/control/cartpole.hpp) is improved without
// gradients: perturb the parameters with Gaussian noise, play the perturbed
// policies, and move the parameters towards the perturbations that scored
// well (apps/control/es.hpp). What Prism does here:
//
//  * the shared noise table (4 MiB of Gaussian numbers) is one Prism object,
//    put once by the driver; every worker reads it in place (prism::get_view:
//    zero-copy on the driver's node, one RDMA pull on any other), and a
//    perturbation travels as an offset into it;
//  * worker actors, one per CPU slot, evaluate mirrored pairs of perturbed
//    policies; episodes last from ~10 steps (the pole falls) to 500;
//  * the driver keeps every worker busy (two calls queued each), takes
//    results as they finish (prism::wait), and aggregates a population into
//    one update. No barrier: a worker that finishes early gets the next pair
//    at once, with the newest parameters.
//
// It stops when the greedy policy's mean return over 10 evaluation episodes
// reaches --target (475 of a possible 500: CartPole-v1's "solved").
// benchmarks/bsp/bsp_es.cpp is the same algorithm as bulk-synchronous MPI;
// `--extra-ms` and `--cv` give each pair extra work of a chosen heterogeneity.
//
//   mpirun -n 3 ./prism-es                     (1 GCS rank + 2 node ranks)
#include <prism/prism.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/es.hpp"

// A worker: an actor, because the noise table view is state it keeps for its
// whole life (fetched once, then read in place by every evaluation).
class EsWorker {
 public:
  explicit EsWorker(prism::ObjectRef<std::vector<float>> noise) : noise_(prism::get_view(noise)) {}

  control::PairResult evaluate(std::vector<float> theta, control::PairSpec spec) {
    return control::evaluate_pair(noise_.data(), noise_.size(), theta, spec);
  }

 private:
  prism::View<float> noise_;  // keeps the object's bytes alive while the actor lives
};
PRISM_ACTOR(EsWorker, &EsWorker::evaluate);

namespace {

struct Options {
  int population = 16, generations = 200, eval_every = 1, eval_episodes = 10, hidden = 0;
  float sigma = 0.2f, lr = 0.1f;
  double target = 475, extra_ms = 0, cv = 0;
  uint64_t seed = 1;
  size_t noise_floats = size_t{1} << 20;
};

void drive(const Options& o) {
  using Clock = std::chrono::steady_clock;
  const control::PolicyShape shape{o.hidden};
  // The noise table, made once from the seed and shared as one object.
  const std::vector<float> noise = control::make_noise_table(o.noise_floats, o.seed);
  const prism::ObjectRef<std::vector<float>> noise_ref = prism::put(noise);

  // One worker per CPU slot, each holding its slot (num_cpus = 1) so that
  // it runs its evaluations there and nothing else does.
  std::vector<prism::ActorHandle<EsWorker>> workers;
  for (const auto& n : prism::nodes())
    for (int s = 0; s < static_cast<int>(n.num_cpus); ++s)
      workers.push_back(
          prism::actor<EsWorker>(noise_ref).options({.num_cpus = 1, .node = n.node}).remote());
  std::printf("%zu workers, population %d mirrored pairs, sigma %.2f, target %.0f\n",
              workers.size(), o.population, double{o.sigma}, o.target);

  control::EsOptimizer opt(shape, o.seed, o.sigma, o.lr);
  control::PairSpec spec{.seed = o.seed,
                         .hidden = o.hidden,
                         .sigma = o.sigma,
                         .extra_mean_us = o.extra_ms * 1e3,
                         .extra_cv = o.cv};
  std::vector<prism::ObjectRef<control::PairResult>> running;
  std::vector<size_t> runs_on;  // running[i] was given to workers[runs_on[i]]
  uint64_t next_pair = 0;
  auto give = [&](size_t w) {
    spec.pair = next_pair++;
    spec.version = opt.version();
    running.push_back(workers[w].call(&EsWorker::evaluate).remote(opt.theta(), spec));
    runs_on.push_back(w);
  };

  const uint64_t total_pairs =
      static_cast<uint64_t>(o.generations) * static_cast<uint64_t>(o.population);
  const auto t0 = Clock::now();
  for (int round = 0; round < 2; ++round)
    for (size_t w = 0; w < workers.size() && next_pair < total_pairs; ++w) give(w);
  std::vector<control::PairResult> population;
  double score = 0, first_score = -1, cpu_us = 0;
  int generation = 0;
  bool reached = false, stopping = false;
  long stale = 0, used = 0;
  while (!running.empty()) {
    auto [done, rest] = prism::wait(running, 1);
    const size_t i =
        static_cast<size_t>(std::find(running.begin(), running.end(), done[0]) - running.begin());
    const size_t w = runs_on[i];
    running.erase(running.begin() + static_cast<long>(i));
    runs_on.erase(runs_on.begin() + static_cast<long>(i));
    if (stopping) continue;  // the run is over: late results are dropped
    const control::PairResult r = prism::get(done[0]);
    cpu_us += r.cpu_us;
    stale += r.version < opt.version();
    ++used;
    population.push_back(r);
    if (population.size() == static_cast<size_t>(o.population)) {
      double mean_ret = 0;
      for (const auto& p : population) mean_ret += 0.5 * (p.ret_pos + p.ret_neg);
      mean_ret /= static_cast<double>(population.size());
      opt.update(std::move(population), noise.data());
      population.clear();
      ++generation;
      const bool last = generation >= o.generations;
      if (last || (o.eval_every > 0 && generation % o.eval_every == 0)) {
        score = control::es_score(shape, opt.theta(), o.seed, o.eval_episodes);
        if (first_score < 0) first_score = score;
        std::printf("generation %3d: population mean return %6.1f, score %6.1f\n", generation,
                    mean_ret, score);
        reached = o.eval_every > 0 && score >= o.target;
      }
      stopping = reached || last;
    }
    // Exactly generations x population pairs are given out: a run that does
    // not stop early plays the same pairs as bsp_es, the slow ones included.
    if (!stopping && next_pair < total_pairs) give(w);
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "%d generations, %ld pairs in %.3f s (%.0f%% played with parameters one update "
      "old or more), efficiency %.2f (CPU time of pairs / (wall x %zu workers))\n",
      generation, used, wall, 100.0 * static_cast<double>(stale) / static_cast<double>(used),
      cpu_us * 1e-6 / (wall * static_cast<double>(workers.size())), workers.size());
  if (o.extra_ms > 0)  // the line benchmarks/bsp/sweep.sh reads
    std::printf(
        "bench: program=prism app=es slots=%zu pairs=%ld cv=%g extra_ms=%g wall_s=%.4f "
        "work_s=%.4f first_return=%.1f final_return=%.1f\n",
        workers.size(), used, o.cv, o.extra_ms, wall, cpu_us * 1e-6, first_score, score);
  if (o.eval_every > 0 && !reached)
    throw std::runtime_error("ES did not reach the target " + std::to_string(o.target) + " in " +
                             std::to_string(generation) + " generations (score " +
                             std::to_string(score) + ")");
  if (reached)
    std::printf("prism-es: OK (score %.1f >= target %.0f after %d generations, %ld episodes)\n",
                score, o.target, generation, 2 * used);
  else
    std::printf("prism-es: OK (%d generations, score %.1f)\n", generation, score);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evolution Strategies on cart-pole with Prism actors"};
  Options o;
  app.add_option("--population", o.population, "mirrored pairs per update");
  app.add_option("--generations", o.generations, "updates at most");
  app.add_option("--target", o.target, "stop once the score reaches it");
  app.add_option("--eval-every", o.eval_every,
                 "score the policy every N generations (0: only at the end, never stop early)");
  app.add_option("--eval-episodes", o.eval_episodes, "episodes per score");
  app.add_option("--hidden", o.hidden, "hidden units of the policy (0: linear)");
  app.add_option("--sigma", o.sigma, "perturbation scale");
  app.add_option("--lr", o.lr, "Adam learning rate");
  app.add_option("--seed", o.seed, "job seed (noise table, environments, extra work)");
  app.add_option("--noise-floats", o.noise_floats, "size of the shared noise table");
  app.add_option("--extra-ms", o.extra_ms, "mean extra work per pair, ms (benchmarks)");
  app.add_option("--cv", o.cv, "coefficient of variation of the extra work");
  app.allow_extras();  // --prism-* flags are the runtime's
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return prism::run(argc, argv, [&] { drive(o); });
}
