// Which rank does what. Node ranks are world ranks 0 .. num_nodes-1 (node
// index == world rank, the driver is node 0); the GCS group is the last
// gcs_ranks ranks, so a job grows by node ranks without renumbering.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::runtime {

struct ClusterLayout {
  int world_size = 1;
  int world_rank = 0;
  int num_nodes = 1;
  std::vector<int> gcs_ranks;
  int host_rank = 0;  // this rank's index among the ranks on its host
  int ranks_on_host = 1;
  int first_core = 0;  // node ranks: worker i is pinned to core first_core + i of the rank's cores

  bool is_node() const noexcept { return world_rank < num_nodes; }
  bool is_driver() const noexcept { return world_rank == 0; }
  bool is_gcs() const noexcept { return !is_node(); }
  std::string role() const { return is_driver() ? "driver" : is_node() ? "node" : "gcs"; }
};

/// Splits `world_size` ranks; fails with a message naming the counts when
/// there are too few ranks.
inline Expected<ClusterLayout> make_layout(int world_size, int world_rank, int gcs_ranks) {
  if (gcs_ranks < 1) return Status{Errc::kInvalidArgument, "the GCS group needs at least 1 rank"};
  if (world_size < gcs_ranks + 1)
    return Status{Errc::kInvalidArgument,
                  "Prism needs at least " + std::to_string(gcs_ranks + 1) + " ranks (" +
                      std::to_string(gcs_ranks) + " GCS + 1 node rank) but the job has " +
                      std::to_string(world_size) + "; start more ranks (e.g. mpirun -n " +
                      std::to_string(gcs_ranks + 2) + ") or lower --prism-gcs-ranks"};
  ClusterLayout l;
  l.world_size = world_size;
  l.world_rank = world_rank;
  l.num_nodes = world_size - gcs_ranks;
  for (int r = l.num_nodes; r < world_size; ++r) l.gcs_ranks.push_back(r);
  return l;
}

}  // namespace prism::runtime
