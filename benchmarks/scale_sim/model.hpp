// The simulator's model of the ranks (private to prism_scale_sim): the class
// simulate() runs. Its methods are defined by responsibility in sim.cpp
// (construction, the work clients submit, run and results),
// model_scheduler.cpp (global scheduler, work stealing) and model_node.cpp
// (node ranks, GCS, periodic traffic). Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "engine.hpp"
#include "gs_model.hpp"
#include "node.hpp"
#include "sim.hpp"

namespace scale_sim {

class Model {
 public:
  Model(const Costs& c, const Setup& s);

  Result run();

 private:
  void build();

  Node& node(int i) { return nodes_[static_cast<size_t>(i)]; }
  Thread* gs_thread() { return &gcs_threads_[0]; }
  bool measured() const { return q_.now() >= measure_from_; }
  void send(double extra_delay, std::function<void()> fn) {
    q_.after(c_.latency_us + extra_delay, std::move(fn));
  }

  // ---- work (sim.cpp) ------------------------------------------------------
  void start_work();
  int new_task(Node& owner, int parent);
  void submit_step(Node& nd);
  void unqueue(Node& nd, Task& t);
  size_t local_limit(const Node& nd) const;
  bool stealing() const { return s_.work_stealing && s_.global_scheduler && s_.nodes > 1; }
  void route(Node& nd, int tid, Thread* by);
  void flush_spills(Node& nd);
  void flush_direct(Node& nd);
  template <class Deliver>
  void flush(Node& nd, Outbox& box, int batch, double wire_us, Deliver deliver);
  LoadReport current_load(const Node& nd) const;

  // ---- global scheduler (model_scheduler.cpp) ------------------------------
  void gs_receive(int from, LoadReport load, std::shared_ptr<std::vector<int>> batch);
  double apply_heartbeat(int from, const LoadReport& l);
  double send_orders();
  void send_heartbeat(Node& nd, Thread* by, bool urgent = false);

  // ---- work stealing (model_scheduler.cpp) ---------------------------------
  void on_steal_order(const StealOrder& o);
  void on_pushed(int thief, std::shared_ptr<std::vector<int>> part);

  // ---- node: receive, queue, run, return results (model_node.cpp) ----------
  void node_receive(int dest, std::shared_ptr<std::vector<int>> part, bool from_gs);
  void enqueue(Node& nd, int tid, bool movable = false);
  Thread* worker(Node& nd);
  void dispatch(Node& nd);
  void executed(Node& nd, int tid, Thread* w);
  void finish(Node& nd, int tid);
  void flush_results(Node& nd);
  void complete(Node& own, int tid);

  // ---- GCS: lineage rows, agent rounds, chains (model_node.cpp) ------------
  void record(Node& own, const Task& t);
  int shard_of(uint64_t key) const;
  void agent_round(Node& own);
  void gcs_write(int shard, int rows, int idx, int client);
  void issue_write();
  void write_acked();

  // ---- periodic traffic (model_node.cpp) -----------------------------------
  void start_periodic();
  void every(double period, double first, std::function<void()> fn);

  // ---- results (sim.cpp) ---------------------------------------------------
  Result collect(bool steady);

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

// Sends what `box` holds for each destination, in messages of at most
// `batch`, on the node's progress thread (wire_us per item), and posts
// itself again for what was queued meanwhile. deliver(dest, part) runs
// when a message arrives.
template <class Deliver>
void Model::flush(Node& nd, Outbox& box, int batch, double wire_us, Deliver deliver) {
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

}  // namespace scale_sim
