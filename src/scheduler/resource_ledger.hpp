// ResourceLedger: what a node's running tasks hold — CPUs, GPUs, memory and
// custom resources — so the executor admits a task only when everything it
// asked for is free, and holds it while the task runs (Ray's resource
// accounting on the raylet). Amounts are logical, as in Ray: `memory` is a
// reservation, not a limit the OS enforces.
//
// CPUs and custom resources are counted in thousandths so fractional requests
// (0.5 CPU) add up exactly. A task blocked in get() lends its CPUs back
// (lend_cpus) and takes them back without waiting (reclaim_cpus), so the
// ledger may briefly be over-committed on CPUs, never on anything else.
//
// Not thread-safe: the owner (the worker pool) serializes calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/gpu_ledger.hpp"
#include "scheduler/scheduler.hpp"

namespace prism::scheduler {

/// What one task holds while it runs.
struct ResourceDemand {
  double num_cpus = 1;
  double num_gpus = 0;
  uint64_t memory = 0;
  std::map<std::string, double> custom = {};

  /// One CPU and nothing else: the common case, admitted on a fast path.
  bool is_plain_cpu() const noexcept {
    return num_gpus == 0 && memory == 0 && custom.empty() && num_cpus <= 1;
  }
};

/// What a grant gave beyond the counted amounts: the GPU devices.
struct ResourceGrant {
  std::vector<int> gpu_ids;
};

/// A snapshot of the counted amounts (GPUs are devices: see GpuLedger).
struct ResourceUsage {
  double cpus_free = 0;  // may be negative while blocked tasks reclaim
  uint64_t memory_free = 0;
};

class ResourceLedger {
 public:
  explicit ResourceLedger(const NodeResources& totals);

  /// Whether `d` could be granted now.
  bool fits(const ResourceDemand& d) const;
  /// Grants `d` if all of it is free now.
  std::optional<ResourceGrant> try_acquire(const ResourceDemand& d);
  /// Returns what try_acquire(d) granted.
  void release(const ResourceDemand& d, const ResourceGrant& g);
  /// A running task blocks (lend) / unblocks (reclaim): its CPUs only.
  void lend_cpus(double cpus) { cpus_used_ -= milli(cpus); }
  void reclaim_cpus(double cpus) { cpus_used_ += milli(cpus); }
  /// Whether a task asking for `other` would compete for something `head`
  /// cannot get now (used to keep a starving task from being overtaken).
  bool competes(const ResourceDemand& head, const ResourceDemand& other) const;

  ResourceUsage usage() const;

 private:
  static int64_t milli(double v) { return static_cast<int64_t>(v * 1000.0 + 0.5); }
  bool cpus_fit(const ResourceDemand& d) const {
    return cpus_used_ + milli(d.num_cpus) <= cpus_total_;
  }
  bool memory_fits(const ResourceDemand& d) const;
  bool custom_fits(const ResourceDemand& d) const;
  bool gpus_fit(const ResourceDemand& d) const;

  int64_t cpus_total_, cpus_used_ = 0;
  uint64_t memory_total_, memory_used_ = 0;  // memory_total_ 0: not tracked
  std::map<std::string, int64_t> custom_total_, custom_used_;
  mutable GpuLedger gpus_;  // probed by const queries (acquire + release)
};

}  // namespace prism::scheduler
