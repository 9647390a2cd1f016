// Gang placement of a group's members (actor groups and MPI tasks,
// docs/mpi-interop.md): every member needs the same resources, and the group
// is placed whole or not at all, like a Ray placement group. This file is the
// pure part: how many members fit where, which node each member goes to, and
// the error that names the shortfall. The runtime reserves the plan on the
// nodes (src/runtime/actor_groups.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "scheduler/resource_ledger.hpp"

namespace prism::groups {

/// How members are spread over nodes.
enum class Spread : uint8_t {
  kPack,        ///< fill the submitter's node, then the next: fewest nodes
  kSpread,      ///< one member per node in turn: as many nodes as members allow
  kOnePerNode,  ///< every member on a node of its own (MPI tasks: one rank per node rank)
};

/// How many members asking `each` a node with these totals could hold at
/// once, at most `limit`.
int members_that_fit(const scheduler::NodeResources& totals, const scheduler::ResourceDemand& each,
                     int limit);

/// Member i goes to node result[i] (a node index), given how many members
/// each node can take now (`room`, by node index). Members on one node get
/// consecutive indices when packed. kUnavailable if `room` is too small.
/// `first`: the node to start from (the submitter's).
[[nodiscard]] Expected<std::vector<int>> plan_members(size_t n, const std::vector<int>& room,
                                                      Spread how, int first);

/// "1 CPU, 1 GPU, 2 fpga, 64 MiB memory"
std::string describe(const scheduler::ResourceDemand& d);

/// Empty if n members asking `each` could ever be placed on nodes with
/// these totals; otherwise why not, naming the shortfall. `what` names the
/// group ("actor group of 4 Worker"). Nodes in `lost` (indices) hold none.
std::string infeasibility(const std::string& what, size_t n, const scheduler::ResourceDemand& each,
                          const std::vector<scheduler::NodeResources>& nodes, Spread how,
                          const std::vector<int>& lost = {});

}  // namespace prism::groups
