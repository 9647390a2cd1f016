// 03 — rollouts: the reinforcement-learning loop of the Ray paper.
//
// A policy learns to balance a cart-pole (apps/control/cartpole.hpp):
//
//  * the policy lives in a Learner actor, which asks for a GPU when the job
//    has one (--prism-num-gpus=1, or a GPU hwloc finds) and runs on a CPU
//    otherwise;
//  * each episode is a task, `rollout`, that plays the environment with the
//    policy it is given. Episodes end when the pole falls, so their lengths
//    (and durations) vary from ~10 to 500 steps;
//  * the driver processes rollouts as they finish (prism::wait), hands each
//    one to the learner, and starts the next episode with the policy the
//    learner returns — a future, so the new task waits for the learner
//    without the driver waiting for anything;
//  * the learner makes one REINFORCE step per `--batch` episodes, so the
//    return rises over the iterations (from ~20 to several hundred).
//
// There is no barrier: a long episode delays only itself, the others keep
// the cores busy (the learner is at most a few updates ahead of the policy an
// episode was played with, as in A3C or IMPALA).
// benchmarks/bsp/bsp_rollouts.cpp is the same algorithm as bulk-synchronous
// MPI; `--extra-ms` and `--cv` give each episode extra work of a chosen
// heterogeneity, for that comparison (docs/benchmarks.md).
//
//   mpirun -n 3 ./prism-rollouts                 (1 GCS rank + 2 node ranks)
//   mpirun -n 3 ./prism-rollouts --prism-num-gpus=1       (the learner holds a GPU)
#include <prism/prism.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "control/reinforce.hpp"

// What the learner hands out: the parameters and their version (the number
// of updates made so far).
struct Policy {
  int version = 0;
  std::vector<float> params;
  template <class A>
  void serialize(A& a, unsigned) {
    a& version& params;
  }
};

// An episode, as a task: any CPU slot of any node may run it. The policy
// arrives as a value (the ref the driver passes is resolved first). It returns
// the episode's gradient (apps/control/reinforce.hpp), not its steps: a few
// hundred bytes, whatever the episode's length.
control::EpisodeGradient rollout(Policy policy, control::EpisodeSpec spec) {
  spec.version = policy.version;
  return control::play_episode(policy.params, spec);
}
PRISM_REMOTE(rollout);

// The learner: an actor, because the policy and its optimizer are state that
// every update changes. It is threaded (max_concurrency = 2 below): its calls
// run on threads of its own, so that a learner call never queues behind an
// episode for a CPU slot (every slot is busy playing episodes, and the next
// episodes wait for the policy it returns). Threaded calls may overlap, so
// the state is guarded by a mutex.
class Learner {
 public:
  Learner(int hidden, uint64_t seed, float lr, int batch)
      : algo_(hidden, seed, lr), batch_size_(static_cast<size_t>(batch)) {}

  // Takes one finished episode; every `batch` of them makes one update.
  // Returns the policy the next episode should play.
  Policy learn(control::EpisodeGradient t) {
    std::lock_guard lock(mu_);
    lag_sum_ += algo_.version() - t.version;
    batch_.push_back(std::move(t));
    if (batch_.size() >= batch_size_) {
      algo_.update(batch_);  // a real network would run on prism::gpu_ids()[0] here
      batch_.clear();
    }
    return policy_locked();
  }
  Policy policy() const {
    std::lock_guard lock(mu_);
    return policy_locked();
  }
  // Mean number of updates made between an episode's start and its arrival.
  double mean_lag() const {
    std::lock_guard lock(mu_);
    const long n = static_cast<long>(algo_.version() * batch_size_ + batch_.size());
    return n ? static_cast<double>(lag_sum_) / static_cast<double>(n) : 0.0;
  }
  // Where the learner runs: the GPUs it holds, or "CPU".
  std::string device() const {
    const auto gpus = prism::gpu_ids();
    return gpus.empty() ? std::string("CPU")
                        : "GPU " + std::to_string(gpus.front()) + " (node " +
                              std::to_string(prism::node_id()) + ")";
  }

 private:
  Policy policy_locked() const { return {algo_.version(), algo_.params()}; }

  mutable std::mutex mu_;
  control::Reinforce algo_;
  size_t batch_size_;
  std::vector<control::EpisodeGradient> batch_;
  long lag_sum_ = 0;
};
PRISM_ACTOR(Learner, &Learner::learn, &Learner::policy, &Learner::mean_lag, &Learner::device);

namespace {

struct Options {
  int episodes = 600, batch = 4, hidden = 8, inflight = 0, report = 50;
  float lr = 0.01f;
  uint64_t seed = 1;
  double extra_ms = 0, cv = 0, min_gain = 2.0;
  int substeps = 1;
};

double mean(const std::vector<int>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return to > from ? s / static_cast<double>(to - from) : 0;
}

void drive(const Options& o) {
  using Clock = std::chrono::steady_clock;
  // One episode in flight per CPU slot, plus one each to cover the time a
  // slot would otherwise wait for the learner's next policy.
  int slots = 0;
  bool gpu = false;
  for (const auto& n : prism::nodes())
    slots += static_cast<int>(n.num_cpus), gpu |= n.num_gpus >= 1;
  const int inflight = o.inflight > 0 ? o.inflight : 2 * slots;

  auto learner = prism::actor<Learner>(o.hidden, o.seed, o.lr, o.batch)
                     .options({.num_gpus = gpu ? 1.0 : 0.0, .max_concurrency = 2})
                     .remote();
  std::printf("learner on %s; %d CPU slots, %d episodes in flight, batch %d\n",
              prism::get(learner.call(&Learner::device).remote()).c_str(), slots, inflight,
              o.batch);

  control::EpisodeSpec spec{.seed = o.seed,
                            .hidden = o.hidden,
                            .substeps = o.substeps,
                            .extra_mean_us = o.extra_ms * 1e3,
                            .extra_cv = o.cv};
  prism::ObjectRef<Policy> policy = learner.call(&Learner::policy).remote();
  std::vector<prism::ObjectRef<control::EpisodeGradient>> running;
  uint64_t started = 0;
  auto start_episode = [&] {
    spec.episode = started++;
    running.push_back(prism::task(rollout).remote(policy, spec));
  };

  const auto t0 = Clock::now();
  while (started < static_cast<uint64_t>(std::min(inflight, o.episodes))) start_episode();
  std::vector<int> returns;  // in the order episodes finished
  double cpu_us = 0, cpu_sq = 0;  // CPU time of the episodes, and its square
  while (!running.empty()) {
    // Whichever episode finishes first, whatever its length.
    auto [done, rest] = prism::wait(running, 1);
    running = std::move(rest);
    for (auto& r : done) {
      policy = learner.call(&Learner::learn).remote(r);  // the learner reads the episode itself
      const control::EpisodeGradient t = prism::get(r);  // the driver only logs it
      returns.push_back(t.length);
      cpu_us += t.cpu_us, cpu_sq += t.cpu_us * t.cpu_us;
      if (started < static_cast<uint64_t>(o.episodes)) start_episode();
      const size_t n = returns.size();
      if (o.report > 0 && n % static_cast<size_t>(o.report) == 0)
        std::printf("episodes %4zu: mean return %6.1f over the last %d\n", n,
                    mean(returns, n - static_cast<size_t>(o.report), n), o.report);
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto last = prism::get(policy);
  const double lag = prism::get(learner.call(&Learner::mean_lag).remote());

  const size_t n = returns.size(), tenth = std::max<size_t>(1, n / 10);
  const double first = mean(returns, 0, tenth), final = mean(returns, n - tenth, n);
  const double m = cpu_us / static_cast<double>(n);
  const double cv = std::sqrt(std::max(0.0, cpu_sq / static_cast<double>(n) - m * m)) / m;
  std::printf(
      "%zu episodes in %.3f s: %d updates, mean lag %.2f updates, episode CPU time CV %.2f, "
      "efficiency %.2f (CPU time of episodes / (wall x %d slots))\n",
      n, wall, last.version, lag, cv, cpu_us * 1e-6 / (wall * slots), slots);
  if (o.extra_ms > 0)  // the line benchmarks/bsp/sweep.sh reads
    std::printf(
        "bench: program=prism app=rollouts slots=%d episodes=%zu cv=%g extra_ms=%g "
        "wall_s=%.4f work_s=%.4f first_return=%.1f final_return=%.1f\n",
        slots, n, o.cv, o.extra_ms, wall, cpu_us * 1e-6, first, final);
  if (final < o.min_gain * first)
    throw std::runtime_error("the return did not improve enough: " + std::to_string(first) +
                             " -> " + std::to_string(final));
  std::printf(
      "prism-rollouts: OK (mean return %.1f over the first %zu episodes -> %.1f over the "
      "last %zu)\n",
      first, tenth, final, tenth);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"RL rollouts: REINFORCE on cart-pole with Prism tasks and a learner actor"};
  Options o;
  app.add_option("--episodes", o.episodes, "episodes to play");
  app.add_option("--batch", o.batch, "episodes per policy update");
  app.add_option("--hidden", o.hidden, "hidden units of the policy (0: linear)");
  app.add_option("--lr", o.lr, "Adam learning rate");
  app.add_option("--seed", o.seed, "job seed (environments, sampling, extra work)");
  app.add_option("--inflight", o.inflight, "episodes in flight (default: 2 per CPU slot)");
  app.add_option("--report", o.report, "print the mean return every N episodes (0: never)");
  app.add_option("--substeps", o.substeps, "physics substeps per environment step");
  app.add_option("--extra-ms", o.extra_ms, "mean extra work per episode, ms (benchmarks)");
  app.add_option("--cv", o.cv, "coefficient of variation of the extra work");
  app.add_option("--min-gain", o.min_gain, "fail unless final/first mean return reaches this");
  app.allow_extras();  // --prism-* flags are the runtime's
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return prism::run(argc, argv, [&] { drive(o); });
}
