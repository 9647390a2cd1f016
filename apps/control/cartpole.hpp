// The control task the apps learn and drive: cart-pole (Barto, Sutton &
// Anderson 1983) with the constants of Gym's CartPole-v1, in plain C++ so that
// no external simulator is needed.
//
// A pole is hinged on a cart that moves on a track; each step pushes the cart
// left or right (or, for a continuous controller, with a force in [-1, 1] of
// the maximum). The reward is 1 per step while the pole stays within 12
// degrees of upright and the cart within 2.4 m of the centre; an episode ends
// when it leaves those bounds or after `max_steps` steps. Episode lengths
// therefore vary from ~10 steps (a bad policy) to max_steps (a good one): the
// heterogeneity of trajectory lengths the Ray paper's workloads have.
//
// Header-only and MPI-free: the Prism apps and the BSP baselines in
// benchmarks/bsp include it, so both run exactly the same episodes.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <random>

namespace control {

/// Observation: cart position, cart velocity, pole angle, pole angular velocity.
using Observation = std::array<float, 4>;

/// Mixes a job seed and an index into an independent seed (splitmix64), so
/// that episode j gets the same environment in every program, whatever rank
/// or worker runs it.
inline uint64_t mix_seed(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class CartPole {
 public:
  /// `substeps` integrates each 20 ms step in that many Euler substeps: the
  /// same dynamics, more arithmetic per step (a stand-in for a costlier
  /// simulator; 1 = Gym's).
  explicit CartPole(int max_steps = 500, int substeps = 1)
      : max_steps_(max_steps), substeps_(substeps < 1 ? 1 : substeps) {}

  /// Starts an episode: every state variable uniform in [-0.05, 0.05].
  Observation reset(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-0.05, 0.05);
    x_ = u(rng), x_dot_ = u(rng), theta_ = u(rng), theta_dot_ = u(rng);
    steps_ = 0;
    return observe();
  }

  /// Applies a force of `push` x 10 N (push in [-1, 1]; a discrete action a
  /// is push = 2a - 1). Returns true while the episode goes on.
  bool step(double push) {
    constexpr double kGravity = 9.8, kMassCart = 1.0, kMassPole = 0.1, kLength = 0.5;
    constexpr double kTotalMass = kMassCart + kMassPole, kPoleMassLength = kMassPole * kLength;
    const double force = 10.0 * std::fmax(-1.0, std::fmin(1.0, push));
    const double tau = 0.02 / substeps_;
    for (int s = 0; s < substeps_; ++s) {
      const double cos_t = std::cos(theta_), sin_t = std::sin(theta_);
      const double temp = (force + kPoleMassLength * theta_dot_ * theta_dot_ * sin_t) / kTotalMass;
      const double theta_acc = (kGravity * sin_t - cos_t * temp) /
                               (kLength * (4.0 / 3.0 - kMassPole * cos_t * cos_t / kTotalMass));
      const double x_acc = temp - kPoleMassLength * theta_acc * cos_t / kTotalMass;
      x_ += tau * x_dot_;
      x_dot_ += tau * x_acc;
      theta_ += tau * theta_dot_;
      theta_dot_ += tau * theta_acc;
    }
    ++steps_;
    return !failed() && steps_ < max_steps_;
  }

  /// True once the pole or the cart left its bounds.
  bool failed() const { return std::fabs(x_) > 2.4 || std::fabs(theta_) > 12 * M_PI / 180; }
  Observation observe() const {
    return {static_cast<float>(x_), static_cast<float>(x_dot_), static_cast<float>(theta_),
            static_cast<float>(theta_dot_)};
  }
  int steps() const { return steps_; }
  int max_steps() const { return max_steps_; }

 private:
  int max_steps_, substeps_;
  double x_ = 0, x_dot_ = 0, theta_ = 0, theta_dot_ = 0;
  int steps_ = 0;
};

}  // namespace control
