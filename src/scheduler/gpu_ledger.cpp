#include "scheduler/gpu_ledger.hpp"

#include <cmath>

namespace prism::scheduler {

std::optional<std::vector<int>> GpuLedger::acquire(double amount) {
  std::lock_guard lk(mu_);
  std::vector<int> ids;
  if (amount <= 0) return ids;
  if (amount < 1.0) {
    // Best fit: the fullest device that still has room, so fractions pack.
    int best = -1;
    for (size_t i = 0; i < used_.size(); ++i)
      if (used_[i] + amount <= 1.0 + kEps &&
          (best < 0 || used_[i] > used_[static_cast<size_t>(best)]))
        best = static_cast<int>(i);
    if (best < 0) return std::nullopt;
    used_[static_cast<size_t>(best)] += amount;
    ids.push_back(best);
    return ids;
  }
  const auto whole = static_cast<size_t>(std::ceil(amount - kEps));
  for (size_t i = 0; i < used_.size() && ids.size() < whole; ++i)
    if (used_[i] <= kEps) ids.push_back(static_cast<int>(i));
  if (ids.size() < whole) return std::nullopt;
  for (int i : ids) used_[static_cast<size_t>(i)] = 1.0;
  return ids;
}

void GpuLedger::release(const std::vector<int>& ids, double amount) {
  std::lock_guard lk(mu_);
  const double each = amount < 1.0 ? amount : 1.0;
  for (int i : ids) {
    auto& u = used_.at(static_cast<size_t>(i));
    u = std::max(0.0, u - each);
  }
}

}  // namespace prism::scheduler
