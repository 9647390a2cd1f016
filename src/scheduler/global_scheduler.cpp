#include "scheduler/global_scheduler.hpp"

#include <algorithm>
#include <limits>

namespace prism::scheduler {

GlobalScheduler::GlobalScheduler(std::vector<NodeResources> nodes)
    : feasibility_(0, std::move(nodes)), views_(static_cast<size_t>(feasibility_.num_nodes())) {}

void GlobalScheduler::on_heartbeat(int node, const NodeLoad& load) {
  if (node < 0 || node >= num_nodes()) return;
  auto& v = views_[static_cast<size_t>(node)];
  // Heartbeats may overtake each other only across restarts; keep the newest.
  if (load.received_from_global < v.last.received_from_global) return;
  v.last = load;
  ++heartbeats_;
}

bool GlobalScheduler::interchangeable(const TaskRequest& r) const {
  if (r.node >= 0 || r.placement != 0 || r.data_bytes >= kLocalityThreshold) return false;
  for (int i = 0; i < num_nodes(); ++i)
    if (!feasibility_.can_ever_run(i, r)) return false;
  return true;
}

double GlobalScheduler::estimated_tasks(int i) const {
  const auto& v = views_.at(static_cast<size_t>(i));
  const uint64_t in_transit =
      v.sent > v.last.received_from_global ? v.sent - v.last.received_from_global : 0;
  return static_cast<double>(v.last.queued + v.last.running + in_transit);
}

Expected<int> GlobalScheduler::pick(const TaskRequest& r) {
  // Runs for every spilled task: no list of feasible nodes unless none is.
  const int n = num_nodes();
  auto slots = [&](int i) { return std::max(1.0, feasibility_.node(i).num_cpus); };
  int best = -1;
  if (r.data_node >= 0 && r.data_node < n && r.data_bytes >= kLocalityThreshold &&
      feasibility_.can_ever_run(r.data_node, r) &&
      estimated_tasks(r.data_node) < 2 * slots(r.data_node))
    best = r.data_node;
  if (best < 0) {
    double best_load = std::numeric_limits<double>::max();
    for (int k = 0; k < n; ++k) {  // rotating the start breaks ties fairly
      const int i = static_cast<int>((static_cast<size_t>(k) + rotate_) % static_cast<size_t>(n));
      if (!feasibility_.can_ever_run(i, r)) continue;
      const double load = estimated_tasks(i) / slots(i);
      if (load < best_load) {
        best_load = load;
        best = i;
      }
    }
    if (best < 0) return feasibility_.feasible_nodes(r).status();  // names the shortfall
    ++rotate_;
  }
  ++views_[static_cast<size_t>(best)].sent;
  ++placed_;
  return best;
}

}  // namespace prism::scheduler
