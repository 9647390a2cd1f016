// CPU time of the global scheduler's work against the number of nodes, on
// Prism's own scheduler::GlobalScheduler:
//  - what the GCS rank does per spilled task (interchangeable() and pick(),
//    both a pass over every node) plus a heartbeat applied every 64 picks;
//    calibrate fits a + b * nodes to it;
//  - one heartbeat (on_heartbeat -> balance()) with no idle node: a scan of
//    every node ("scan"), and with half the nodes busy with movable tasks and
//    an idle one reporting ("steal"): the scan plus nodes/2 (thief, victim)
//    pairs tried; calibrate fits per-node and per-pair costs to them.
//
//   prism_scale_sim_pick [OUT.csv [BALANCE.csv]]
//     rows: nodes,ns_per_pick   and   nodes,ns_per_heartbeat_scan,ns_per_heartbeat_steal
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "scheduler/global_scheduler.hpp"

namespace sched = prism::scheduler;

namespace {

sched::GlobalScheduler make(int n) {
  std::vector<sched::NodeResources> nodes;
  for (int i = 0; i < n; ++i) {
    sched::NodeResources r;
    r.rank = i;
    r.num_cpus = 16;
    nodes.push_back(r);
  }
  return sched::GlobalScheduler(std::move(nodes));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Per heartbeat, ns: {no idle node (scan only), an idle node among n/2 busy
// ones with movable tasks (scan + n/2 pairs, one order)}.
std::pair<double, double> heartbeat_cost(int n, uint64_t& sink) {
  sched::GlobalScheduler gs = make(n);
  sched::NodeLoad busy;
  busy.queued = 64;
  busy.running = 16;
  const int reps = std::max(200, 400000 / n);
  for (int i = 0; i < n; ++i) gs.on_heartbeat(i, busy);  // nobody idle, nothing movable
  auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < reps; ++k) sink += gs.on_heartbeat(k % n, busy).size();
  const double scan = seconds_since(t0) * 1e9 / reps;
  // Steal: even nodes are busy with movable tasks, odd ones idle. Every
  // heartbeat of an odd node that counts its last push finds it idle again.
  sched::GlobalScheduler st = make(n);
  sched::NodeLoad victim = busy;
  victim.queued = victim.movable = 1u << 30;
  std::vector<uint64_t> pushes(size_t(n), 0);
  auto refresh = [&] {
    for (int i = 0; i < n; i += 2) sink += st.on_heartbeat(i, victim).size();
  };
  refresh();
  double total = 0;
  int64_t count = 0;
  while (count < reps) {
    refresh();  // untimed: victims' counts of tasks ordered away start again
    auto t1 = std::chrono::steady_clock::now();
    for (int j = 1; j < n; j += 2) {
      sched::NodeLoad idle;
      idle.pushes_received = ++pushes[size_t(j)];
      sink += st.on_heartbeat(j, idle).size();
      ++count;
    }
    total += seconds_since(t1);
  }
  return {scan, n > 1 ? total * 1e9 / double(count) : scan};
}

}  // namespace

int main(int argc, char** argv) {
  std::FILE* out = argc > 1 ? std::fopen(argv[1], "w") : stdout;
  if (out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::FILE* bal = argc > 2 ? std::fopen(argv[2], "w") : nullptr;
  if (argc > 2 && bal == nullptr) {
    std::perror(argv[2]);
    return 1;
  }
  std::fprintf(out, "nodes,ns_per_pick\n");
  if (bal) std::fprintf(bal, "nodes,ns_per_heartbeat_scan,ns_per_heartbeat_steal\n");
  for (int n : {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}) {
    sched::GlobalScheduler gs = make(n);
    const sched::TaskRequest r{};
    const int picks = std::max(20000, 4000000 / n);
    uint64_t sink = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < picks; ++k) {
      sink += gs.interchangeable(r) ? 1 : 0;
      sink += static_cast<uint64_t>(*gs.pick(r));
      if (k % 64 == 0) {
        sched::NodeLoad load;
        load.queued = 3;
        load.running = 16;
        load.received_from_global = static_cast<uint64_t>(k);
        gs.on_heartbeat(k % n, load);
      }
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(out, "%d,%.2f\n", n, ns / picks);
    if (bal && n >= 2) {
      const auto [scan, steal] = heartbeat_cost(n, sink);
      std::fprintf(bal, "%d,%.2f,%.2f\n", n, scan, steal);
    }
    if (sink == 42) std::fprintf(stderr, " ");  // keeps the loop
  }
  if (bal) std::fclose(bal);
  if (out != stdout) std::fclose(out);
  return 0;
}
