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
// Work stealing (docs/scheduling.md, "Stealing"): node ranks keep the tasks
// their own tasks submit, so a node can be busy while another idles. When a
// heartbeat shows a node with a free CPU slot and another node with queued
// tasks that could move (plain one-CPU tasks it owns, no placement), the
// global scheduler orders the busy node to push its oldest such tasks straight
// to the idle one, enough to even out their tasks per slot. One order per
// idle node is outstanding at a time: the idle node counts the pushes it
// received (an empty push included) in its heartbeats.
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
  uint32_t queued = 0;                // tasks waiting for resources
  uint32_t running = 0;               // tasks holding resources
  uint64_t received_from_global = 0;  // tasks this scheduler sent it, as counted by the node
  uint32_t movable = 0;               // of `queued`, tasks another node could run instead
  uint64_t pushes_received = 0;       // pushes (StealOrders carried out) that reached the node
  bool ask_ahead = false;             // its tasks run long: serve it before it runs dry
  bool operator==(const NodeLoad&) const = default;
};

/// "Node `victim`: send up to `count` of your queued movable tasks to node `thief`."
struct StealOrder {
  int victim = -1;
  int thief = -1;
  uint32_t count = 0;
};

class GlobalScheduler {
 public:
  explicit GlobalScheduler(std::vector<NodeResources> nodes);

  /// Takes a heartbeat; returns the steal orders it calls for (to send to
  /// each order's victim).
  std::vector<StealOrder> on_heartbeat(int node, const NodeLoad& load);
  /// Node `node` is gone: nothing goes there any more, and orders waiting
  /// on it are forgotten.
  void mark_lost(int node);
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
  uint64_t steal_orders() const noexcept { return steal_orders_; }
  uint64_t tasks_ordered_moved() const noexcept { return ordered_moved_; }
  /// Of steal_orders(), those for a node that still ran a task on every slot.
  uint64_t orders_ahead() const noexcept { return orders_ahead_; }
  /// At most this many tasks move per order (one message).
  static constexpr uint32_t kMaxStealBatch = 1024;
  /// A node whose tasks run long (NodeLoad::ask_ahead) may ask for work
  /// while it holds fewer than this many tasks per CPU slot beyond the ones
  /// it runs: one waiting per slot hides the steal round trip (balance()).
  static constexpr double kQueueAheadPerSlot = 1;
  int num_nodes() const noexcept { return feasibility_.num_nodes(); }

 private:
  struct View {
    NodeLoad last;             // latest heartbeat
    uint64_t sent = 0;         // tasks this scheduler sent the node, ever
    uint64_t orders_to = 0;    // steal orders sent on the node's behalf (as thief), ever
    uint32_t promised_in = 0;  // tasks ordered its way and not yet seen in a heartbeat
    uint32_t ordered_out = 0;  // tasks ordered away from it since its last heartbeat
  };
  bool order_outstanding(const View& v) const { return v.orders_to > v.last.pushes_received; }
  double slots(int i) const;
  // Steal orders for every idle node without one outstanding.
  std::vector<StealOrder> balance();
  Scheduler feasibility_;  // the nodes, and which can ever run a request
  std::vector<View> views_;
  size_t rotate_ = 0;
  uint64_t heartbeats_ = 0, placed_ = 0, steal_orders_ = 0, ordered_moved_ = 0, orders_ahead_ = 0;
};

}  // namespace prism::scheduler
