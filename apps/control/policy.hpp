// The policy the apps learn: a small network from a cart-pole observation to
// one logit per action (left, right), its gradient, and the Adam optimizer.
//
// The parameters are one flat std::vector<float>, so a policy travels between
// processes as raw bytes (no serialization) and an ES perturbation is a slice
// of the noise table added to it. hidden = 0 gives a linear policy.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "control/cartpole.hpp"

namespace control {

struct PolicyShape {
  int hidden = 8;  ///< tanh units in the hidden layer; 0: logits are linear in the observation
  static constexpr int kIn = 4, kOut = 2;
  /// Number of parameters: [W1 (hidden x in), b1, W2 (out x hidden), b2], or [W (out x in), b].
  size_t size() const {
    return hidden == 0 ? size_t{kOut * (kIn + 1)}
                       : static_cast<size_t>(hidden * (kIn + 1) + kOut * (hidden + 1));
  }
};

/// Small random weights (scaled by fan-in), the same for every seed everywhere.
inline std::vector<float> initial_params(PolicyShape shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> p(shape.size());
  const float s1 = 1.f / std::sqrt(float{PolicyShape::kIn + 1});
  const float s2 = shape.hidden ? 1.f / std::sqrt(float(shape.hidden + 1)) : s1;
  const size_t first =
      shape.hidden ? static_cast<size_t>(shape.hidden * (PolicyShape::kIn + 1)) : 0;
  for (size_t i = 0; i < p.size(); ++i) p[i] = n(rng) * (i < first ? s1 : s2) * 0.5f;
  return p;
}

/// The network's activations for one observation (kept for the gradient).
struct Forward {
  std::array<float, 64> h{};  ///< hidden activations (hidden <= 64)
  std::array<float, PolicyShape::kOut> logits{};
  std::array<float, PolicyShape::kOut> prob{};
};

inline Forward forward(PolicyShape shape, const float* p, const Observation& o) {
  Forward f;
  constexpr int in = PolicyShape::kIn, out = PolicyShape::kOut;
  const int H = shape.hidden;
  const float* w2 = p;
  int width = in;
  const float* x = o.data();
  if (H > 0) {
    for (int j = 0; j < H; ++j) {
      const float* row = p + j * (in + 1);
      float a = row[in];
      for (int i = 0; i < in; ++i) a += row[i] * o[static_cast<size_t>(i)];
      f.h[static_cast<size_t>(j)] = std::tanh(a);
    }
    w2 = p + H * (in + 1);
    width = H;
    x = f.h.data();
  }
  float mx = -1e30f;
  for (int k = 0; k < out; ++k) {
    const float* row = w2 + k * (width + 1);
    float a = row[width];
    for (int i = 0; i < width; ++i) a += row[i] * x[i];
    f.logits[static_cast<size_t>(k)] = a;
    mx = std::max(mx, a);
  }
  float z = 0;
  for (int k = 0; k < out; ++k) z += f.prob[static_cast<size_t>(k)] = std::exp(f.logits[k] - mx);
  for (auto& q : f.prob) q /= z;
  return f;
}

/// The most likely action (ES and the realtime controller act greedily).
inline int greedy_action(PolicyShape shape, const float* p, const Observation& o) {
  const Forward f = forward(shape, p, o);
  return f.logits[1] > f.logits[0] ? 1 : 0;
}

/// grad += scale * d log pi(action | o) / d params.
inline void add_log_prob_gradient(PolicyShape shape, const float* p, const Observation& o,
                                  int action, float scale, float* grad) {
  const Forward f = forward(shape, p, o);
  constexpr int in = PolicyShape::kIn, out = PolicyShape::kOut;
  const int H = shape.hidden;
  const int width = H > 0 ? H : in;
  const float* x = H > 0 ? f.h.data() : o.data();
  float* g2 = grad + (H > 0 ? H * (in + 1) : 0);
  const float* w2 = p + (H > 0 ? H * (in + 1) : 0);
  std::array<float, 64> dh{};
  for (int k = 0; k < out; ++k) {
    // d log softmax_a / d logit_k = [k == a] - prob_k
    const float d = scale * ((k == action ? 1.f : 0.f) - f.prob[static_cast<size_t>(k)]);
    float* row = g2 + k * (width + 1);
    for (int i = 0; i < width; ++i) {
      row[i] += d * x[i];
      if (H > 0) dh[static_cast<size_t>(i)] += d * w2[k * (width + 1) + i];
    }
    row[width] += d;
  }
  for (int j = 0; j < H; ++j) {
    const float da = dh[static_cast<size_t>(j)] * (1.f - f.h[j] * f.h[j]);
    float* row = grad + j * (in + 1);
    for (int i = 0; i < in; ++i) row[i] += da * o[static_cast<size_t>(i)];
    row[in] += da;
  }
}

/// Adam (Kingma & Ba), the optimizer of both the policy-gradient learner and ES.
/// step() ascends: params += lr * m_hat / (sqrt(v_hat) + eps).
class Adam {
 public:
  explicit Adam(size_t n = 0, float lr = 0.01f) : m_(n), v_(n), lr_(lr) {}
  void ascend(std::vector<float>& params, const std::vector<float>& grad) {
    ++t_;
    const float b1 = 0.9f, b2 = 0.999f;
    const float c1 = 1.f - std::pow(b1, float(t_)), c2 = 1.f - std::pow(b2, float(t_));
    for (size_t i = 0; i < params.size(); ++i) {
      m_[i] = b1 * m_[i] + (1 - b1) * grad[i];
      v_[i] = b2 * v_[i] + (1 - b2) * grad[i] * grad[i];
      params[i] += lr_ * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + 1e-8f);
    }
  }
  int steps() const { return t_; }

 private:
  std::vector<float> m_, v_;
  float lr_;
  int t_ = 0;
};

/// Plays one episode greedily and returns its length (= its return).
inline int greedy_episode(PolicyShape shape, const float* p, uint64_t seed, int max_steps = 500) {
  CartPole env(max_steps);
  Observation o = env.reset(seed);
  while (env.step(greedy_action(shape, p, o) ? 1.0 : -1.0)) o = env.observe();
  return env.steps();
}

}  // namespace control
