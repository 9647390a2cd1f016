#include "sim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>

#include "engine.hpp"
#include "gs_model.hpp"
#include "node.hpp"

namespace scale_sim {

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr uint32_t kTaskBlock = 1024;  // task keys are sharded by block (docs/gcs.md)

class Model {
 public:
  Model(const Costs& c, const Setup& s)
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

  Result run() {
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

 private:
  void build() {
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

  Node& node(int i) { return nodes_[static_cast<size_t>(i)]; }
  Thread* gs_thread() { return &gcs_threads_[0]; }
  bool measured() const { return q_.now() >= measure_from_; }
  void send(double extra_delay, std::function<void()> fn) {
    q_.after(c_.latency_us + extra_delay, std::move(fn));
  }

  // ---- work --------------------------------------------------------------
  void start_work() {
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

  int new_task(Node& owner, int parent) {
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
  void submit_step(Node& nd) {
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

  void unqueue(Node& nd, Task& t) {
    t.in_runq = false;
    if (t.movable) {
      t.movable = false;
      --nd.movable_queued;
    }
  }

  size_t local_limit(const Node& nd) const {
    // "Short" is measured in time: about a hop (~20 µs) of queued work per
    // slot, by the mean wall-clock run time of the function on this node (so
    // a task that waited for a core of a shared host counts as longer).
    // (NodeRuntime::local_queue_limit: 1 µs of overhead added to the mean.)
    const double run = 1.0 + (nd.mean_run_us > 0 ? nd.mean_run_us : c_.exec_us + s_.task_us);
    const double per_slot =
        std::clamp(std::floor(20.0 / run), 1.0, double(s_.local_queue_per_slot));
    return static_cast<size_t>(per_slot) * static_cast<size_t>(nd.slots);
  }

  bool stealing() const { return s_.work_stealing && s_.global_scheduler && s_.nodes > 1; }

  // `by`: the thread that submits (it sends a heartbeat if one is due).
  void route(Node& nd, int tid, Thread* by) {
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
  void flush_spills(Node& nd) {
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

  void flush_direct(Node& nd) {
    flush(nd, nd.direct, s_.spill_batch, c_.task_wire_us,
          [this](int d, const auto& part) { node_receive(d, part, false); });
  }

  // Sends what `box` holds for each destination, in messages of at most
  // `batch`, on the node's progress thread (wire_us per item), and posts
  // itself again for what was queued meanwhile. deliver(dest, part) runs
  // when a message arrives.
  template <class Deliver>
  void flush(Node& nd, Outbox& box, int batch, double wire_us, Deliver deliver) {
    if (box.posted) return;
    box.posted = true;
    cpu_.post(
        &nd.progress, 0,
        [this, &nd, &box, batch, wire_us, deliver] {
          box.posted = false;
          for (const auto& out : box.to)
            if (!out.empty()) return flush(nd, box, batch, wire_us, deliver);
        },
        [this, &box, batch, wire_us, deliver] {
          double cost = 0;
          for (int d = 0; d < s_.nodes; ++d) {
            auto& out = box.to[size_t(d)];
            for (size_t i = 0; i < out.size(); i += size_t(batch)) {
              auto part = std::make_shared<std::vector<int>>(
                  out.begin() + long(i), out.begin() + long(std::min(out.size(), i + batch)));
              cost += c_.msg_send_us + double(part->size()) * wire_us;
              send(cost, [deliver, d, part] { deliver(d, part); });
            }
            out.clear();
          }
          return cost;
        });
  }

  LoadReport current_load(const Node& nd) const {
    // A client task holds its slot while it submits (not while it waits).
    const int running = std::max(0, nd.running) + (nd.holds_slot ? 1 : 0);
    return {uint32_t(nd.runq.size()), uint32_t(running), nd.received_from_global,
            uint32_t(nd.movable_queued), nd.pushes_received};
  }

  // ---- global scheduler (first GCS rank's thread) ------------------------
  void gs_receive(int from, LoadReport load, std::shared_ptr<std::vector<int>> batch) {
    auto out = std::make_shared<std::vector<std::vector<int>>>();
    cpu_.post(
        gs_thread(), 0,
        [this, out] {
          send_orders();
          for (auto& part : *out) {
            if (part.empty()) continue;
            const int dest = tasks_[size_t(part.front())].exec_node;
            send(0, [this, dest, p = std::make_shared<std::vector<int>>(std::move(part))] {
              node_receive(dest, p, true);
            });
          }
        },
        [this, from, load, batch, out] {
          double cost = 2 * c_.msg_recv_us + apply_heartbeat(from, load);
          // One pick per task; the batch then goes in contiguous stretches
          // with the counts the picks gave (GcsRole::on_spill_task).
          std::vector<int> order;
          std::vector<size_t> count;
          for (size_t k = 0; k < batch->size(); ++k) {
            const int dest = gs_.pick();
            if (measured()) ++gs_tasks_;
            cost += 2 * c_.task_wire_us + c_.gs_pick_base_us +
                    c_.gs_pick_per_node_us * double(s_.nodes);
            auto it = std::find(order.begin(), order.end(), dest);
            if (it == order.end()) {
              order.push_back(dest);
              count.push_back(1);
            } else {
              ++count[size_t(it - order.begin())];
            }
          }
          size_t next = 0;
          for (size_t k = 0; k < order.size(); ++k) {
            for (size_t m = 0; m < count[k]; ++m) {
              const int tid = (*batch)[next++];
              tasks_[size_t(tid)].exec_node = order[k];
              if (m % size_t(s_.forward_batch) == 0) out->emplace_back();
              out->back().push_back(tid);
            }
          }
          return cost + double(out->size() + pending_orders_.size()) * c_.msg_send_us;
        });
  }

  // GlobalScheduler::on_heartbeat: apply, then balance() (a scan of every
  // node, and pairs of idle and busy ones). Returns its cost; the orders it
  // gave wait in gs_orders_ (sent when the job ends).
  double apply_heartbeat(int from, const LoadReport& l) {
    auto orders = gs_.on_heartbeat(from, l);
    if (measured()) {
      ++gs_heartbeats_;
      gs_pairs_ += gs_.last_pairs;
      gs_orders_ += int64_t(orders.size());
    }
    for (const auto& o : orders) pending_orders_.push_back(o);
    return c_.heartbeat_apply_us + c_.gs_balance_per_node_us * double(gs_.last_scanned) +
           c_.gs_balance_per_pair_us * double(gs_.last_pairs);
  }

  // Steal orders go to their victims (one message each).
  double send_orders() {
    double cost = 0;
    for (const auto& o : pending_orders_) {
      cost += c_.msg_send_us;
      send(cost, [this, o] { on_steal_order(o); });
    }
    pending_orders_.clear();
    return cost;
  }

  // NodeRuntime::send_heartbeat: a busy node reports at most once a period;
  // an idle one, or an urgent report, at once; nothing if nothing changed.
  // The thread that calls it (`by`) sends it.
  void send_heartbeat(Node& nd, Thread* by, bool urgent = false) {
    if (!s_.global_scheduler || s_.nodes == 1) return;
    const bool idle = nd.runq.empty() && nd.running <= 0 && !nd.holds_slot;
    if (q_.now() - nd.hb_last < s_.heartbeat_period_us && !idle && !urgent) return;
    const LoadReport l = current_load(nd);
    if (l == nd.hb_sent) return;
    nd.hb_sent = l;
    nd.hb_last = q_.now();
    nd.reported_movable = l.movable;
    const int from = nd.id;
    cpu_.post(by, c_.msg_send_us, [this, from, l] {
      send(0, [this, from, l] {
        cpu_.post(
            gs_thread(), 0, [this] { send_orders(); },
            [this, from, l] {
              const double apply = c_.msg_recv_us + apply_heartbeat(from, l);
              return apply + double(pending_orders_.size()) * c_.msg_send_us;
            });
      });
    });
  }

  // ---- work stealing: the busy node pushes, the idle node takes ------------
  // NodeRuntime::on_steal_order, on the victim's progress thread: its oldest
  // movable tasks, at most `count` and about push_budget_us of work per CPU
  // slot of the thief by the mean run time here, go in one message (empty if
  // none is left); then an urgent heartbeat.
  void on_steal_order(const StealOrder& o) {
    Node& nd = node(o.victim);
    auto part = std::make_shared<std::vector<int>>();
    cpu_.post(
        &nd.progress, 0,
        [this, &nd, part, thief = o.thief] {
          if (measured()) pushed_ += int64_t(part->size());
          send(0, [this, thief, part] { on_pushed(thief, part); });
          send_heartbeat(nd, &nd.progress, true);
        },
        [this, &nd, part, o] {
          const double budget = s_.push_budget_us * std::max(1, node(o.thief).slots);
          const double per_task = 1.0 + (nd.mean_exec_us > 0 ? nd.mean_exec_us : s_.push_budget_us);
          *part = take_oldest(nd.runq, o.count, int(budget / per_task) + 1,
                              [this](int tid) { return tasks_[size_t(tid)].movable; });
          for (int tid : *part) {
            unqueue(nd, tasks_[size_t(tid)]);
            tasks_[size_t(tid)].exec_node = o.thief;
          }
          return c_.msg_recv_us + c_.msg_send_us + double(part->size()) * c_.task_wire_us;
        });
  }

  // NodeRuntime::on_pushed_tasks, on the thief's progress thread: the tasks
  // queue here (they never move again) and the node reports at once.
  void on_pushed(int thief, std::shared_ptr<std::vector<int>> part) {
    Node& nd = node(thief);
    cpu_.post(&nd.progress, c_.msg_recv_us + double(part->size()) * c_.task_wire_us,
              [this, &nd, part] {
                ++nd.pushes_received;
                for (int tid : *part) enqueue(nd, tid);
                send_heartbeat(nd, &nd.progress, true);
              });
  }

  // ---- node: receive, queue, run, return results -------------------------
  void node_receive(int dest, std::shared_ptr<std::vector<int>> part, bool from_gs) {
    Node& nd = node(dest);
    cpu_.post(&nd.progress, c_.msg_recv_us + double(part->size()) * c_.task_wire_us,
              [this, &nd, part, from_gs] {
                if (from_gs) nd.received_from_global += part->size();
                for (int tid : *part) enqueue(nd, tid);
                send_heartbeat(nd, &nd.progress);
              });
  }

  void enqueue(Node& nd, int tid, bool movable = false) {
    Task& t = tasks_[size_t(tid)];
    t.exec_node = nd.id;
    t.movable = movable;
    t.in_runq = true;
    if (movable) ++nd.movable_queued;
    nd.runq.push_back(tid);
    dispatch(nd);
  }

  Thread* worker(Node& nd) {
    if (!nd.idle_workers.empty()) {
      Thread* t = nd.idle_workers.back();
      nd.idle_workers.pop_back();
      return t;
    }
    nd.workers.emplace_back();
    nd.workers.back().proc = &nd.proc;
    return &nd.workers.back();
  }

  void dispatch(Node& nd) {
    while (nd.free_slots > 0 && !nd.runq.empty()) {
      const int tid = nd.runq.front();
      nd.runq.pop_front();
      unqueue(nd, tasks_[size_t(tid)]);
      --nd.free_slots;
      ++nd.running;
      Thread* w = worker(nd);
      const Task& t = tasks_[size_t(tid)];
      const double cost =
          c_.exec_us + (s_.lineage ? c_.lineage_us : 0) + (t.fib >= 2 ? 2 * c_.submit_us : 0);
      const double posted = q_.now();
      // The task's own run time (task_us) holds its slot but no core of the
      // model: jobs are not preempted here, and the OS does preempt a long
      // task for the runtime's short jobs (a submitter, a progress thread).
      cpu_.post(w, cost, [this, &nd, tid, w, posted, cost] {
        q_.after(s_.task_us, [this, &nd, tid, w, posted, cost] {
          const double wall = q_.now() - posted;
          nd.mean_run_us = nd.mean_run_us > 0 ? 0.99 * nd.mean_run_us + 0.01 * wall : wall;
          const double run = cost + s_.task_us;
          nd.mean_exec_us = nd.mean_exec_us > 0 ? 0.99 * nd.mean_exec_us + 0.01 * run : run;
          executed(nd, tid, w);
        });
      });
    }
  }

  void executed(Node& nd, int tid, Thread* w) {
    nd.idle_workers.push_back(w);
    ++nd.free_slots;  // a nested parent lends its slot while it waits
    --nd.running;
    if (tasks_[size_t(tid)].fib >= 2) {
      const int fib = tasks_[size_t(tid)].fib;
      tasks_[size_t(tid)].pending = 2;
      for (int d = 1; d <= 2; ++d) {
        const int child = new_task(nd, tid);
        tasks_[size_t(child)].fib = fib - d;
        tasks_[size_t(child)].nested = true;
        route(nd, child, w);
      }
    } else {
      finish(nd, tid);
    }
    dispatch(nd);
    send_heartbeat(nd, w);
  }

  void finish(Node& nd, int tid) {
    const int owner = tasks_[size_t(tid)].owner;
    if (owner == nd.id) return complete(nd, tid);
    nd.results.to[size_t(owner)].push_back(tid);
    flush_results(nd);
  }

  void flush_results(Node& nd) {
    flush(nd, nd.results, s_.result_batch, c_.result_wire_us, [this](int o, const auto& part) {
      Node& own = node(o);
      cpu_.post(&own.progress, c_.msg_recv_us + double(part->size()) * c_.result_wire_us,
                [this, &own, part] {
                  for (int t : *part) complete(own, t);
                });
    });
  }

  // At the owner: the result is ready.
  void complete(Node& own, int tid) {
    const Task& t = tasks_[size_t(tid)];
    if (!s_.global_scheduler && t.exec_node != own.id) --own.in_flight[size_t(t.exec_node)];
    if (s_.lineage) record(own, t);
    if (t.exec_node != own.id) ++remote_;
    if (t.exec_node != 0) ++off_node0_;
    if (t.parent >= 0) {
      Task& p = tasks_[size_t(t.parent)];
      if (--p.pending > 0) return;
      // The parent takes its slot back without waiting and finishes.
      const int parent = t.parent;
      --own.free_slots;
      ++own.running;
      Thread* w = worker(own);
      cpu_.post(w, 2 * c_.get_us, [this, &own, parent, w] {
        own.idle_workers.push_back(w);
        ++own.free_slots;
        --own.running;
        finish(own, parent);
        dispatch(own);
        send_heartbeat(own, w);
      });
      return;
    }
    tasks_[size_t(tid)].done = true;
    if (s_.workload == Workload::kNested) {  // the root: its driver's get returns
      if (measured()) ++finished_;
      ++roots_done_;
      last_done_ = q_.now();
      if (s_.duration_us <= 0) q_.stop();
      return;
    }
    if (s_.duration_us > 0) {  // steady mode: counted when the result is in
      if (measured()) ++finished_;
      ++roots_done_;
      last_done_ = q_.now();
      --own.outstanding;
      own.pending_get_us += c_.get_us;
      return submit_step(own);
    }
    if (own.waiting_on == tid) {
      own.waiting_on = -1;
      submit_step(own);
    }
  }

  // ---- GCS: lineage rows, agent rounds, chains ---------------------------
  void record(Node& own, const Task& t) {
    own.round_events.emplace_back(t.seq, t.exec_node);
    if (own.agent_armed) return;
    own.agent_armed = true;
    q_.after(s_.agent_flush_us, [this, &own] { agent_round(own); });
  }

  int shard_of(uint64_t key) const { return int(splitmix(key) % uint64_t(shards_)); }

  // One round: rows of consecutive like tasks become one row (a run), rows go
  // by shard in batched writes of up to gcs_batch_rows.
  void agent_round(Node& own) {
    own.agent_armed = false;
    auto ev = std::make_shared<std::vector<std::pair<uint32_t, int>>>(std::move(own.round_events));
    own.round_events.clear();
    std::sort(ev->begin(), ev->end());
    std::vector<int64_t> rows(size_t(shards_), 0);
    for (size_t i = 0; i < ev->size(); ++i) {
      const auto [seq, exec] = (*ev)[i];
      const bool joins = i > 0 && (*ev)[i - 1].first + 1 == seq && (*ev)[i - 1].second == exec &&
                         (*ev)[i - 1].first / kTaskBlock == seq / kTaskBlock;
      if (!joins) ++rows[size_t(shard_of((uint64_t(own.id) << 32) | (seq / kTaskBlock)))];
    }
    auto writes = std::make_shared<std::vector<std::pair<int, int>>>();  // (shard, rows)
    for (int sh = 0; sh < shards_; ++sh)
      for (int64_t r = rows[size_t(sh)]; r > 0; r -= s_.gcs_batch_rows)
        writes->emplace_back(sh, int(std::min<int64_t>(r, s_.gcs_batch_rows)));
    const int client = own.id;
    lineage_writes_issued_ += int64_t(writes->size());
    cpu_.post(&own.agent, c_.agent_round_us + double(writes->size()) * c_.msg_send_us,
              [this, writes, client] {
                for (auto [sh, r] : *writes)
                  send(0, [this, sh, r, client] { gcs_write(sh, r, 0, client); });
              });
  }

  void gcs_write(int shard, int rows, int idx, int client) {
    Thread* t = &gcs_threads_[size_t(shard * replicas_ + idx)];
    cpu_.post(t, c_.gcs_write_us + rows * c_.gcs_row_us, [this, shard, rows, idx, client] {
      if (idx + 1 < replicas_)
        return send(0, [=, this] { gcs_write(shard, rows, idx + 1, client); });
      if (measured()) {
        ++shard_writes_[size_t(shard)];
        shard_rows_[size_t(shard)] += rows;
      }
      if (s_.workload != Workload::kGcsWrites) ++writes_committed_;
      send(0, [this, client] {
        cpu_.post(&node(client).agent, c_.msg_recv_us, [this, client] {
          if (s_.workload == Workload::kGcsWrites && client == 0) write_acked();
        });
      });
    });
  }

  void issue_write() {
    ++writes_issued_;
    const int shard = shard_of(uint64_t(writes_issued_) * 7919);
    cpu_.post(&node(0).agent, c_.msg_send_us,
              [this, shard] { send(0, [this, shard] { gcs_write(shard, 1, 0, 0); }); });
  }

  void write_acked() {
    if (measured()) ++finished_;
    ++roots_done_;
    last_done_ = q_.now();
    if (writes_issued_ < s_.tasks) issue_write();
    if (s_.duration_us <= 0 && roots_done_ == roots_) q_.stop();
  }

  // ---- periodic traffic: node rows, liveness heartbeats ------------------
  void start_periodic() {
    std::uniform_real_distribution<double> phase(0, 1);
    for (Node& nd : nodes_) {
      every(s_.node_row_period_us, phase(rng_) * s_.node_row_period_us, [this, &nd] {
        ++lineage_writes_issued_;
        const int sh = shard_of(0xfeed0000ull + uint64_t(nd.id));
        const int client = nd.id;
        cpu_.post(&nd.agent, c_.msg_send_us, [this, sh, client] {
          send(0, [this, sh, client] { gcs_write(sh, 1, 0, client); });
        });
      });
      if (nd.id == 0) continue;
      every(s_.liveness_period_us, phase(rng_) * s_.liveness_period_us, [this, &nd] {
        // node -> driver's rank and driver's rank -> node
        cpu_.post(&nd.liveness, c_.msg_send_us, [this] {
          send(0, [this] { cpu_.post(&node(0).progress, c_.msg_recv_us, {}); });
        });
        cpu_.post(&node(0).liveness, c_.msg_send_us, [this, &nd] {
          send(0, [this, &nd] { cpu_.post(&nd.progress, c_.msg_recv_us, {}); });
        });
      });
    }
  }

  void every(double period, double first, std::function<void()> fn) {
    ticks_.push_back(std::make_unique<std::function<void()>>());
    std::function<void()>* tick = ticks_.back().get();
    *tick = [this, period, fn, tick] {
      fn();
      q_.after(period, *tick);
    };
    q_.after(first, *tick);
  }

  // ---- results -------------------------------------------------------------
  Result collect(bool steady) {
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

  const Costs c_;
  const Setup s_;
  EventQueue q_;
  Cpu cpu_;
  std::mt19937_64 rng_;
  int replicas_ = 1, shards_ = 1;
  std::deque<Host> hosts_;
  std::vector<Node> nodes_;
  std::vector<Proc> gcs_procs_;
  std::deque<Thread> gcs_threads_;
  GsModel gs_;
  std::vector<StealOrder> pending_orders_;  // given by the heartbeat the GCS thread runs now
  std::vector<Task> tasks_;
  std::vector<int64_t> shard_writes_, shard_rows_;
  std::vector<std::unique_ptr<std::function<void()>>> ticks_;
  double measure_from_ = 0, last_done_ = 0;
  int64_t roots_ = 0, roots_done_ = 0, submitted_ = 0, finished_ = 0, spilled_ = 0, remote_ = 0;
  int64_t gs_tasks_ = 0, gs_heartbeats_ = 0, writes_issued_ = 0;
  int64_t gs_pairs_ = 0, gs_orders_ = 0, pushed_ = 0, off_node0_ = 0;
  int64_t lineage_writes_issued_ = 0, writes_committed_ = 0;
};

}  // namespace

Result simulate(const Costs& c, const Setup& s) {
  Model m(c, s);
  return m.run();
}

}  // namespace scale_sim
