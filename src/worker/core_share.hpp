// How the node ranks of one host split its cores (config cpu-layout=host).
//
// mpirun binds each rank to one core when it starts two ranks or fewer
// (Open MPI's default), and srun binds by task; neither knows that a Prism
// GCS rank mostly sleeps while a node rank's workers want every core. So
// each rank computes, from the host's job cores and its place among the node
// ranks there, which cores it takes, and rebinds itself (Topology::
// bind_process): node ranks get disjoint, equal shares (the first ones one
// more when the count does not divide), GCS ranks float over all of them.
// More node ranks than cores (virtual nodes on a workstation): every node
// rank floats with one worker, and the OS balances them.
#pragma once

namespace prism::worker {

struct CoreShare {
  int first = 0;     // first job core of the share (an index, not an OS cpu number)
  int count = 1;     // cores it spans
  int slots = 1;     // worker threads (CPU slots) of a node rank
  int pin_from = 0;  // worker i is pinned to core (pin_from + i) of the share, mod its size
  // Whether workers are pinned at all. Not with more node ranks than cores:
  // there a pinned worker waits for its one core while another sits idle
  // (measured: allreduce between 4 members on 2 cores 1.24-1.38x plain MPI
  // pinned, 0.98-1.03x floating; task benchmarks even), so they float.
  bool pin = true;
};

/// The share of node rank `index` (0-based among the `node_ranks` node ranks
/// of the host), or of a GCS rank (`index` < 0), of `job_cores` cores.
CoreShare share_host_cores(int job_cores, int node_ranks, int index);

/// The cores a job may use on this host: hwloc's allowed cores, capped by
/// the CPUs Slurm allocated the job on this node (`slurm_cpus_on_node`,
/// $SLURM_CPUS_ON_NODE, may be null) where no cgroup already limits them.
int job_cores_on_host(int allowed_cores, const char* slurm_cpus_on_node);

}  // namespace prism::worker
