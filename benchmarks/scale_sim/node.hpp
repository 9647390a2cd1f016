// The simulator's tasks and node ranks (the state model.hpp's Model works on).
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "gs_model.hpp"

namespace scale_sim {

struct Task {
  int owner = 0;        // node rank that submitted it (owns the result, records lineage)
  int exec_node = -1;   // where it ran
  int parent = -1;      // nested: the task waiting for it
  int fib = -1;         // nested: its argument
  uint32_t seq = 0;     // owner's sequence number
  int8_t pending = 0;   // nested: children not done yet
  bool nested = false;  // submitted from inside a task
  bool spilled = false;
  bool movable = false;  // queued on its owner's node, and a steal order may move it
  bool in_runq = false;  // queued on exec_node, not started
  bool done = false;     // its result is at its owner
};

// Tasks (or results) waiting on a node's progress thread, per destination
// node, and whether a flush of them is posted (Sim::flush).
struct Outbox {
  std::vector<std::vector<int>> to;
  bool posted = false;
};

struct Node {
  int id = 0;
  Proc proc;
  Thread submit, progress, agent, liveness;
  std::deque<Thread> workers;  // grows when blocked tasks lend their slots
  std::vector<Thread*> idle_workers;
  int slots = 1, free_slots = 1, running = 0;
  std::deque<int> runq;
  uint64_t received_from_global = 0;
  size_t movable_queued = 0;  // of runq
  uint64_t pushes_received = 0;
  uint32_t reported_movable = 0;  // in the last heartbeat sent
  std::deque<int> spill_out;
  bool spill_posted = false;
  Outbox direct;               // no global scheduler: tasks per destination
  Outbox results;              // results per owner
  std::vector<int> in_flight;  // no global scheduler: tasks sent per node
  double hb_last = -1e18;
  LoadReport hb_sent;
  std::vector<std::pair<uint32_t, int>> round_events;  // (seq, exec node) done this round
  bool agent_armed = false;
  // the client (workloads a, b) or the driver of a nested job
  int64_t to_submit = 0, outstanding = 0;
  double pending_get_us = 0;  // steady mode: gets of results that came in
  std::deque<int> to_get;     // the client's tasks in submission order, not got yet
  int waiting_on = -1;        // the client waits in get for this task's result
  bool submit_busy = false, holds_slot = false, client_is_task = false;
  uint32_t next_seq = 0;
  double mean_run_us = 0;   // wall-clock run time of a task here (moving mean)
  double mean_exec_us = 0;  // the same from its start (what NodeRuntime times)
};

}  // namespace scale_sim
