#include "group/placement.hpp"

#include <algorithm>

namespace prism::groups {

int members_that_fit(const scheduler::NodeResources& totals, const scheduler::ResourceDemand& each,
                     int limit) {
  // A scratch ledger knows the rules (fractional GPUs share a device, whole
  // ones do not; memory; custom): take members until one does not fit.
  scheduler::ResourceLedger ledger(totals);
  int n = 0;
  while (n < limit && ledger.try_acquire(each)) ++n;
  return n;
}

Expected<std::vector<int>> plan_members(size_t n, const std::vector<int>& room, Spread how,
                                        int first) {
  const int nodes = static_cast<int>(room.size());
  std::vector<int> left = room;
  std::vector<int> order;  // nodes from `first` on
  for (int k = 0; k < nodes; ++k) order.push_back((std::max(first, 0) + k) % std::max(nodes, 1));
  std::vector<int> plan;
  plan.reserve(n);
  switch (how) {
    case Spread::kPack:
      for (int node : order)
        while (plan.size() < n && left[node] > 0) {
          plan.push_back(node);
          --left[node];
        }
      break;
    case Spread::kOnePerNode:
      for (int node : order)
        if (plan.size() < n && left[node] > 0) plan.push_back(node);
      break;
    case Spread::kSpread:
      for (bool placed = true; plan.size() < n && placed;) {
        placed = false;
        for (int node : order)
          if (plan.size() < n && left[node] > 0) {
            plan.push_back(node);
            --left[node];
            placed = true;
          }
      }
      // Members of one node get consecutive indices (collectives combine
      // them there first; the order of nodes stays round-robin's).
      std::stable_sort(plan.begin(), plan.end(), [&](int a, int b) {
        auto pos = [&](int node) { return std::find(order.begin(), order.end(), node); };
        return pos(a) < pos(b);
      });
      break;
  }
  if (plan.size() < n)
    return Status{Errc::kBusy, "room for " + std::to_string(plan.size()) + " of " +
                                   std::to_string(n) + " members"};
  return plan;
}

std::string describe(const scheduler::ResourceDemand& d) {
  auto num = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (d.num_cpus > 0) add(num(d.num_cpus) + (d.num_cpus == 1 ? " CPU" : " CPUs"));
  if (d.num_gpus > 0) add(num(d.num_gpus) + (d.num_gpus == 1 ? " GPU" : " GPUs"));
  for (const auto& [k, v] : d.custom) add(num(v) + " " + k);
  if (d.memory > 0) add(std::to_string(d.memory >> 20) + " MiB memory");
  return out.empty() ? "nothing" : out;
}

std::string infeasibility(const std::string& what, size_t n, const scheduler::ResourceDemand& each,
                          const std::vector<scheduler::NodeResources>& nodes, Spread how,
                          const std::vector<int>& lost) {
  std::vector<int> room;
  int total = 0;
  std::string per_node;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const bool gone = std::find(lost.begin(), lost.end(), static_cast<int>(k)) != lost.end();
    int r = gone ? 0 : members_that_fit(nodes[k], each, static_cast<int>(n));
    if (how == Spread::kOnePerNode) r = std::min(r, 1);
    room.push_back(r);
    total += r;
    per_node += (k ? ", node " : "node ") + std::to_string(k) + ": " +
                (gone ? std::string("lost") : std::to_string(r));
  }
  if (plan_members(n, room, how, 0)) return {};
  const std::string need = what + " needs " + std::to_string(n) + " members of {" + describe(each) +
                           "}" +
                           (how == Spread::kOnePerNode ? ", each on a node rank of its own" : "");
  return need + ", but the job's " + std::to_string(nodes.size()) + " node ranks can hold " +
         std::to_string(total) + (how == Spread::kOnePerNode ? " such ranks" : "") + " (" +
         per_node + "): " + std::to_string(n - static_cast<size_t>(total)) + " short";
}

}  // namespace prism::groups
