// The Model's node ranks (receive, queue, run, return results), its GCS
// (lineage rows, agent rounds, chains of replicas) and its periodic traffic
// (node rows, liveness heartbeats). model.hpp declares the Model.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "model.hpp"

namespace scale_sim {

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr uint32_t kTaskBlock = 1024;  // task keys are sharded by block (docs/gcs.md)

}  // namespace

// ---- node: receive, queue, run, return results -------------------------
void Model::node_receive(int dest, std::shared_ptr<std::vector<int>> part, bool from_gs) {
  Node& nd = node(dest);
  cpu_.post(&nd.progress, c_.msg_recv_us + double(part->size()) * c_.task_wire_us,
            [this, &nd, part, from_gs] {
              if (from_gs) nd.received_from_global += part->size();
              for (int tid : *part) enqueue(nd, tid);
              send_heartbeat(nd, &nd.progress);
            });
}

void Model::enqueue(Node& nd, int tid, bool movable) {
  Task& t = tasks_[size_t(tid)];
  t.exec_node = nd.id;
  t.movable = movable;
  t.in_runq = true;
  if (movable) ++nd.movable_queued;
  nd.runq.push_back(tid);
  dispatch(nd);
}

Thread* Model::worker(Node& nd) {
  if (!nd.idle_workers.empty()) {
    Thread* t = nd.idle_workers.back();
    nd.idle_workers.pop_back();
    return t;
  }
  nd.workers.emplace_back();
  nd.workers.back().proc = &nd.proc;
  return &nd.workers.back();
}

void Model::dispatch(Node& nd) {
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

void Model::executed(Node& nd, int tid, Thread* w) {
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

void Model::finish(Node& nd, int tid) {
  const int owner = tasks_[size_t(tid)].owner;
  if (owner == nd.id) return complete(nd, tid);
  nd.results.to[size_t(owner)].push_back(tid);
  flush_results(nd);
}

void Model::flush_results(Node& nd) {
  flush(nd, nd.results, s_.result_batch, c_.result_wire_us, [this](int o, const auto& part) {
    Node& own = node(o);
    cpu_.post(&own.progress, c_.msg_recv_us + double(part->size()) * c_.result_wire_us,
              [this, &own, part] {
                for (int t : *part) complete(own, t);
              });
  });
}

// At the owner: the result is ready.
void Model::complete(Node& own, int tid) {
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
void Model::record(Node& own, const Task& t) {
  own.round_events.emplace_back(t.seq, t.exec_node);
  if (own.agent_armed) return;
  own.agent_armed = true;
  q_.after(s_.agent_flush_us, [this, &own] { agent_round(own); });
}

int Model::shard_of(uint64_t key) const {
  return int(splitmix(key) % uint64_t(shards_));
}

// One round: rows of consecutive like tasks become one row (a run), rows go
// by shard in batched writes of up to gcs_batch_rows.
void Model::agent_round(Node& own) {
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

void Model::gcs_write(int shard, int rows, int idx, int client) {
  Thread* t = &gcs_threads_[size_t(shard * replicas_ + idx)];
  cpu_.post(t, c_.gcs_write_us + rows * c_.gcs_row_us, [this, shard, rows, idx, client] {
    if (idx + 1 < replicas_) return send(0, [=, this] { gcs_write(shard, rows, idx + 1, client); });
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

void Model::issue_write() {
  ++writes_issued_;
  const int shard = shard_of(uint64_t(writes_issued_) * 7919);
  cpu_.post(&node(0).agent, c_.msg_send_us,
            [this, shard] { send(0, [this, shard] { gcs_write(shard, 1, 0, 0); }); });
}

void Model::write_acked() {
  if (measured()) ++finished_;
  ++roots_done_;
  last_done_ = q_.now();
  if (writes_issued_ < s_.tasks) issue_write();
  if (s_.duration_us <= 0 && roots_done_ == roots_) q_.stop();
}

// ---- periodic traffic: node rows, liveness heartbeats ------------------
void Model::start_periodic() {
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
      cpu_.post(&nd.liveness, c_.msg_send_us,
                [this] { send(0, [this] { cpu_.post(&node(0).progress, c_.msg_recv_us, {}); }); });
      cpu_.post(&node(0).liveness, c_.msg_send_us, [this, &nd] {
        send(0, [this, &nd] { cpu_.post(&nd.progress, c_.msg_recv_us, {}); });
      });
    });
  }
}

void Model::every(double period, double first, std::function<void()> fn) {
  ticks_.push_back(std::make_unique<std::function<void()>>());
  std::function<void()>* tick = ticks_.back().get();
  *tick = [this, period, fn, tick] {
    fn();
    q_.after(period, *tick);
  };
  q_.after(first, *tick);
}

}  // namespace scale_sim
