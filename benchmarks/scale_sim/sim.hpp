// A discrete-event model of Prism's control plane: node ranks (submitter,
// worker slots, progress thread, GCS agent), the global scheduler on the first
// GCS rank, GCS shards replicated by chains, load heartbeats and liveness
// heartbeats, and work stealing (steal orders on heartbeats, pushes between
// node ranks; the runtime's default) or the older spill to the global
// scheduler. Every cost is CPU time on a thread, taken from a calibration
// file whose values come from this machine's benchmarks (calibrate.sh);
// threads run on the cores of a host, so the same model answers "8 node ranks
// sharing 2 cores" (the validation runs) and "1,000 nodes with their own
// cores" (the prediction). docs/scale-simulation.md describes the model.
//
// Pure computation: no MPI, no threads, no clock. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace scale_sim {

/// CPU costs (µs of one core) and latencies. Names match calibration.json.
struct Costs {
  double submit_us = 0.45;        // submitter: make one task and queue it (or hand it to a batch)
  double exec_us = 0.35;          // worker: run an empty task and complete its object at its owner
  double get_us = 0.05;           // owner: get of a ready inline value
  double lineage_us = 0.10;       // worker: the GCS observer event of one task
  double msg_send_us = 0.40;      // a runtime message, sender side (encode header, UCX send)
  double msg_recv_us = 0.40;      // receiver side (poll, decode header, route)
  double latency_us = 0.23;       // wire time of a message between two ranks
  double task_wire_us = 0.5;      // one task inside a message: encode or decode, each side
  double result_wire_us = 0.25;   // one result inside a message, each side
  double gs_pick_base_us = 0.05;  // global scheduler: one pick, fixed part
  double gs_pick_per_node_us = 0.004;     // per node scanned (pick is a linear scan)
  double heartbeat_apply_us = 0.05;       // global scheduler: apply one load report
  double gs_balance_per_node_us = 0.002;  // balance() on each heartbeat: per node scanned
  double gs_balance_per_pair_us = 0.005;  // ... per (thief, victim) pair tried
  double gcs_write_us = 1.33;   // one GCS write (request, log entry, forward / reply) per replica
  double gcs_row_us = 0.80;     // one row inside a batched write, per replica
  double agent_round_us = 2.0;  // GCS agent: one flush round (sort, coalesce, batch)
  double wake_us = 2.0;         // waking a sleeping thread (syscall + switch), on that thread
  double wake_latency_us = 7;   // until a woken thread runs (DESIGN.md: futex 7 µs)
  double switch_us = 0;         // a shared core changing process (cores_total mode only)
  double spin_window_us = 50;   // an idle thread polls this long before it sleeps
  double slice_us = 0;          // oversubscribed host: OS time slice of a thread that has work

  nlohmann::json to_json() const;
  static Costs from_json(const nlohmann::json& j);  // missing keys keep their defaults
};

enum class Workload {
  kPerNodeDrivers,  // (a) every node rank runs a client that submits empty tasks (Ray Fig. 7)
  kOneDriver,       // (b) the driver on node 0 submits every task
  kNested,          // (c) fib(n): every task submits two children and waits for them
  kGcsWrites,       // a client on node 0 streams single-row GCS writes (bench_gcs_throughput)
};

struct Setup {
  Workload workload = Workload::kOneDriver;
  int nodes = 1;
  int workers_per_node = 1;  // CPU slots of a node rank
  int cores_per_node = 2;    // dedicated mode: cores of each node rank's host
  int cores_total = 0;       // > 0: every rank shares this many cores (the 2-core VM)
  int gcs_ranks = 1;         // GCS group size; replicas = min(3, gcs_ranks), shards = G / R
  int gcs_replicas = 0;      // 0: min(3, gcs_ranks)
  bool lineage = true;
  bool global_scheduler = true;
  // Work stealing (the runtime's default, --prism-work-stealing): plain
  // one-CPU tasks always queue on their submitter's node, and the global
  // scheduler orders busy nodes to push their oldest to idle ones. false: the
  // old design, where tasks beyond a short local queue spill to the global
  // scheduler (--prism-work-stealing=false).
  bool work_stealing = true;
  double push_budget_us = 2000;   // a push: at most this much work per CPU slot of the thief
  int spill_batch = 64;           // spilled tasks per message from a submitter (1 = one at a time)
  int nested_spill_batch = 1;     // the same for tasks submitted from inside tasks (today: 1)
  int forward_batch = 64;         // tasks per message from the global scheduler to a node
  int result_batch = 1;           // results per message to an owner (measured: ~1 message per
                                  // result at 2 node ranks, `--prism-summary`)
  int local_queue_per_slot = 64;  // queued tasks per slot before new ones spill (no stealing)
  double task_us = 0;             // extra run time of each task
  double heartbeat_period_us = 1000;
  double liveness_period_us = 300000;  // node <-> driver heartbeats (node timeout / 10)
  double node_row_period_us = 500000;  // node table row per node rank
  double agent_flush_us = 1000;
  int gcs_batch_rows = 64;
  // Amount of work: finite (benchmark-like: submit all, then get all) or steady.
  int64_t tasks = 100000;  // kOneDriver: tasks; kPerNodeDrivers: tasks in all; kGcsWrites: writes
  int fib_n = 18;          // kNested
  double duration_us = 0;  // > 0: steady mode, run this long and measure after warm-up
  double time_limit_us = 5e6;    // finite mode: give up after this much simulated time
  double warmup_us = 0;          // steady mode: completions before this are not counted
  int max_outstanding = 20000;   // steady mode: tasks a client keeps in flight
  int outstanding_per_slot = 0;  // > 0: instead, this many per CPU slot of the job
  int gcs_window = 256;          // kGcsWrites: writes in flight
  uint64_t seed = 1;
};

/// What one GCS shard did over the measured interval.
struct ShardLoad {
  double writes_per_s = 0, rows_per_s = 0;
  double max_replica_util = 0;  // busiest replica thread: busy time / interval
};

struct Result {
  int64_t submitted = 0, finished = 0;  // tasks (or writes) in the measured interval / in all
  double seconds = 0;                   // interval measured
  double tasks_per_s = 0;
  double spilled_fraction = 0;        // tasks that went through the global scheduler
  double pushed_fraction = 0;         // tasks a steal order moved to another node
  double gs_orders_per_s = 0;         // steal orders the global scheduler sent
  double gs_pairs_per_heartbeat = 0;  // balance(): (thief, victim) pairs tried per heartbeat
  double remote_fraction = 0;         // tasks run on another node rank than their owner
  double off_node0_fraction = 0;      // tasks run on another node rank than the first
  double gs_util = 0;                 // first GCS rank's thread (global scheduler + shard 0)
  double gs_tasks_per_s = 0, gs_heartbeats_per_s = 0;
  double driver_progress_util = 0;  // node 0's progress thread (liveness fan-in lands here)
  double max_submitter_util = 0;
  double gcs_rows_per_task = 0;
  int64_t gcs_backlog_writes = 0;  // GCS writes sent but not committed at the end
  std::vector<ShardLoad> shards;
  int64_t events = 0;
  bool all_done = false;  // finite mode: every task finished
};

/// Throws std::invalid_argument on a bad setup.
void check_setup(const Setup& s);
/// Runs one simulation. Throws std::invalid_argument on a bad setup.
Result simulate(const Costs& c, const Setup& s);

std::string workload_name(Workload w);
/// The validation layout: `nodes` node ranks and one GCS rank on 2 shared
/// cores, one CPU slot per node rank, 100,000 tasks.
Setup vm_setup(Workload w, int nodes, bool stealing = true);
/// The ctest's properties of a sane model (main.cpp `check`); prints each,
/// returns the number that failed.
int run_checks(const Costs& c);
Workload parse_workload(const std::string& name);  // a, b, c, gcs (or the long names)

}  // namespace scale_sim
