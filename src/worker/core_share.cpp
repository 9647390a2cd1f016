#include "worker/core_share.hpp"

#include <algorithm>
#include <cstdlib>

namespace prism::worker {

CoreShare share_host_cores(int job_cores, int node_ranks, int index) {
  job_cores = std::max(1, job_cores);
  CoreShare s;
  if (index < 0 || node_ranks > job_cores) {  // GCS rank, or oversubscribed: float
    s.first = 0;
    s.count = job_cores;
    s.slots = 1;
    s.pin_from = std::max(0, index) % job_cores;
    s.pin = index < 0;  // (a GCS rank has no workers)
    return s;
  }
  node_ranks = std::max(1, node_ranks);
  const int base = job_cores / node_ranks, extra = job_cores % node_ranks;
  s.first = index * base + std::min(index, extra);
  s.count = base + (index < extra ? 1 : 0);
  s.slots = s.count;
  return s;
}

int job_cores_on_host(int allowed_cores, const char* slurm_cpus_on_node) {
  int cores = std::max(1, allowed_cores);
  if (slurm_cpus_on_node && *slurm_cpus_on_node) {
    char* end = nullptr;
    const long n = std::strtol(slurm_cpus_on_node, &end, 10);
    if (end && *end == '\0' && n > 0) cores = std::min<long>(cores, n);
  }
  return cores;
}

}  // namespace prism::worker
