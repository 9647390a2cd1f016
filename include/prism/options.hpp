// Per-task options: resources and placement.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace prism {

/// Where a task may run when no node is named.
enum class Placement : uint8_t {
  kDefault,  ///< local first, then the least-loaded node (bottom-up scheduling)
  kSpread,   ///< round-robin over nodes, even if the local node has room
  kPack,     ///< fill the submitter's node before any other
};

/// Resources and placement of one task. Designated initializers read well:
///   prism::task(f).options({.num_gpus = 1, .name = "train"}).remote(x);
/// Plain value type; thread-compatible.
struct TaskOptions {
  double num_cpus = 1;  ///< CPU slots (worker threads) held while the task runs
  double num_gpus = 0;  ///< GPUs; fractions (0.5) share a device
  uint64_t memory = 0;  ///< bytes of node memory reserved while it runs
  std::map<std::string, double> resources = {};  ///< custom resources, e.g. {"fpga", 1}
  std::string name = {};  ///< shown in errors and the timeline (default: the function's name)
  int node = -1;          ///< run on this node (0 .. num_nodes()-1); -1: the scheduler decides
  Placement placement = Placement::kDefault;
  /// Above 0: an MPI task. The function runs on this many node ranks at
  /// once, each rank holding the resources above, and the ranks share an
  /// MPI communicator (prism::mpi::communicator(), prism/mpi.hpp). Rank 0's
  /// return value is the result; any rank's exception fails the task.
  int mpi_ranks = 0;
  /// Times the task runs again when a run is lost to a system fault (the
  /// node rank running it dies), as in Ray (default 3); 0: never; -1: every
  /// time. Below -1 is an error at submission.
  int max_retries = 3;
  /// Also run it again (up to max_retries times) when it throws. A retried
  /// task's result is delivered once: the last attempt's.
  bool retry_exceptions = false;
};

}  // namespace prism
