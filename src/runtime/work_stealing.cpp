// Work stealing between node ranks (docs/scheduling.md, "Stealing").
//
// Tasks that tasks submit stay on their node while they fit, so one node can
// hold a deep queue while another idles. The global scheduler sees both in
// heartbeats and orders the busy node (on_steal_order) to push its oldest
// queued movable tasks straight to the idle one (on_pushed_tasks): one
// message for the batch, no hop through the global scheduler, and the
// results go from the new executor to the owner as for any task. Only tasks
// this node owns move, so the owner always knows where its task runs (a lost
// executor makes it run again, docs/fault-tolerance.md).
#include <algorithm>

#include "common/log.hpp"
#include "runtime/node_runtime.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

bool NodeRuntime::movable_locked(const PendingTask& task) const {
  return config_.work_stealing && global_scheduler_ >= 0 && scheduler_.num_nodes() > 1 &&
         task.spec.kind == TaskKind::kFunction && task.request.node < 0 &&
         task.request.placement == 0 && task.request.data_bytes < scheduler::kLocalityThreshold;
}

worker::WorkerPool::Ticket NodeRuntime::queue_here_locked(PendingTask& task, bool known_short,
                                                          bool movable) {
  // The job reads the spec where it is: the record stays in in_flight_ until
  // execute() erases it (or a steal order moves it), and two pointers fit
  // std::function without a heap block.
  auto ticket =
      pool_.submit([this, pending = &task] { execute(pending->spec); }, task.spec.resources,
                   known_short, nullptr, movable ? task.spec.id.seq : worker::WorkerPool::kStays);
  // A task that cannot start now is work an idle node could take: let the
  // global scheduler see it. At once when the last report showed nothing
  // movable (a lone task behind long ones must not wait for a job to end),
  // otherwise at most once per heartbeat interval (jobs ending report too).
  if (movable) {
    const auto load = pool_.load();
    if (load.queued + load.running > static_cast<uint32_t>(pool_.slots()))
      send_heartbeat(/*urgent=*/reported_movable_.load(std::memory_order_relaxed) == 0);
  }
  return ticket;
}

void NodeRuntime::on_steal_order(int src, Reader& r) {
  scheduler::StealOrder order;
  if (Status st = decode_steal_order(r, order); !st) {
    PRISM_LOG_ERROR("dropped a malformed steal order from rank {}: {}", src, st.to_string());
    return;
  }
  if (order.thief == layout_.world_rank || order.thief >= scheduler_.num_nodes()) {
    PRISM_LOG_ERROR("dropped a steal order from rank {} naming rank {}, not another node rank", src,
                    order.thief);
    return;
  }
  {
    std::lock_guard lk(mu_);
    std::vector<PendingTask*> moved;
    MessageBatch batch{MessageKind::kPushedTasks};
    // The order counts tasks; this node also knows their expected run times:
    // it gives at most about kPushBudgetUs of work per CPU slot of the thief
    // (at least one task), so long tasks of uneven length are handed out a
    // few at a time as thieves run dry, not split up front (a node that got
    // the long ones would finish last while the others idle, and tasks
    // pushed once stay where they went).
    const double budget_us = kPushBudgetUs * std::max(1.0, scheduler_.node(order.thief).num_cpus);
    double planned_us = 0;
    // Sees each candidate before the pool gives it up, so the records of
    // the tasks taken are looked up once, here.
    auto take = [&](uint64_t seq) {
      if (planned_us >= budget_us) return false;
      auto it = in_flight_.find(seq);
      if (it == in_flight_.end()) return false;  // cannot happen: the record outlives the job
      const auto mean_ns = mean_task_ns_locked(it->second->spec.fn);
      // A function not run here yet counts as long.
      planned_us +=
          mean_ns ? kTaskOverheadUs + 1e-3 * static_cast<double>(*mean_ns) : kPushBudgetUs;
      moved.push_back(it->second.get());
      return true;
    };
    if (!scheduler_.lost(order.thief)) (void)pool_.take_movable(order.count, take);
    for (PendingTask* t : moved) {
      encode_task(t->spec, batch.begin());
      batch.end();
    }
    Writer w;
    if (batch.count() > 0) {
      w = batch.take();
    } else {  // nothing to give: the idle node still counts the push
      w.put(MessageKind::kPushedTasks);
      w.put<uint32_t>(0);
    }
    const Status st = send(order.thief, w);
    for (PendingTask* t : moved) {
      if (!st) {  // the tasks stay
        t->queued = queue_here_locked(*t, false, /*movable=*/false);
        continue;
      }
      scheduler_.on_complete(t->node);
      t->node = order.thief;
      scheduler_.on_dispatch(order.thief);
      t->queued.reset();
    }
    if (st)
      stats_.tasks_pushed += moved.size();
    else
      PRISM_LOG_WARN("could not push {} tasks to rank {}: {}", moved.size(), order.thief,
                     st.to_string());
  }
  send_heartbeat(/*urgent=*/true);  // the global scheduler's view of this node moved
}

void NodeRuntime::on_pushed_tasks(int src, Reader& r) {
  uint64_t n = 0;
  if (Status st = for_each_batched(r,
                                   [&](std::span<const std::byte> body) {
                                     Reader one(body);
                                     on_submit(src, one);
                                     ++n;
                                   });
      !st)
    PRISM_LOG_ERROR("dropped a malformed batch of pushed tasks from rank {}: {}", src,
                    st.to_string());
  pushes_received_.fetch_add(1, std::memory_order_relaxed);
  if (n > 0) {
    std::lock_guard lk(mu_);
    stats_.tasks_taken += n;
  }
  send_heartbeat(/*urgent=*/true);  // the order is carried out: another may follow
}

}  // namespace prism::runtime
