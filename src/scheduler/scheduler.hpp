// Placement of tasks on nodes, as seen from one submitter.
//
// Bottom-up, as in the Ray paper: a task runs on the submitter's node when
// the node can ever satisfy it and has room; otherwise it spills to the
// global scheduler (GlobalScheduler, on the GCS group), or — when the job runs
// without one — to the feasible node with the lowest load this submitter has
// sent it. Placement hints (a node, spread) are honoured here directly. A
// request no node can ever satisfy fails at once, naming the resource. Not
// thread-safe: the runtime serializes calls.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::scheduler {

/// What a node offers (totals, not what is free).
struct NodeResources {
  int rank = 0;  // world rank of the node
  double num_cpus = 1;
  double num_gpus = 0;
  uint64_t memory = 0;
  std::map<std::string, double> custom;
};

struct TaskRequest {
  double num_cpus = 1;
  double num_gpus = 0;
  uint64_t memory = 0;
  std::map<std::string, double> custom;
  int node = -1;            // required node index, -1 = any
  int placement = 0;        // 0 default, 1 spread, 2 pack (prism::Placement)
  std::string name;         // for error messages
  int data_node = -1;       // node holding the task's largest argument, if any
  uint64_t data_bytes = 0;  // its size
};

/// Arguments at least this large pull a default-placed task to their node.
constexpr uint64_t kLocalityThreshold = 1 << 20;

class Scheduler {
 public:
  Scheduler(int local_node, std::vector<NodeResources> nodes);

  /// pick() result: let the global scheduler choose (see below).
  static constexpr int kGlobal = -2;

  /// With a global scheduler, pick() returns kGlobal for tasks the submitter's
  /// node should not run (no room there, or a large argument elsewhere);
  /// without one it chooses itself by the load it has sent each node.
  void use_global_scheduler(bool on) noexcept { global_ = on; }
  /// The node index to run `r` on (or kGlobal), or kInfeasible /
  /// kInvalidArgument. `local_has_room`: whether the submitter's node can
  /// take the task now; unset, this scheduler's own in-flight count decides.
  [[nodiscard]] Expected<int> pick(const TaskRequest& r,
                                   std::optional<bool> local_has_room = std::nullopt);
  /// What pick() would refuse (bad amounts, a bad or too small explicit
  /// node, no feasible node), without choosing a node or moving the spread
  /// rotation: for failing at submit time.
  [[nodiscard]] Status check(const TaskRequest& r) const;
  /// The nodes that can ever run `r`, in order; kInfeasible (naming the
  /// resource) when there are none.
  [[nodiscard]] Expected<std::vector<int>> feasible_nodes(const TaskRequest& r) const;
  /// Whether node `i` has enough of everything `r` asks for (when idle).
  bool can_ever_run(int i, const TaskRequest& r) const noexcept;
  /// Empty when node `i` can ever run `r`; otherwise why not.
  std::string infeasibility(int i, const TaskRequest& r) const;
  /// Bookkeeping: a task was sent to / finished on `node`.
  void on_dispatch(int node) { ++in_flight_.at(node); }
  void on_complete(int node) {
    if (in_flight_.at(node) > 0) --in_flight_.at(node);
  }
  int in_flight(int node) const { return in_flight_.at(node); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  const NodeResources& node(int i) const { return nodes_.at(i); }
  /// Node `i` is gone (docs/fault-tolerance.md): nothing is placed there
  /// any more, and a request pinned to it fails naming it.
  void mark_lost(int i);
  bool lost(int i) const noexcept { return lost_[static_cast<size_t>(i)]; }

 private:
  Status check_request(const TaskRequest& r) const;

  int local_;
  std::vector<NodeResources> nodes_;
  std::vector<int> in_flight_;
  std::vector<bool> lost_;
  int next_spread_ = 0;
  bool global_ = false;
};

}  // namespace prism::scheduler
