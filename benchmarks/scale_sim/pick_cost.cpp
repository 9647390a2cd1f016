// CPU time of one global-scheduler placement against the number of nodes, on
// Prism's own scheduler::GlobalScheduler: what the GCS rank does per spilled
// task (interchangeable() and pick(), both a pass over every node) plus a
// heartbeat applied every 64 picks. calibrate.sh fits a + b * nodes to it.
//
//   prism_scale_sim_pick [OUT.csv]     rows: nodes,ns_per_pick
#include <chrono>
#include <cstdio>
#include <vector>

#include "scheduler/global_scheduler.hpp"

namespace sched = prism::scheduler;

int main(int argc, char** argv) {
  std::FILE* out = argc > 1 ? std::fopen(argv[1], "w") : stdout;
  if (out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::fprintf(out, "nodes,ns_per_pick\n");
  for (int n : {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}) {
    std::vector<sched::NodeResources> nodes;
    for (int i = 0; i < n; ++i) {
      sched::NodeResources r;
      r.rank = i;
      r.num_cpus = 16;
      nodes.push_back(r);
    }
    sched::GlobalScheduler gs(std::move(nodes));
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
    if (sink == 42) std::fprintf(stderr, " ");  // keeps the loop
  }
  if (out != stdout) std::fclose(out);
  return 0;
}
