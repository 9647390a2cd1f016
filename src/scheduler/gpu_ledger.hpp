// GpuLedger: which of a node's GPUs are taken, and by how much.
//
// A request below 1 (e.g. 0.5) shares one device with others while their
// fractions sum to at most 1; a whole request k takes k devices no task is
// using. A device is never over-subscribed. Thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

namespace prism::scheduler {

class GpuLedger {
 public:
  explicit GpuLedger(int num_gpus) : used_(static_cast<size_t>(std::max(0, num_gpus)), 0.0) {}

  /// The device ids granted for `amount` GPUs, or nothing if not available now.
  std::optional<std::vector<int>> acquire(double amount);
  /// Returns what acquire(amount) granted.
  void release(const std::vector<int>& ids, double amount);
  int num_gpus() const noexcept { return static_cast<int>(used_.size()); }

 private:
  static constexpr double kEps = 1e-9;
  std::mutex mu_;
  std::vector<double> used_;  // fraction of each device in use
};

}  // namespace prism::scheduler
