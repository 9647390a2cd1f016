// GlobalScheduler: where a task goes when its submitter's node cannot take it
// (the bottom-up scheduler's second level, as in the Ray paper).
//
// Node ranks report their load in heartbeats; between heartbeats the global
// scheduler adds the tasks it has sent a node that the node has not reported
// receiving yet, so a burst of spilled tasks spreads out instead of piling on
// the node that looked idle in its last report. A task with a large argument
// goes to the node holding it unless that node is already twice over its CPU
// slots (then moving the data is cheaper than waiting); otherwise to the
// feasible node with the fewest tasks per CPU slot.
//
// Pure logic, no transport: runtime/gcs_role.cpp feeds it messages. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.hpp"
#include "scheduler/scheduler.hpp"

namespace prism::scheduler {

/// One heartbeat: a node rank's load when it sent it.
struct NodeLoad {
  uint32_t queued = 0;   // tasks waiting for resources
  uint32_t running = 0;  // tasks holding resources
  uint64_t received_from_global = 0;  // tasks this scheduler sent it, as counted by the node
};

class GlobalScheduler {
 public:
  explicit GlobalScheduler(std::vector<NodeResources> nodes);

  void on_heartbeat(int node, const NodeLoad& load);
  /// Node `node` is gone: nothing goes there any more.
  void mark_lost(int node) { feasibility_.mark_lost(node); }
  /// The node to run `r` on; counts the task as sent there. kInfeasible when
  /// no node can ever run it.
  [[nodiscard]] Expected<int> pick(const TaskRequest& r);

  /// Whether any node would do for `r`: no explicit node, placement hint or
  /// argument large enough to draw it, and every node can run it.
  bool interchangeable(const TaskRequest& r) const;
  /// Tasks node `i` is believed to hold (queued + running + on the way).
  double estimated_tasks(int i) const;
  uint64_t heartbeats() const noexcept { return heartbeats_; }
  uint64_t placed() const noexcept { return placed_; }
  int num_nodes() const noexcept { return feasibility_.num_nodes(); }

 private:
  struct View {
    NodeLoad last;      // latest heartbeat
    uint64_t sent = 0;  // tasks this scheduler sent the node, ever
  };
  Scheduler feasibility_;  // the nodes, and which can ever run a request
  std::vector<View> views_;
  size_t rotate_ = 0;
  uint64_t heartbeats_ = 0, placed_ = 0;
};

}  // namespace prism::scheduler
