// The global scheduler's view of the nodes, as in scheduler::GlobalScheduler
// (src/scheduler/global_scheduler.cpp): load reports (heartbeats), pick() for
// spilled tasks, and balance() for work stealing (docs/scheduling.md,
// "Stealing"). It also counts the work each call did (nodes scanned, victim x
// thief pairs tried) so the model can charge the GCS rank's thread for it.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace scale_sim {

/// One heartbeat: a node rank's load when it sent it (scheduler::NodeLoad).
struct LoadReport {
  uint32_t queued = 0, running = 0;
  uint64_t received = 0;  // tasks the global scheduler sent it, as counted by the node
  uint32_t movable = 0;   // of `queued`, tasks another node could run instead
  uint64_t pushes = 0;    // pushes (steal orders carried out) that reached the node
  bool operator==(const LoadReport&) const = default;
};

/// "Node `victim`: push up to `count` of your queued movable tasks to `thief`."
struct StealOrder {
  int victim = -1, thief = -1;
  uint32_t count = 0;
};

/// WorkerPool::take_movable: removes the oldest jobs of `queue` that
/// `movable` accepts, at most min(count, limit), and returns them in order.
std::vector<int> take_oldest(std::deque<int>& queue, size_t count, size_t limit,
                             const std::function<bool(int)>& movable);

class GsModel {
 public:
  static constexpr uint32_t kMaxStealBatch = 1024;  // GlobalScheduler::kMaxStealBatch

  explicit GsModel(std::vector<int> slots) : slots_(std::move(slots)), views_(slots_.size()) {}

  /// Applies a heartbeat (stale ones are dropped) and runs balance(), as
  /// GlobalScheduler::on_heartbeat does whether stealing is on or not.
  std::vector<StealOrder> on_heartbeat(int node, const LoadReport& l);
  /// The least loaded node per slot (linear scan, rotating start); counts
  /// the task as sent there.
  int pick();
  double estimated_tasks(int i) const;

  // Work of the last on_heartbeat: nodes scanned and pairs tried.
  int64_t last_scanned = 0, last_pairs = 0;
  int64_t orders = 0, ordered_tasks = 0;

 private:
  struct View {
    LoadReport last;
    uint64_t sent = 0;         // tasks sent the node by pick(), ever
    uint64_t orders_to = 0;    // orders sent on its behalf (as thief), ever
    uint32_t promised_in = 0;  // tasks ordered its way, not yet in a heartbeat
    uint32_t ordered_out = 0;  // tasks ordered away from it since its last heartbeat
  };
  bool outstanding(const View& v) const { return v.orders_to > v.last.pushes; }
  double slots(int i) const { return double(slots_[size_t(i)]); }
  std::vector<StealOrder> balance();

  std::vector<int> slots_;
  std::vector<View> views_;
  size_t rotate_ = 0;
};

}  // namespace scale_sim
