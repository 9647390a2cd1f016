// NodeRuntime, part: the owner's side of a task — submission, dependency
// resolution, placement and dispatch (local, to a node, or spilled in
// batches to the global scheduler), and its result coming back.
#include "runtime/node_runtime_internal.hpp"

#include <algorithm>
#include <limits>

#include "common/log.hpp"
#include "prism/errors.hpp"
#include "prism/remote.hpp"

namespace prism::runtime {

using namespace internal;

// ------------------------------------------------------------------ tasks ---

// A task record with a fresh id owned by this process.
NodeRuntime::PendingPtr NodeRuntime::new_task(std::string_view function) {
  auto task = make_pooled<PendingTask>();
  task->spec.id = {static_cast<uint32_t>(layout_.world_rank), 0, next_seq_.fetch_add(1)};
  task->spec.function = function;
  task->spec.parent = tls_current_task;
  return task;
}

detail::HandlePtr NodeRuntime::submit(const detail::RemoteFunctionInfo& function,
                                      std::vector<detail::TaskArg> args,
                                      const TaskOptions& options) {
  if (options.mpi_ranks < 0)
    throw Error("task '" + function.name + "': mpi_ranks must be 0 (a plain task) or more, not " +
                std::to_string(options.mpi_ranks));
  if (options.mpi_ranks > 0) return submit_mpi_task(function, std::move(args), options);
  auto task = new_task(function.name);
  task->spec.fn = &function;
  task->spec.name = options.name.empty() ? function.name : options.name;
  task->spec.resources = {options.num_cpus, options.num_gpus, options.memory, options.resources};
  task->request = {options.num_cpus,  options.num_gpus, options.memory,
                   options.resources, options.node,     static_cast<int>(options.placement),
                   task->spec.name};
  if (options.max_retries < -1)
    throw Error("task '" + function.name + "': max_retries must be -1 (always), 0 or more, not " +
                std::to_string(options.max_retries));
  task->retries_left =
      options.max_retries == -1 ? kRetryAlways : static_cast<uint32_t>(options.max_retries);
  task->max_retries = task->retries_left;
  task->retry_exceptions = options.retry_exceptions;

  std::lock_guard lk(mu_);
  // Infeasible requests fail at once, before anything is queued.
  if (Status st = scheduler_.check(task->request); !st) {
    if (st.code() == Errc::kInfeasible) throw InfeasibleError(st.message());
    throw Error(st.message());
  }
  return enqueue_task_locked(std::move(task), args);
}

// Makes the task's result object and takes its arguments; it is dispatched
// at once, or when the last object it waits for is ready.
detail::HandlePtr NodeRuntime::enqueue_task_locked(PendingPtr task,
                                                   std::vector<detail::TaskArg>& args) {
  const ObjectId id = task->spec.id;
  const uint64_t seq = id.seq;
  // A large value goes into this rank's store first and travels as an
  // object: the executor pulls it with RDMA instead of it riding inside the
  // task message (1 MiB: ~0.3 ms instead of ~2.8 ms here). Ray does the same
  // above 100 KiB. Done before anything else, so a full store fails the
  // submission cleanly (ObjectStoreFullError).
  for (auto& a : args)
    if (a.kind == detail::TaskArg::Kind::kValue && a.contained.empty() &&
        a.value.size() > config_.inline_threshold) {
      // Copied into a pooled, registered store buffer (put_contiguous):
      // cheaper than registering the encoder's fresh pages for RDMA.
      a.ref = put_contiguous({}, a.value);
      a.value = {};
      a.kind = detail::TaskArg::Kind::kResolveRef;
    }
  auto result = make_handle_locked(id);
  entry_locked(id)->task_name = task->spec.name;
  ++stats_.tasks_submitted;

  task->spec.args.resize(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    auto& a = args[i];
    auto& w = task->spec.args[i];
    switch (a.kind) {
      case detail::TaskArg::Kind::kValue:
        w.kind = a.contained.empty() ? WireArg::Kind::kValue : WireArg::Kind::kValueWithRefs;
        w.value = std::move(a.value);
        for (auto& h : a.contained) {  // unpinned when the executor's borrow is counted
          const ObjectId rid = to_id(h->id());
          pin_for_trip_locked(rid);
          task->value_refs.push_back(rid);
          w.contained.push_back(rid);
          task->arg_refs.push_back(std::move(h));
        }
        break;
      case detail::TaskArg::Kind::kPassRef: {
        const ObjectId rid = to_id(a.ref->id());
        w.kind = WireArg::Kind::kRef;
        w.ref = rid;
        task->spec.arg_ids.push_back(rid);
        pin_for_trip_locked(rid);  // released when the executor's borrow is counted
        task->arg_refs.push_back(a.ref);
        break;
      }
      case detail::TaskArg::Kind::kResolveRef: {
        const ObjectId rid = to_id(a.ref->id());
        task->arg_refs.push_back(a.ref);
        task->spec.arg_ids.push_back(rid);
        auto dep = entry_locked(rid);
        if (dep->ready.load()) {
          resolve_arg_locked(*task, i, rid, *dep);
        } else {
          dep->dependents.emplace_back(seq, i);
          ++task->unresolved;
          request_status_locked(rid, *dep);
          w.kind = WireArg::Kind::kPendingRef;  // until resolved here (resolve_arg_locked)
          w.ref = rid;
        }
        break;
      }
    }
  }
  if (task->unresolved > 0 && sends_ahead(*task))
    return dispatch_ahead_locked(std::move(task)), result;
  if (task->unresolved == 0)
    dispatch_locked(std::move(task));
  else
    waiting_.emplace(seq, std::move(task));
  return result;
}

// A task pinned to another node goes there at once, its missing arguments
// with it (kPendingRef): the executor holds it until they are ready. For
// each one this owner arranges the delivery: the node producing it sends
// it straight there (ForwardObject; the executor itself when it is the
// producer), or, when this owner produces it or does not know who does,
// the executor is made a subscriber here. So a dependency between two node
// ranks costs one message from producer to consumer, and none when both
// are the same node, instead of a round through this owner.
bool NodeRuntime::sends_ahead(const PendingTask& task) const {
  return config_.send_ahead && task.spec.kind == TaskKind::kFunction && task.request.node >= 0 &&
         task.request.node != layout_.world_rank && task.request.node < layout_.num_nodes;
}

void NodeRuntime::dispatch_ahead_locked(PendingPtr task) {
  const int target = task->request.node;
  for (auto& a : task->spec.args) {
    if (a.kind != WireArg::Kind::kPendingRef) continue;
    a.location.holder = WireArg::kNoNode;
    if (a.ref.owner_rank != static_cast<uint32_t>(layout_.world_rank)) continue;  // asks its owner
    // The dependents entry stays: when the object completes here it finds no
    // waiting task and does nothing.
    auto it = in_flight_.find(a.ref.seq);
    const int producer =
        it != in_flight_.end() && it->second->spec.id == a.ref ? it->second->node : -1;
    if (producer >= 0 && producer != layout_.world_rank) {
      a.location.holder = static_cast<uint32_t>(producer);
      if (producer == target) continue;  // the executor takes it from its own task
      Writer w(32);
      w.put(MessageKind::kForwardObject);
      encode_object_id(a.ref, w);
      w.put<int32_t>(target);
      if (Status st = send(producer, w); st) {
        it->second->forwards.push_back(target);  // if the producer is lost, this owner sends it
        continue;
      }
      a.location.holder = WireArg::kNoNode;  // could not ask: this owner sends it
    }
    subscribe_locked(a.ref, target);
  }
  task->unresolved = 0;
  dispatch_locked(std::move(task));
}

// `dst` is to hear when owned object `id` is ready (as if it had asked).
void NodeRuntime::subscribe_locked(const ObjectId& id, int dst) {
  auto* e = objects_.find(id);
  if (!e) return;
  if (!(*e)->ready.load()) {
    (*e)->subscribers.push_back(dst);
    return;
  }
  Writer w;
  w.put(MessageKind::kObjectStatusReply);
  encode_object_id(id, w);
  encode_object_value((*e)->value, w);
  if (Status st = send(dst, w); !st) PRISM_LOG_WARN("status reply: {}", st.to_string());
}

// A producer could not forward `id` to `dst` (it was done before it heard):
// this owner sends it instead.
void NodeRuntime::on_forward_failed(Reader& r) {
  const ObjectId id = decode_object_id(r);
  const int dst = r.get<int32_t>();
  if (!r.finish("forward failed")) return;
  std::lock_guard lk(mu_);
  subscribe_locked(id, dst);
}

// The owner's bookkeeping for one of its tasks that is done (run here, or
// its result arrived from `executor`): placement counts, the observer, the
// in-flight record.
void NodeRuntime::retire_task_locked(const ObjectId& id, bool failed, int executor) {
  auto it = in_flight_.find(id.seq);
  if (it == in_flight_.end() || it->second->spec.id != id) return;
  const PendingTask& t = *it->second;
  if (t.node >= 0 && t.spec.kind != TaskKind::kActorCall) scheduler_.on_complete(t.node);
  if (t.spec.kind == TaskKind::kActorCreation && !failed) keep_actor_lineage_locked(t);
  if (t.report_when_done)
    observer_.task_done(t.spec, failed, executor);
  else if (observer_.task_finished)
    observer_.task_finished(id, failed, executor);
  in_flight_.erase(it);
  ++stats_.tasks_finished;
}

// Fills argument `arg` of `task` from the ready object `dep`.
void NodeRuntime::resolve_arg_locked(PendingTask& task, size_t arg, const ObjectId& dep_id,
                                     const ObjectEntry& dep) {
  if (arg == kActorDep) return resolve_actor_dep(task, dep_id, dep);
  fill_arg(task.spec.args[arg], arg, dep_id, dep, task.arg_error);
}

// Argument `arg` (on the wire: `w`) is the value of the ready object `dep`.
void NodeRuntime::fill_arg(WireArg& w, size_t arg, const ObjectId& dep_id, const ObjectEntry& dep,
                           std::string& error) {
  switch (dep.value.kind) {
    case ObjectValue::Kind::kInline:
      w.kind = WireArg::Kind::kValue;
      w.value.assign(dep.value.bytes.begin(), dep.value.bytes.end());
      break;
    case ObjectValue::Kind::kRemote:  // the executor pulls it from the holder
      w.kind = WireArg::Kind::kRemoteValue;
      w.ref = dep_id;
      w.location = dep.value.location;
      break;
    case ObjectValue::Kind::kError:
      // The task fails without running, with the argument's error.
      if (error.empty()) error = "argument " + std::to_string(arg) + " failed: " + dep.value.error;
      break;
  }
}

// The task never reached an executor: nobody will borrow its refs.
void NodeRuntime::unpin_task_refs_locked(const PendingTask& task) {
  for (const auto& a : task.spec.args)
    if (a.kind == WireArg::Kind::kRef) transit_done_locked(a.ref);
  for (const auto& r : task.value_refs) transit_done_locked(r);
}

// The task never reached an executor: its refs are unpinned and its object
// fails with `why`.
void NodeRuntime::fail_unsent_locked(const PendingTask& task, std::string why) {
  unpin_task_refs_locked(task);
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = std::move(why);
  complete_locked(task.spec.id, std::move(v));
}

void NodeRuntime::dispatch_locked(PendingPtr task) {
  if (task->spec.kind == TaskKind::kActorCall) return dispatch_actor_call_locked(std::move(task));
  const ObjectId id = task->spec.id;
  if (!task->arg_error.empty()) return fail_unsent_locked(*task, task->arg_error);
  for (const auto& a : task->spec.args)  // locality: where is the largest argument?
    if (a.kind == WireArg::Kind::kRemoteValue && a.location.size > task->request.data_bytes) {
      task->request.data_bytes = a.location.size;
      task->request.data_node = static_cast<int>(a.location.holder);
    }
  const std::optional<uint64_t> mean_ns = mean_task_ns_locked(task->spec.fn);
  // A movable task stays on its submitter's node (a task's child is then
  // usually run by its parent while it waits); idle nodes take the oldest.
  const bool movable = movable_locked(*task);
  auto node = scheduler_.pick(
      task->request, pool_.has_room(task->spec.resources, local_queue_limit(mean_ns, movable)));
  if (!node) return fail_unsent_locked(*task, node.status().message());
  task->node = *node;
  const bool via_global = *node == scheduler::Scheduler::kGlobal;
  if (!via_global) scheduler_.on_dispatch(*node);
  // Via the global scheduler the executor is known only when the result comes.
  const bool known_short = mean_ns && *mean_ns < kShortTaskNs;
  task->report_when_done = *node == layout_.world_rank && known_short && observer_.task_done;
  if (observer_.task_dispatched && !task->report_when_done)
    observer_.task_dispatched(task->spec, via_global ? -1 : *node);
  if (*node == layout_.world_rank) {
    // The ticket lets a get() of this object run it inline (run_inline).
    // The job reads the spec where it is: the record stays in in_flight_
    // (inserted below, under the same lock) until execute() erases it, and
    // two pointers fit std::function without a heap block.
    task->queued = queue_here_locked(*task, known_short, movable);
  } else if (via_global) {
    // Batched: the next poll by any thread (or a full batch) sends it.
    Writer& w = spill_batch_.begin();
    encode_spill_header(task->request, w);
    encode_task(task->spec, w);
    spill_batch_.end();
    spill_ids_.push_back(id);
    in_flight_.emplace(id.seq, std::move(task));
    if (spill_batch_.count() >= kSpillBatch)
      flush_spills_locked();
    else if (spill_batch_.count() == 1)
      engine_.request_deferred_work();
    return;
  } else {
    Writer w(64);
    w.put(MessageKind::kSubmitTask);
    encode_task(task->spec, w);
    if (Status st = send(*node, w); !st) {
      scheduler_.on_complete(*node);
      return fail_unsent_locked(*task, "could not send the task to rank " + std::to_string(*node) +
                                           ": " + st.to_string());
    }
  }
  in_flight_.emplace(id.seq, std::move(task));
}

void NodeRuntime::run_deferred_work() {
  std::lock_guard lk(mu_);
  flush_spills_locked();
  fail_orphaned_locked();
}

// Sends the batch of spilled tasks; if it cannot go, each task fails at once.
void NodeRuntime::flush_spills_locked() {
  if (spill_batch_.count() == 0) return;
  // The global scheduler learns this node's load from heartbeats sent when
  // jobs finish; tasks queued here since then (the reason these spill) would
  // be invisible to it, and it could send them right back. Same channel, so
  // the heartbeat arrives first.
  send_heartbeat(/*urgent=*/true);
  Writer w = spill_batch_.take();
  auto ids = std::move(spill_ids_);
  spill_ids_.clear();
  Status st = send(global_scheduler_, w);
  if (st) return;
  for (const auto& id : ids) {
    auto it = in_flight_.find(id.seq);
    if (it == in_flight_.end()) continue;
    auto task = std::move(it->second);
    in_flight_.erase(it);
    fail_unsent_locked(*task, "could not send the task to the global scheduler (rank " +
                                  std::to_string(global_scheduler_) + "): " + st.to_string());
  }
}

// "The local queue is short" measured in time, not tasks: a task queued here
// starts after about queued / slots x (mean task time), one sent away after a
// hop (global scheduler, other node: ~kSpillHopUs of messages). So empty
// tasks queue ~20 deep per slot before spilling (sending them away costs more
// CPU than running them), while tasks of a millisecond or more spill as soon
// as every slot has one waiting. The mean is per function (a job switching
// from tiny tasks to long ones must not queue the long ones deep); a function
// not run here yet counts as long. --prism-local-queue fixes the count.
size_t NodeRuntime::local_queue_limit(std::optional<uint64_t> mean_ns, bool movable) const {
  if (config_.local_queue > 0) return static_cast<size_t>(config_.local_queue);
  // With work stealing, a movable task always queues here: the global
  // scheduler moves the oldest to idle nodes in batches of up to 1024 per
  // message (one message for the batch, no hop), where a spilled task costs
  // a hop through the global scheduler and makes a waiting parent wait a
  // round trip (docs/scheduling.md, "Stealing").
  if (movable) return std::numeric_limits<size_t>::max();
  if (!mean_ns) return static_cast<size_t>(pool_.slots());
  const double task_us = kTaskOverheadUs + 1e-3 * static_cast<double>(*mean_ns);
  const double per_slot = std::clamp(kSpillHopUs / task_us, 1.0, kMaxQueuePerSlot);
  return static_cast<size_t>(per_slot * pool_.slots());
}

// Moving averages (1/8 per run) of the function's run time here, and of
// every task's (recent_task_us_: whether this node asks ahead for work).
void NodeRuntime::note_task_time_locked(const detail::RemoteFunctionInfo& function, int64_t us) {
  const auto own_us = static_cast<uint64_t>(std::max<int64_t>(us, 0));
  const uint64_t sample = own_us * 1000;
  if (function.index >= task_ns_.size()) task_ns_.resize(function.index + 1, 0);
  uint64_t& slot = task_ns_[function.index];
  slot = slot == 0 ? sample + 1 : slot - (slot - 1) / 8 + sample / 8;
  // Written only here, under mu_; read without it by send_heartbeat().
  const uint64_t recent = recent_task_us_.load(std::memory_order_relaxed);
  recent_task_us_.store(recent - recent / 8 + own_us / 8, std::memory_order_relaxed);
}

std::optional<uint64_t> NodeRuntime::mean_task_ns_locked(
    const detail::RemoteFunctionInfo* function) const {
  if (!function || function->index >= task_ns_.size() || task_ns_[function->index] == 0)
    return std::nullopt;
  return task_ns_[function->index] - 1;
}

// An earlier run's answer for task `id`, which went again since: only the
// last run's counts. A task sent again carries a later run number; an actor
// call waiting for its actor's next instance has not gone yet. (The global
// scheduler's errors carry no run number: it answers for whichever task it
// could not place.)
bool NodeRuntime::earlier_run_locked(const ObjectId& id, uint32_t attempt, int src) const {
  if (auto it = in_flight_.find(id.seq); it != in_flight_.end() && it->second->spec.id == id)
    return attempt < it->second->spec.attempt && src != global_scheduler_;
  auto w = waiting_.find(id.seq);
  return w != waiting_.end() && w->second->spec.id == id &&
         w->second->spec.kind == TaskKind::kActorCall;
}

void NodeRuntime::on_task_result(int src, Reader& r) {
  ObjectId id;
  ObjectValue v;
  std::vector<ObjectId> contained;
  uint32_t attempt = 0;
  if (Status st = decode_task_result(r, id, v, contained, &attempt); !st) {
    PRISM_LOG_ERROR("dropped a malformed task result from rank {}: {}", src, st.to_string());
    return;
  }
  std::lock_guard lk(mu_);
  if (earlier_run_locked(id, attempt, src)) {
    for (const auto& rid : contained) borrow(rid, src);  // counted, then let go
    return;
  }
  if (retry_locked(id, v)) return;
  // A result held on another node rank is lost with it: keep how it was
  // made (docs/fault-tolerance.md, "Lineage").
  std::shared_ptr<Lineage> lineage;
  if (v.kind == ObjectValue::Kind::kRemote)
    if (auto it = in_flight_.find(id.seq); it != in_flight_.end() && it->second->spec.id == id)
      lineage = lineage_of_locked(*it->second);
  // The global scheduler fails only tasks it could not place: no executor
  // saw them, so the submitter's pins on their refs go now.
  if (auto it = in_flight_.find(id.seq); it != in_flight_.end() && it->second->spec.id == id &&
                                         src == global_scheduler_ &&
                                         v.kind == ObjectValue::Kind::kError)
    unpin_task_refs_locked(*it->second);
  retire_task_locked(id, v.kind == ObjectValue::Kind::kError, src);
  auto* before = objects_.find(id);
  const bool fresh = !before || !(*before)->ready.load();
  complete_locked(id, std::move(v));
  if (lineage && fresh)
    if (auto* found = objects_.find(id)) (*found)->lineage = std::move(lineage);
  if (!contained.empty()) {
    // The result keeps its refs: borrowing them releases the executor's pins.
    std::vector<detail::HandlePtr> held;
    for (const auto& rid : contained) held.push_back(borrow(rid, src));
    if (auto* found = objects_.find(id); found && fresh) (*found)->contained = std::move(held);
  }
  maybe_free_locked(id);
}

}  // namespace prism::runtime
