// The ctest scale_sim_check (label sim): properties a sane model of Prism's
// control plane must have. Small configurations, a few seconds in all.
#include <algorithm>
#include <cstdio>
#include <string>

#include "sim.hpp"

namespace scale_sim {

int run_checks(const Costs& c) {
  int failures = 0;
  auto expect = [&](bool ok, const std::string& what) {
    std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
  };
  // Conservation, in finite mode, for every workload, with and without
  // work stealing.
  for (bool stealing : {true, false})
    for (Workload w : {Workload::kOneDriver, Workload::kPerNodeDrivers, Workload::kNested}) {
      for (int n : {1, 3}) {
        Setup s = vm_setup(w, n, stealing);
        s.tasks = 6000;
        s.fib_n = 12;
        const Result r = simulate(c, s);
        const int64_t expected = w == Workload::kNested ? 465 : 6000;  // fib(12): 465 tasks
        expect(r.all_done && r.submitted == expected,
               workload_name(w) + (stealing ? "" : " (no stealing)") + " on " + std::to_string(n) +
                   " node ranks: " + std::to_string(r.submitted) + " submitted, all finished");
      }
    }
  // (a) on dedicated nodes: throughput grows with nodes (nothing shared is
  // saturated at these sizes).
  double prev = 0;
  for (int n : {1, 4, 16}) {
    Setup s;
    s.workload = Workload::kPerNodeDrivers;
    s.nodes = n;
    s.workers_per_node = 4;
    s.cores_per_node = 4;
    s.gcs_ranks = 3;
    s.duration_us = 3000;
    s.warmup_us = 1000;
    const Result r = simulate(c, s);
    expect(r.tasks_per_s > 1.6 * prev, "(a) dedicated, " + std::to_string(n) +
                                           " node ranks: " + std::to_string(long(r.tasks_per_s)) +
                                           " tasks/s, more than 1.6x the previous");
    prev = r.tasks_per_s;
  }
  // (b) one driver is a bottleneck: with empty tasks 16 nodes are not 4x as
  // fast as 4 (its node runs them all).
  auto one_driver = [&](int n, int batch, double task_us, bool stealing = true) {
    Setup s;
    s.work_stealing = stealing;
    s.workload = Workload::kOneDriver;
    s.nodes = n;
    s.workers_per_node = 4;
    s.cores_per_node = 4;
    s.spill_batch = batch;
    s.task_us = task_us;
    s.outstanding_per_slot = 2;
    s.duration_us = 4000;
    s.warmup_us = 1000;
    return simulate(c, s);
  };
  const double b4 = one_driver(4, 64, 0).tasks_per_s, b16 = one_driver(16, 64, 0).tasks_per_s;
  expect(b16 < 2.0 * b4, "(b) one driver: 16 node ranks " + std::to_string(long(b16)) +
                             " < 2x 4 node ranks " + std::to_string(long(b4)));
  // Without stealing, spill batches: with 200 us tasks most spill; one task
  // per message costs the global scheduler more than batches of 64, and the
  // tasks are spread.
  const Result single = one_driver(8, 1, 200, false), batched = one_driver(8, 64, 200, false);
  expect(single.gs_util > batched.gs_util && batched.spilled_fraction > 0.5 &&
             batched.remote_fraction > 0.5,
         "spill batch 1 loads the global scheduler more than batch 64 (" +
             std::to_string(single.gs_util) + " vs " + std::to_string(batched.gs_util) +
             "), most tasks spilled (" + std::to_string(batched.spilled_fraction) + ")");
  // With stealing, nothing spills: idle nodes take the driver's tasks by
  // steal orders (most run elsewhere). A thief with a free slot waits for its
  // next heartbeat (<= 1 ms) before it gets more, so this is slower than
  // spilling here, but not by half.
  const Result stolen = one_driver(8, 64, 200);
  expect(stolen.spilled_fraction == 0 && stolen.pushed_fraction > 0.5 &&
             stolen.remote_fraction > 0.5 && stolen.tasks_per_s > 0.6 * batched.tasks_per_s,
         "(b) with stealing: none spilled, " + std::to_string(stolen.pushed_fraction) +
             " pushed, " + std::to_string(long(stolen.tasks_per_s)) + " tasks/s vs " +
             std::to_string(long(batched.tasks_per_s)) + " spilling");
  // Stealing spreads nested work: fib(15) with 50 us leaves on 4 node ranks
  // runs most of its tasks off node 0 (a pushed task's children belong to
  // the node it went to) and beats one node by more than 2x.
  auto nested = [&](int n, bool stealing) {
    Setup s;
    s.workload = Workload::kNested;
    s.nodes = n;
    s.workers_per_node = 2;
    s.cores_per_node = 2;
    s.fib_n = 15;
    s.task_us = 50;
    s.work_stealing = stealing;
    return simulate(c, s);
  };
  const Result n1 = nested(1, true), n4 = nested(4, true);
  expect(n4.all_done && n4.off_node0_fraction > 0.5 && n4.pushed_fraction > 0.01 &&
             n4.tasks_per_s > 2 * n1.tasks_per_s,
         "(c) nested with stealing on 4 node ranks: " + std::to_string(n4.off_node0_fraction) +
             " run off node 0, " + std::to_string(n4.pushed_fraction) + " pushed, " +
             std::to_string(long(n4.tasks_per_s)) + " tasks/s vs " +
             std::to_string(long(n1.tasks_per_s)) + " on one node");
  // More GCS shards spread the lineage writes.
  auto shard_load = [&](int g) {
    Setup s;
    s.workload = Workload::kPerNodeDrivers;
    s.nodes = 32;
    s.workers_per_node = 4;
    s.cores_per_node = 4;
    s.gcs_ranks = g;
    s.duration_us = 3000;
    s.warmup_us = 1000;
    double m = 0;
    for (const auto& l : simulate(c, s).shards) m = std::max(m, l.rows_per_s);
    return m;
  };
  const double one = shard_load(3), four = shard_load(12);
  expect(one > 0 && four < 0.6 * one, "4 shards: busiest shard's rows/s " +
                                          std::to_string(long(four)) + " < 0.6x one shard's " +
                                          std::to_string(long(one)));
  std::printf("%d failure(s)\n", failures);
  return failures;
}

}  // namespace scale_sim
