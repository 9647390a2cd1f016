// Evolution Strategies as in Salimans et al. 2017 ("Evolution Strategies as a
// Scalable Alternative to Reinforcement Learning"), MPI-free and Prism-free so
// that apps/es.cpp and its BSP twin benchmarks/bsp/bsp_es.cpp run the same
// evaluations and the same update:
//  * a shared noise table of Gaussian numbers, made once from a seed; a
//    perturbation is a slice of it, so workers exchange offsets, not vectors;
//  * mirrored sampling: each perturbation eps is evaluated as theta + sigma eps
//    and theta - sigma eps on the same environment seed;
//  * centred-rank fitness shaping, weight decay, and Adam on the estimate
//    g = 1/(n sigma) sum_i (u_i+ - u_i-) eps_i.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "control/cartpole.hpp"
#include "control/policy.hpp"
#include "control/workload.hpp"

namespace control {

/// The shared noise table: `n` standard normal floats from `seed`.
inline std::vector<float> make_noise_table(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> t(n);
  for (auto& x : t) x = g(rng);
  return t;
}

/// What fixes one mirrored pair, the same in every program.
struct PairSpec {
  uint64_t seed = 1;  ///< the job's seed
  uint64_t pair = 0;  ///< the pair's index in the run
  int version = 0;    ///< the parameters' version (update count) it perturbs
  int hidden = 0;     ///< policy shape (0: linear)
  int max_steps = 500;
  float sigma = 0.1f;        ///< perturbation scale
  double extra_mean_us = 0;  ///< mean extra work per pair (workload.hpp)
  double extra_cv = 0;
};

/// The outcome of one pair. Trivially copyable: it travels as raw bytes.
struct PairResult {
  uint64_t pair = 0;
  uint64_t offset = 0;  ///< where its eps starts in the noise table
  int version = 0;
  int ret_pos = 0, ret_neg = 0;  ///< returns (= episode lengths) of theta +- sigma eps
  double cpu_us = 0;
};

/// Where pair `pair`'s perturbation starts in a table of `table_size` floats.
inline uint64_t noise_offset(const PairSpec& s, size_t table_size, size_t dim) {
  std::mt19937_64 rng(mix_seed(s.seed ^ 0x0ff5e7ULL, s.pair));
  return std::uniform_int_distribution<uint64_t>(0, table_size - dim)(rng);
}

/// Plays theta + sigma eps and theta - sigma eps greedily on one environment seed.
inline PairResult evaluate_pair(const float* noise, size_t table_size,
                                const std::vector<float>& theta, const PairSpec& s) {
  const double t0 = thread_cpu_us();
  const PolicyShape shape{s.hidden};
  PairResult r;
  r.pair = s.pair;
  r.version = s.version;
  r.offset = noise_offset(s, table_size, theta.size());
  std::vector<float> p(theta.size());
  const uint64_t env_seed = mix_seed(s.seed, s.pair);
  for (int sign : {+1, -1}) {
    for (size_t i = 0; i < p.size(); ++i) p[i] = theta[i] + sign * s.sigma * noise[r.offset + i];
    (sign > 0 ? r.ret_pos : r.ret_neg) = greedy_episode(shape, p.data(), env_seed, s.max_steps);
  }
  burn_cpu_us(extra_work_us(s.seed, s.pair, s.extra_mean_us, s.extra_cv));
  r.cpu_us = thread_cpu_us() - t0;
  return r;
}

/// The driver's side: turns a population of pair results into one step.
class EsOptimizer {
 public:
  EsOptimizer(PolicyShape shape, uint64_t seed, float sigma, float lr, float l2 = 0.005f)
      : theta_(initial_params(shape, seed)), adam_(theta_.size(), lr), sigma_(sigma), l2_(l2) {}

  /// One update from `results` (any order; sorted by pair so that every
  /// program sums in the same order).
  void update(std::vector<PairResult> results, const float* noise) {
    if (results.empty()) return;
    std::sort(results.begin(), results.end(),
              [](const PairResult& a, const PairResult& b) { return a.pair < b.pair; });
    // Centred ranks of all 2n returns, in [-0.5, 0.5]: the update ignores
    // the scale of returns, and one lucky episode cannot dominate it.
    const size_t n = results.size();
    std::vector<double> ret(2 * n);
    for (size_t i = 0; i < n; ++i)
      ret[2 * i] = results[i].ret_pos, ret[2 * i + 1] = results[i].ret_neg;
    std::vector<size_t> order(2 * n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ret[a] < ret[b]; });
    // Tied returns (common: a poor policy fails at the same step whatever
    // the perturbation) share their mean rank, so that ties add no noise.
    std::vector<float> rank(2 * n);
    for (size_t k = 0; k < order.size();) {
      size_t e = k;
      while (e < order.size() && ret[order[e]] == ret[order[k]]) ++e;
      const float r = static_cast<float>(k + e - 1) / 2.f / static_cast<float>(2 * n - 1) - 0.5f;
      for (; k < e; ++k) rank[order[k]] = r;
    }
    std::vector<float> g(theta_.size(), 0.f);
    for (size_t i = 0; i < n; ++i) {
      const float w = rank[2 * i] - rank[2 * i + 1];
      const float* eps = noise + results[i].offset;
      for (size_t d = 0; d < g.size(); ++d) g[d] += w * eps[d];
    }
    for (size_t d = 0; d < g.size(); ++d)
      g[d] = g[d] / (static_cast<float>(n) * sigma_) - l2_ * theta_[d];
    adam_.ascend(theta_, g);
    ++version_;
  }

  const std::vector<float>& theta() const { return theta_; }
  int version() const { return version_; }

 private:
  std::vector<float> theta_;
  Adam adam_;
  float sigma_, l2_;
  int version_ = 0;
};

/// The score ES is judged by: the mean greedy return of theta over `episodes`
/// evaluation episodes (seeds no training episode uses).
inline double es_score(PolicyShape shape, const std::vector<float>& theta, uint64_t seed,
                       int episodes, int max_steps = 500) {
  double sum = 0;
  for (int e = 0; e < episodes; ++e)
    sum += greedy_episode(shape, theta.data(), mix_seed(seed ^ 0xe7a1ULL, uint64_t(e)), max_steps);
  return sum / episodes;
}

}  // namespace control
