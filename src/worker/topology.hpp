// What this rank may run on, from hwloc: the cores of its own cpuset (so
// mpirun/srun binding and Slurm cgroups are respected) and its GPUs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::worker {

class Topology {
 public:
  /// Loads the machine topology and this process's binding.
  [[nodiscard]] static Expected<std::unique_ptr<Topology>> discover();
  ~Topology();

  /// Cores (not hardware threads) in this process's cpuset; at least 1.
  int num_cores() const noexcept { return static_cast<int>(core_sets_.size()); }
  /// GPUs visible to this process (hwloc OS devices or CUDA runtime).
  int num_gpus() const noexcept { return num_gpus_; }
  /// Bytes of memory of the machine (or the cgroup), for store sizing.
  uint64_t total_memory() const noexcept { return total_memory_; }
  /// Pins the calling thread to core `i % num_cores()`; false if hwloc refused.
  bool pin_current_thread(int i) const;
  /// "2 cores (0-1), 0 GPUs"
  std::string describe() const;

 private:
  Topology() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<int> core_sets_;  // index into impl's cpuset list
  int num_gpus_ = 0;
  uint64_t total_memory_ = 0;
};

}  // namespace prism::worker
