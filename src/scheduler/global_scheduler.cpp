#include "scheduler/global_scheduler.hpp"

#include <algorithm>
#include <limits>

namespace prism::scheduler {

GlobalScheduler::GlobalScheduler(std::vector<NodeResources> nodes)
    : feasibility_(0, std::move(nodes)), views_(static_cast<size_t>(feasibility_.num_nodes())) {}

std::vector<StealOrder> GlobalScheduler::on_heartbeat(int node, const NodeLoad& load) {
  if (node < 0 || node >= num_nodes()) return {};
  auto& v = views_[static_cast<size_t>(node)];
  // Heartbeats may overtake each other only across restarts; keep the newest.
  if (load.received_from_global < v.last.received_from_global ||
      load.pushes_received < v.last.pushes_received)
    return {};
  v.last = load;
  v.ordered_out = 0;                             // what it gave away is out of `load` already
  if (!order_outstanding(v)) v.promised_in = 0;  // and what it got is in it
  ++heartbeats_;
  return balance();
}

void GlobalScheduler::mark_lost(int node) {
  feasibility_.mark_lost(node);
  // An order whose victim is gone would be outstanding forever; orders are
  // not tracked per victim, so every outstanding one is forgotten (a late
  // push only makes its thief's count run ahead, which is harmless).
  for (auto& v : views_) {
    v.orders_to = v.last.pushes_received;
    v.promised_in = 0;
  }
}

double GlobalScheduler::slots(int i) const {
  return std::max(1.0, feasibility_.node(i).num_cpus);
}

// Every node with a free CPU slot and no order outstanding gets an order from
// the node whose movable tasks would even its load out the most (its oldest
// tasks). A node whose tasks run long is served before it runs dry, while
// nothing waits behind its running tasks (kQueueAheadPerSlot): the
// heartbeat, the order, the push and their wake-ups take a round trip
// through three ranks, and a node that asked only once idle sat through it
// after every task it got (5 ms episodes, four in flight on 2 node ranks:
// the pushed-to core idled ~12% of the time). Not for short tasks: pushed
// in batches, they lose little to the round trip, and asking ahead moved
// more of them between nodes for nothing (nested and async task rates fell
// 10-15%). The share is taken among all nodes still to be served, not
// pairwise: one busy node and three idle ones end with a quarter each, where
// halving per idle node would leave 1/2, 1/4, 1/8. Runs on each heartbeat:
// O(idle nodes x busy nodes), and returns at once while nothing can move.
std::vector<StealOrder> GlobalScheduler::balance() {
  const int n = num_nodes();
  std::vector<int> victims, thieves;
  double idle_slots = 0;  // of the thieves not served yet
  for (int i = 0; i < n; ++i) {
    const auto& v = views_[static_cast<size_t>(i)];
    if (feasibility_.lost(i)) continue;
    if (v.last.movable > v.ordered_out) victims.push_back(i);
    const double room = v.last.ask_ahead ? slots(i) * (1 + kQueueAheadPerSlot) : slots(i);
    if (feasibility_.node(i).num_cpus >= 1 && !order_outstanding(v) && estimated_tasks(i) < room) {
      thieves.push_back(i);
      idle_slots += slots(i);
    }
  }
  if (victims.empty() || thieves.empty()) return {};
  std::vector<StealOrder> orders;
  for (int j : thieves) {
    auto& thief = views_[static_cast<size_t>(j)];
    const double e_j = estimated_tasks(j), s_j = slots(j);
    StealOrder best;
    for (int i : victims) {
      if (i == j) continue;
      const auto& victim = views_[static_cast<size_t>(i)];
      const double e_i = estimated_tasks(i), s_i = slots(i);
      // The victim keeps its share of its tasks among itself and the idle
      // nodes still to be served; this thief takes its part of the rest.
      const double share = (e_i * s_j - e_j * s_i) / (s_i + idle_slots);
      const uint32_t movable = victim.last.movable - victim.ordered_out;
      auto k = static_cast<uint32_t>(
          std::clamp(share, 0.0, static_cast<double>(std::min(movable, kMaxStealBatch))));
      // Rounding down never leaves a thief idle while one more task would
      // still keep it no busier per slot than its victim.
      if (k == 0 && movable > 0 && (e_i - 1) / s_i >= (e_j + 1) / s_j) k = 1;
      if (k > best.count) best = {i, j, k};
    }
    idle_slots -= s_j;
    if (best.count == 0) continue;
    views_[static_cast<size_t>(best.victim)].ordered_out += best.count;
    thief.promised_in += best.count;
    ++thief.orders_to;
    ++steal_orders_;
    if (e_j >= s_j) ++orders_ahead_;
    ordered_moved_ += best.count;
    orders.push_back(best);
  }
  return orders;
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
  const double held = static_cast<double>(v.last.queued + v.last.running + in_transit) +
                      static_cast<double>(v.promised_in) - static_cast<double>(v.ordered_out);
  return std::max(0.0, held);
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
