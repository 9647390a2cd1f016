#include "gs_model.hpp"

#include <algorithm>
#include <limits>

namespace scale_sim {

std::vector<StealOrder> GsModel::on_heartbeat(int node, const LoadReport& l) {
  last_scanned = last_pairs = 0;
  View& v = views_[size_t(node)];
  if (l.received < v.last.received || l.pushes < v.last.pushes) return {};
  v.last = l;
  v.ordered_out = 0;
  if (!outstanding(v)) v.promised_in = 0;
  return balance();
}

double GsModel::estimated_tasks(int i) const {
  const View& v = views_[size_t(i)];
  const uint64_t transit = v.sent > v.last.received ? v.sent - v.last.received : 0;
  const double held = double(v.last.queued + v.last.running + transit) + double(v.promised_in) -
                      double(v.ordered_out);
  return std::max(0.0, held);
}

// GlobalScheduler::balance: every node with a free slot and no order
// outstanding gets an order from the node whose movable tasks even out its
// load the most, shares taken among all idle nodes still to be served.
std::vector<StealOrder> GsModel::balance() {
  const int n = int(views_.size());
  std::vector<int> victims, thieves;
  double idle_slots = 0;
  last_scanned = n;
  for (int i = 0; i < n; ++i) {
    const View& v = views_[size_t(i)];
    if (v.last.movable > v.ordered_out) victims.push_back(i);
    if (!outstanding(v) && estimated_tasks(i) < slots(i)) {
      thieves.push_back(i);
      idle_slots += slots(i);
    }
  }
  if (victims.empty() || thieves.empty()) return {};
  std::vector<StealOrder> out;
  for (int j : thieves) {
    View& thief = views_[size_t(j)];
    const double e_j = estimated_tasks(j), s_j = slots(j);
    StealOrder best;
    for (int i : victims) {
      if (i == j) continue;
      ++last_pairs;
      const View& victim = views_[size_t(i)];
      const double e_i = estimated_tasks(i), s_i = slots(i);
      const double share = (e_i * s_j - e_j * s_i) / (s_i + idle_slots);
      const uint32_t movable = victim.last.movable - victim.ordered_out;
      auto k = uint32_t(std::clamp(share, 0.0, double(std::min(movable, kMaxStealBatch))));
      if (k == 0 && movable > 0 && (e_i - 1) / s_i >= (e_j + 1) / s_j) k = 1;
      if (k > best.count) best = {i, j, k};
    }
    idle_slots -= s_j;
    if (best.count == 0) continue;
    views_[size_t(best.victim)].ordered_out += best.count;
    thief.promised_in += best.count;
    ++thief.orders_to;
    ++orders;
    ordered_tasks += best.count;
    out.push_back(best);
  }
  return out;
}

std::vector<int> take_oldest(std::deque<int>& queue, size_t count, size_t limit,
                             const std::function<bool(int)>& movable) {
  std::vector<int> taken;
  std::deque<int> kept;  // not movable: stays, in order
  const size_t n = std::min(count, limit);
  while (!queue.empty() && taken.size() < n) {
    const int job = queue.front();
    queue.pop_front();
    if (movable(job))
      taken.push_back(job);
    else
      kept.push_back(job);
  }
  queue.insert(queue.begin(), kept.begin(), kept.end());
  return taken;
}

int GsModel::pick() {
  const int n = int(views_.size());
  int best = 0;
  double best_load = std::numeric_limits<double>::max();
  for (int k = 0; k < n; ++k) {
    const int i = int((size_t(k) + rotate_) % size_t(n));
    const double load = estimated_tasks(i) / slots(i);
    if (load < best_load) best_load = load, best = i;
  }
  ++rotate_;
  ++views_[size_t(best)].sent;
  return best;
}

}  // namespace scale_sim
