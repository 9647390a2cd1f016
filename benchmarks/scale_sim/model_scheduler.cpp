// The Model's global scheduler on the first GCS rank's thread (spilled
// tasks, load heartbeats, steal orders) and work stealing between node ranks
// (the victim pushes, the thief queues). model.hpp declares the Model.
#include <algorithm>
#include <memory>
#include <vector>

#include "model.hpp"

namespace scale_sim {

// ---- global scheduler (first GCS rank's thread) ------------------------
void Model::gs_receive(int from, LoadReport load, std::shared_ptr<std::vector<int>> batch) {
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
          cost +=
              2 * c_.task_wire_us + c_.gs_pick_base_us + c_.gs_pick_per_node_us * double(s_.nodes);
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
double Model::apply_heartbeat(int from, const LoadReport& l) {
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
double Model::send_orders() {
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
void Model::send_heartbeat(Node& nd, Thread* by, bool urgent) {
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
void Model::on_steal_order(const StealOrder& o) {
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
void Model::on_pushed(int thief, std::shared_ptr<std::vector<int>> part) {
  Node& nd = node(thief);
  cpu_.post(&nd.progress, c_.msg_recv_us + double(part->size()) * c_.task_wire_us,
            [this, &nd, part] {
              ++nd.pushes_received;
              for (int tid : *part) enqueue(nd, tid);
              send_heartbeat(nd, &nd.progress, true);
            });
}

}  // namespace scale_sim
