#include "scheduler/scheduler.hpp"

#include <limits>
#include <sstream>

namespace prism::scheduler {

Scheduler::Scheduler(int local_node, std::vector<NodeResources> nodes)
    : local_(local_node),
      nodes_(std::move(nodes)),
      in_flight_(nodes_.size(), 0),
      lost_(nodes_.size(), false) {}

void Scheduler::mark_lost(int i) {
  if (i >= 0 && i < num_nodes()) lost_[static_cast<size_t>(i)] = true;
}

bool Scheduler::can_ever_run(int i, const TaskRequest& r) const noexcept {
  if (lost_[static_cast<size_t>(i)]) return false;
  const auto& n = nodes_[static_cast<size_t>(i)];
  if (r.num_cpus > n.num_cpus || r.num_gpus > n.num_gpus) return false;
  if (r.memory > 0 && n.memory > 0 && r.memory > n.memory) return false;
  for (const auto& [k, v] : r.custom) {
    auto it = n.custom.find(k);
    if (v > (it == n.custom.end() ? 0 : it->second)) return false;
  }
  return true;
}

std::string Scheduler::infeasibility(int i, const TaskRequest& r) const {
  if (can_ever_run(i, r)) return {};  // the common case builds no message
  if (lost_[static_cast<size_t>(i)]) return "node rank " + std::to_string(i) + " was lost";
  const auto& n = nodes_[i];
  std::ostringstream why;
  if (r.num_cpus > n.num_cpus)
    why << "num_cpus=" << r.num_cpus << " > " << n.num_cpus;
  else if (r.num_gpus > n.num_gpus)
    why << "num_gpus=" << r.num_gpus << " > " << n.num_gpus;
  else if (r.memory > 0 && n.memory > 0 && r.memory > n.memory)
    why << "memory=" << r.memory << " > " << n.memory;
  else
    for (const auto& [k, v] : r.custom) {
      auto it = n.custom.find(k);
      double have = it == n.custom.end() ? 0 : it->second;
      if (v > have) {
        why << k << "=" << v << " > " << have;
        break;
      }
    }
  return why.str();
}

Expected<std::vector<int>> Scheduler::feasible_nodes(const TaskRequest& r) const {
  std::vector<int> feasible;
  for (int i = 0; i < num_nodes(); ++i)
    if (can_ever_run(i, r)) feasible.push_back(i);
  if (feasible.empty() && num_nodes() == 0)
    return Status{Errc::kInfeasible, "task '" + r.name + "' is infeasible: the job has no nodes"};
  if (feasible.empty())  // the message names the first node's shortfall
    return Status{Errc::kInfeasible, "task '" + r.name + "' is infeasible: no node has enough (" +
                                         infeasibility(0, r) + " on every node)"};
  return feasible;
}

// The checks that need no placement state: amounts and an explicit node.
Status Scheduler::check_request(const TaskRequest& r) const {
  const int n = num_nodes();
  if (r.num_cpus < 0 || r.num_gpus < 0)
    return Status{Errc::kInvalidArgument, "task '" + r.name + "': negative resource request"};
  if (r.node >= 0) {
    if (r.node >= n)
      return Status{Errc::kInvalidArgument, "task '" + r.name + "' asks for node " +
                                                std::to_string(r.node) + " but the job has " +
                                                std::to_string(n) + " nodes"};
    if (auto why = infeasibility(r.node, r); !why.empty())
      return Status{Errc::kInfeasible, "task '" + r.name + "' can never run on node " +
                                           std::to_string(r.node) + ": " + why};
  }
  return Status::ok();
}

Status Scheduler::check(const TaskRequest& r) const {
  PRISM_RETURN_IF_ERROR(check_request(r));
  if (r.node >= 0) return Status::ok();
  // Called for every task: no list, just "does any node qualify?".
  if (can_ever_run(local_, r)) return Status::ok();
  for (int i = 0; i < num_nodes(); ++i)
    if (can_ever_run(i, r)) return Status::ok();
  return feasible_nodes(r).status();  // builds the message naming the shortfall
}

Expected<int> Scheduler::pick(const TaskRequest& r, std::optional<bool> local_has_room) {
  const int n = num_nodes();
  PRISM_RETURN_IF_ERROR(check_request(r));
  if (r.node >= 0) return r.node;
  auto has_room = [&](int i) { return in_flight_[i] < static_cast<int>(nodes_[i].num_cpus + 0.5); };
  const bool local_ok = can_ever_run(local_, r);
  const bool room = local_has_room ? *local_has_room : has_room(local_);
  const bool data_elsewhere = r.placement == 0 && r.data_node >= 0 && r.data_node < n &&
                              r.data_node != local_ && r.data_bytes >= kLocalityThreshold &&
                              can_ever_run(r.data_node, r);
  const bool data_here =
      r.placement == 0 && r.data_node == local_ && r.data_bytes >= kLocalityThreshold;
  // The common case needs no list of feasible nodes (this runs for every
  // task): it fits here, there is room, and no large argument pulls it away.
  if (local_ok && r.placement != 1 && !data_elsewhere) {
    if (global_ && (room || r.placement == 2 || data_here)) return local_;
    if (!global_ && !data_here && (room || r.placement == 2)) return local_;
  }
  // Nothing to choose, or the global scheduler chooses: still no list (a
  // lone node whose queue is long comes here for every task).
  int feasible_count = 0;
  int only = -1;
  for (int i = 0; i < n; ++i)
    if (can_ever_run(i, r) && feasible_count++ == 0) only = i;
  if (feasible_count == 1) return only;
  // The global scheduler weighs load and locality with every node's heartbeat
  // (whatever may stay here returned above).
  if (feasible_count > 1 && global_ && r.placement != 1) return kGlobal;
  auto feasible_or = feasible_nodes(r);
  if (!feasible_or) return feasible_or.status();
  const std::vector<int>& feasible = *feasible_or;
  if (r.placement == 1) {  // spread
    int pick = feasible[static_cast<size_t>(next_spread_++) % feasible.size()];
    return pick;
  }
  // Locality: a large argument draws the task to its holder, unless that node
  // is already twice over its slots (then moving the data is cheaper).
  if ((data_elsewhere || data_here) &&
      in_flight_[r.data_node] < 2 * static_cast<int>(nodes_[r.data_node].num_cpus + 0.5))
    return r.data_node;
  if (local_ok && (room || r.placement == 2)) return local_;
  // Least loaded feasible node, starting after the last choice to rotate ties.
  int best = -1;
  double best_load = std::numeric_limits<double>::max();
  for (size_t k = 0; k < feasible.size(); ++k) {
    int i = feasible[(k + static_cast<size_t>(next_spread_)) % feasible.size()];
    double load = in_flight_[i] / std::max(1.0, nodes_[i].num_cpus);
    if (load < best_load) {
      best_load = load;
      best = i;
    }
  }
  ++next_spread_;
  return best;
}

}  // namespace prism::scheduler
