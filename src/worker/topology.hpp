// What this rank may run on, from hwloc: the cores of its own cpuset (so
// mpirun/srun binding and Slurm cgroups are respected) and its GPUs, and the
// cores of the whole host that the job may use (cgroups and cpusets, not the
// launcher's per-process binding), so that run.cpp can give the node ranks of
// a host all of them (bind_process).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::worker {

class Topology {
 public:
  /// Loads the machine topology and this process's binding; `gpus`: also
  /// count GPUs (which may initialize CUDA).
  [[nodiscard]] static Expected<std::unique_ptr<Topology>> discover(bool gpus = true);
  ~Topology();

  /// Cores (not hardware threads) in this process's cpuset; at least 1.
  int num_cores() const noexcept { return static_cast<int>(core_sets_.size()); }
  /// Cores of the host this process may be bound to: hwloc's allowed cpuset
  /// (what cgroups and cpusets leave the job), whatever the launcher bound
  /// this process to; at least 1.
  int num_allowed_cores() const noexcept;
  /// Binds the whole process (every thread) to `count` allowed cores from
  /// allowed core `first` on (wrapping around), which then become the cores
  /// that num_cores() counts and pin_current_thread() uses. False (and the
  /// binding unchanged) if hwloc refused. Call before threads are pinned.
  bool bind_process(int first, int count);
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
  void use_cores(size_t n);  // core_sets_ = the first n of impl's cores
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<int> core_sets_;  // index into impl's cpuset list
  int num_gpus_ = 0;
  uint64_t total_memory_ = 0;
};

}  // namespace prism::worker
