// simulate(): the Model of the ranks (model.hpp) is built, its clients submit
// work (submit, route locally or spill, flush batches), it runs, and its
// counters become the Result. The global scheduler and work stealing are in
// model_scheduler.cpp; node ranks, the GCS and periodic traffic in
// model_node.cpp.
#include "sim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>

#include "engine.hpp"
#include "gs_model.hpp"
#include "model.hpp"
#include "node.hpp"

namespace scale_sim {

Model::Model(const Costs& c, const Setup& s)
    : c_(c),
      s_(s),
      cpu_(q_, c.wake_us, c.wake_latency_us, c.switch_us),
      rng_(s.seed),
      gs_(std::vector<int>(size_t(std::max(1, s.nodes)), s.workers_per_node)) {
  check_setup(s_);
  replicas_ = s.gcs_replicas > 0 ? s.gcs_replicas : std::min(3, s.gcs_ranks);
  shards_ = s.gcs_ranks / replicas_;
  build();
}

Result Model::run() {
  const bool steady = s_.duration_us > 0;
  measure_from_ = steady ? s_.warmup_us : 0;
  cpu_.set_measure_from(measure_from_);
  start_work();
  start_periodic();
  // A finite run that has not finished in simulated time_limit is stuck (or
  // far too slow): it stops and reports all_done = false.
  q_.run(steady ? s_.duration_us : s_.time_limit_us);
  return collect(steady);
}

void Model::build() {
  const int n = s_.nodes, g = s_.gcs_ranks;
  const bool shared = s_.cores_total > 0;
  const bool oversubscribed = shared && n + g > s_.cores_total;
  auto make_host = [&](int cores) {
    hosts_.push_back(Host{cores, {}, oversubscribed ? 0.0 : c_.spin_window_us, {}});
    return &hosts_.back();
  };
  Host* shared_host = shared ? make_host(s_.cores_total) : nullptr;
  if (shared) cpu_.track(*shared_host, s_.cores_total);
  if (shared && oversubscribed) shared_host->slice_us = c_.slice_us;
  // mpirun binds each rank to a core when there are no more ranks than cores.
  const int shared_cap = (shared && n + g <= s_.cores_total) ? 1 : s_.cores_total;
  nodes_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Node& nd = nodes_[static_cast<size_t>(i)];
    nd.id = i;
    nd.proc.host = shared ? shared_host : make_host(s_.cores_per_node);
    nd.proc.cap = shared ? shared_cap : s_.cores_per_node;
    for (Thread* t : {&nd.submit, &nd.progress, &nd.agent, &nd.liveness}) t->proc = &nd.proc;
    nd.slots = nd.free_slots = s_.workers_per_node;
    nd.direct.to.resize(static_cast<size_t>(n));
    nd.results.to.resize(static_cast<size_t>(n));
    nd.in_flight.assign(static_cast<size_t>(n), 0);
  }
  gcs_procs_.resize(static_cast<size_t>(g));
  gcs_threads_.resize(static_cast<size_t>(g));
  for (int r = 0; r < g; ++r) {
    gcs_procs_[static_cast<size_t>(r)] =
        Proc{shared ? shared_host : make_host(1), shared ? shared_cap : 1, 0};
    gcs_threads_[static_cast<size_t>(r)].proc = &gcs_procs_[static_cast<size_t>(r)];
  }
  shard_writes_.assign(static_cast<size_t>(shards_), 0);
  shard_rows_.assign(static_cast<size_t>(shards_), 0);
}

// ---- work --------------------------------------------------------------
void Model::start_work() {
  const bool steady = s_.duration_us > 0;
  const int64_t inf = std::numeric_limits<int64_t>::max() / 4;
  switch (s_.workload) {
    case Workload::kOneDriver:
      node(0).to_submit = steady ? inf : s_.tasks;
      roots_ = node(0).to_submit;
      submit_step(node(0));
      break;
    case Workload::kPerNodeDrivers:
      for (Node& nd : nodes_) {
        nd.to_submit = steady ? inf : std::max<int64_t>(1, s_.tasks / s_.nodes);
        roots_ += nd.to_submit;
        // The client is a task: it holds a slot while it submits (and lends
        // it while it waits in get).
        nd.client_is_task = true;
        submit_step(nd);
      }
      break;
    case Workload::kNested: {
      roots_ = 1;
      const int t = new_task(node(0), -1);
      tasks_[static_cast<size_t>(t)].fib = s_.fib_n;
      node(0).outstanding = 1;
      cpu_.post(&node(0).submit, c_.submit_us, [this, t] { route(node(0), t, &node(0).submit); });
      break;
    }
    case Workload::kGcsWrites:
      roots_ = s_.tasks;
      for (int i = 0; i < s_.gcs_window && writes_issued_ < s_.tasks; ++i) issue_write();
      break;
  }
}

int Model::new_task(Node& owner, int parent) {
  Task t;
  t.owner = owner.id;
  t.parent = parent;
  t.seq = owner.next_seq++;
  tasks_.push_back(t);
  ++submitted_;
  return static_cast<int>(tasks_.size() - 1);
}

// The client's loop: submit while it may, otherwise wait in get. A client
// that is a task (workload a) lends its slot while it waits and takes it
// back, without waiting, when it submits again. Finite runs get results in
// submission order, as the benchmarks do; steady runs as they come.
void Model::submit_step(Node& nd) {
  if (nd.submit_busy) return;
  const bool steady = s_.duration_us > 0;
  const int64_t cap = s_.outstanding_per_slot > 0
                          ? int64_t(s_.outstanding_per_slot) * s_.workers_per_node *
                                (s_.workload == Workload::kOneDriver ? s_.nodes : 1)
                          : s_.max_outstanding;
  const bool more = nd.to_submit > 0 && (!steady || nd.outstanding < cap);
  if (more) {
    if (nd.client_is_task && !nd.holds_slot) {
      nd.holds_slot = true;
      --nd.free_slots;
    }
    nd.submit_busy = true;
    cpu_.post(&nd.submit, c_.submit_us + nd.pending_get_us, [this, &nd, steady] {
      nd.submit_busy = false;
      --nd.to_submit;
      ++nd.outstanding;
      const int tid = new_task(nd, -1);
      if (!steady) nd.to_get.push_back(tid);
      route(nd, tid, &nd.submit);
      submit_step(nd);
    });
    nd.pending_get_us = 0;
    return;
  }
  if (nd.holds_slot) {  // the client waits in get
    nd.holds_slot = false;
    ++nd.free_slots;
    dispatch(nd);
  }
  if (steady) {  // results are got as they come (pending_get_us), in any order
    if (nd.pending_get_us <= 0) return;
    nd.submit_busy = true;
    cpu_.post(&nd.submit, nd.pending_get_us, [this, &nd] {
      nd.submit_busy = false;
      submit_step(nd);
    });
    nd.pending_get_us = 0;
    return;
  }
  if (nd.to_get.empty()) return;
  // get() in submission order (NodeRuntime::get): a ready result costs
  // get_us; a task still queued here runs inline on the client's thread
  // (help while waiting); otherwise the client waits for the result.
  const int tid = nd.to_get.front();
  Task& t = tasks_[size_t(tid)];
  if (!t.done && !(t.in_runq && t.exec_node == nd.id)) {
    nd.waiting_on = tid;
    return;
  }
  double cost = c_.get_us;
  const bool inline_run = !t.done;
  if (inline_run) {
    nd.runq.erase(std::find(nd.runq.begin(), nd.runq.end(), tid));
    unqueue(nd, t);
    cost += c_.exec_us + (s_.lineage ? c_.lineage_us : 0);
  }
  nd.submit_busy = true;
  cpu_.post(&nd.submit, cost, [this, &nd, tid, inline_run] {
    nd.submit_busy = false;
    if (inline_run) {
      complete(nd, tid);
      send_heartbeat(nd, &nd.submit);
    }
    nd.to_get.pop_front();
    --nd.outstanding;
    if (measured()) ++finished_;
    ++roots_done_;
    last_done_ = q_.now();
    if (s_.duration_us <= 0 && roots_done_ == roots_) return q_.stop();
    submit_step(nd);
  });
}

void Model::unqueue(Node& nd, Task& t) {
  t.in_runq = false;
  if (t.movable) {
    t.movable = false;
    --nd.movable_queued;
  }
}

size_t Model::local_limit(const Node& nd) const {
  // "Short" is measured in time: about a hop (~20 µs) of queued work per
  // slot, by the mean wall-clock run time of the function on this node (so
  // a task that waited for a core of a shared host counts as longer).
  // (NodeRuntime::local_queue_limit: 1 µs of overhead added to the mean.)
  const double run = 1.0 + (nd.mean_run_us > 0 ? nd.mean_run_us : c_.exec_us + s_.task_us);
  const double per_slot = std::clamp(std::floor(20.0 / run), 1.0, double(s_.local_queue_per_slot));
  return static_cast<size_t>(per_slot) * static_cast<size_t>(nd.slots);
}

// `by`: the thread that submits (it sends a heartbeat if one is due).
void Model::route(Node& nd, int tid, Thread* by) {
  Task& t = tasks_[static_cast<size_t>(tid)];
  if (stealing()) {
    // Every task of these workloads is a plain one-CPU function: it queues
    // here, and a node whose queue outgrows its slots tells the global
    // scheduler at once if its last report showed nothing movable
    // (NodeRuntime::queue_here_locked).
    enqueue(nd, tid, true);
    if (nd.runq.size() + size_t(nd.running) > size_t(nd.slots))
      send_heartbeat(nd, by, nd.reported_movable == 0);
    return;
  }
  if (s_.nodes == 1 || nd.runq.size() < local_limit(nd)) return enqueue(nd, tid);
  if (s_.global_scheduler) {
    t.spilled = true;
    ++spilled_;
    nd.spill_out.push_back(tid);
    return flush_spills(nd);
  }
  // No global scheduler: the submitter balances by what it has in flight.
  int best = nd.id;
  double best_load = double(nd.runq.size() + size_t(nd.running)) / nd.slots;
  for (int k = 0; k < s_.nodes; ++k) {
    if (k == nd.id) continue;
    const double load = double(nd.in_flight[size_t(k)]) / node(k).slots;
    if (load < best_load) best_load = load, best = k;
  }
  if (best == nd.id) return enqueue(nd, tid);
  ++nd.in_flight[size_t(best)];
  nd.direct.to[size_t(best)].push_back(tid);
  flush_direct(nd);
}

// Spilled tasks leave in batches: the next poll of the progress thread sends
// whatever has gathered (an urgent load report goes first).
void Model::flush_spills(Node& nd) {
  if (nd.spill_posted) return;
  nd.spill_posted = true;
  auto batch = std::make_shared<std::vector<int>>();
  auto load = std::make_shared<LoadReport>();
  cpu_.post(
      &nd.progress, 0,
      [this, &nd, batch, load] {
        nd.spill_posted = false;
        const int from = nd.id;
        send(0, [this, from, batch, load] { gs_receive(from, *load, batch); });
        if (!nd.spill_out.empty()) flush_spills(nd);
      },
      [this, &nd, batch, load] {
        const bool nested = tasks_[size_t(nd.spill_out.front())].nested;
        const size_t limit = size_t(nested ? s_.nested_spill_batch : s_.spill_batch);
        while (!nd.spill_out.empty() && batch->size() < limit) {
          batch->push_back(nd.spill_out.front());
          nd.spill_out.pop_front();
        }
        *load = current_load(nd);
        nd.hb_sent = *load;
        return 2 * c_.msg_send_us + double(batch->size()) * c_.task_wire_us;
      });
}

void Model::flush_direct(Node& nd) {
  flush(nd, nd.direct, s_.spill_batch, c_.task_wire_us,
        [this](int d, const auto& part) { node_receive(d, part, false); });
}

LoadReport Model::current_load(const Node& nd) const {
  // A client task holds its slot while it submits (not while it waits).
  const int running = std::max(0, nd.running) + (nd.holds_slot ? 1 : 0);
  return {uint32_t(nd.runq.size()), uint32_t(running), nd.received_from_global,
          uint32_t(nd.movable_queued), nd.pushes_received};
}

// ---- results -------------------------------------------------------------
Result Model::collect(bool steady) {
  Result r;
  r.submitted = submitted_;
  r.events = q_.events();
  r.all_done = roots_done_ == roots_;
  const double end = steady ? s_.duration_us : last_done_;
  const double span = std::max(1e-9, end - measure_from_);
  r.seconds = span * 1e-6;
  r.finished = steady ? finished_ : roots_done_;
  const int64_t counted = s_.workload == Workload::kNested ? submitted_ : r.finished;
  r.tasks_per_s = double(counted) / r.seconds;
  r.spilled_fraction = submitted_ > 0 ? double(spilled_) / double(submitted_) : 0;
  r.remote_fraction = submitted_ > 0 ? double(remote_) / double(submitted_) : 0;
  r.off_node0_fraction = submitted_ > 0 ? double(off_node0_) / double(submitted_) : 0;
  r.gs_util = gcs_threads_[0].busy_measured_us / span;
  r.gs_tasks_per_s = double(gs_tasks_) / r.seconds;
  r.gs_heartbeats_per_s = double(gs_heartbeats_) / r.seconds;
  r.gs_orders_per_s = double(gs_orders_) / r.seconds;
  r.gs_pairs_per_heartbeat = gs_heartbeats_ > 0 ? double(gs_pairs_) / double(gs_heartbeats_) : 0;
  r.pushed_fraction = submitted_ > 0 ? double(pushed_) / double(submitted_) : 0;
  r.driver_progress_util = nodes_[0].progress.busy_measured_us / span;
  for (const Node& nd : nodes_)
    r.max_submitter_util = std::max(r.max_submitter_util, nd.submit.busy_measured_us / span);
  int64_t rows = 0;
  for (int sh = 0; sh < shards_; ++sh) {
    ShardLoad l;
    l.writes_per_s = double(shard_writes_[size_t(sh)]) / r.seconds;
    l.rows_per_s = double(shard_rows_[size_t(sh)]) / r.seconds;
    rows += shard_rows_[size_t(sh)];
    for (int k = 0; k < replicas_; ++k)
      l.max_replica_util = std::max(
          l.max_replica_util, gcs_threads_[size_t(sh * replicas_ + k)].busy_measured_us / span);
    r.shards.push_back(l);
  }
  r.gcs_rows_per_task = counted > 0 ? double(rows) / double(counted) : 0;
  r.gcs_backlog_writes = lineage_writes_issued_ - writes_committed_;
  return r;
}

Result simulate(const Costs& c, const Setup& s) {
  Model m(c, s);
  return m.run();
}

}  // namespace scale_sim
