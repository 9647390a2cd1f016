// The policy-gradient algorithm of the rollouts app (REINFORCE with
// normalized discounted returns, Williams 1992), MPI-free and Prism-free so
// that apps/rollouts.cpp and its BSP twin benchmarks/bsp/bsp_rollouts.cpp run
// the same episodes and the same update.
#pragma once

#include <algorithm>
#include <boost/serialization/vector.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "control/cartpole.hpp"
#include "control/policy.hpp"
#include "control/workload.hpp"

namespace control {

/// One episode as the learner needs it. The gradient is computed where the
/// episode was played (as A3C's workers do), in two sums that stay linear in
/// the episode, so that the learner can still normalize returns over the
/// whole batch: with G_t the discounted return from step t,
///   g_ret = sum_t G_t grad log pi(a_t|s_t),  g_one = sum_t grad log pi(a_t|s_t),
/// and sum_ret, sum_ret2 the sums of G_t and G_t^2. A trajectory's steps stay
/// on the worker; this is ~2 x (number of parameters) floats.
struct EpisodeGradient {
  uint64_t episode = 0;  ///< its index in the run (fixes its seeds and extra work)
  int version = 0;       ///< the policy version that played it
  int length = 0;        ///< steps = return (reward 1 per step)
  double cpu_us = 0;     ///< CPU time the episode took, extra work included
  double sum_ret = 0, sum_ret2 = 0;
  std::vector<float> g_ret, g_one;
  template <class A>
  void serialize(A& a, unsigned) {
    a& episode& version& length& cpu_us& sum_ret& sum_ret2& g_ret& g_one;
  }
};

/// What fixes an episode, the same in every program. Trivially copyable.
struct EpisodeSpec {
  uint64_t seed = 1;     ///< the job's seed
  uint64_t episode = 0;  ///< the episode's index
  int version = 0;       ///< the policy version it is played with
  int hidden = 8;        ///< policy shape
  int max_steps = 500;
  int substeps = 1;          ///< physics substeps per step (cost per step)
  double extra_mean_us = 0;  ///< mean extra work per episode (workload.hpp)
  double extra_cv = 0;       ///< its coefficient of variation
};

constexpr float kGamma = 0.99f;

/// Plays episode `s.episode` with a stochastic policy (actions sampled from
/// the softmax), computes its gradient sums, then spends its extra work.
inline EpisodeGradient play_episode(const std::vector<float>& params, const EpisodeSpec& s) {
  const double t0 = thread_cpu_us();
  const PolicyShape shape{s.hidden};
  CartPole env(s.max_steps, s.substeps);
  std::mt19937_64 rng(mix_seed(s.seed, s.episode) ^ 0xac7ULL);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<Observation> obs;
  std::vector<int> actions;
  Observation o = env.reset(mix_seed(s.seed, s.episode));
  for (bool running = true; running;) {
    const int a = u(rng) < forward(shape, params.data(), o).prob[1] ? 1 : 0;
    obs.push_back(o);
    actions.push_back(a);
    running = env.step(a ? 1.0 : -1.0);
    o = env.observe();
  }
  EpisodeGradient e;
  e.episode = s.episode;
  e.version = s.version;
  e.length = env.steps();
  e.g_ret.assign(params.size(), 0.f);
  e.g_one.assign(params.size(), 0.f);
  std::vector<float> g_t(params.size());
  float ret = 0;
  for (size_t k = actions.size(); k-- > 0;) {
    ret = 1.f + kGamma * ret;
    e.sum_ret += ret, e.sum_ret2 += double{ret} * ret;
    std::fill(g_t.begin(), g_t.end(), 0.f);
    add_log_prob_gradient(shape, params.data(), obs[k], actions[k], 1.f, g_t.data());
    for (size_t i = 0; i < g_t.size(); ++i) e.g_ret[i] += ret * g_t[i], e.g_one[i] += g_t[i];
  }
  burn_cpu_us(extra_work_us(s.seed, s.episode, s.extra_mean_us, s.extra_cv));
  e.cpu_us = thread_cpu_us() - t0;
  return e;
}

/// The learner's state: the policy and its optimizer. update() takes a batch
/// of episodes and makes one Adam step along the REINFORCE gradient, with the
/// discounted returns normalized over the batch as the advantage:
///   grad = 1/N sum_t (G_t - mean)/sd grad log pi = (sum g_ret - mean sum g_one) / (sd N).
class Reinforce {
 public:
  Reinforce(int hidden, uint64_t seed, float lr)
      : shape_{hidden}, params_(initial_params(shape_, seed)), adam_(params_.size(), lr) {}

  void update(const std::vector<EpisodeGradient>& batch) {
    double steps = 0, sum = 0, sum2 = 0;
    for (const auto& e : batch) steps += e.length, sum += e.sum_ret, sum2 += e.sum_ret2;
    if (steps == 0) return;
    const double mean = sum / steps;
    const double sd = std::sqrt(std::max(0.0, sum2 / steps - mean * mean)) + 1e-6;
    std::vector<float> grad(params_.size(), 0.f);
    for (const auto& e : batch)
      for (size_t i = 0; i < grad.size(); ++i)
        grad[i] += static_cast<float>((e.g_ret[i] - mean * e.g_one[i]) / (sd * steps));
    adam_.ascend(params_, grad);
    ++version_;
  }

  const std::vector<float>& params() const { return params_; }
  int version() const { return version_; }
  PolicyShape shape() const { return shape_; }

 private:
  PolicyShape shape_;
  std::vector<float> params_;
  Adam adam_;
  int version_ = 0;
};

}  // namespace control
