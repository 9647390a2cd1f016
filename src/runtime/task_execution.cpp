// NodeRuntime, part: the executor's side of a task — taking it from another
// rank, running it on a worker, and sending its result to its owner.
#include "runtime/node_runtime_internal.hpp"

#include <algorithm>

#include "actor/registry.hpp"
#include "common/log.hpp"
#include "prism/errors.hpp"
#include "prism/remote.hpp"
#include "worker/gpu_device.hpp"

namespace prism::runtime {

using namespace internal;

void NodeRuntime::on_submit(int src, Reader& r) {
  // Pooled, and owned by the pool's entry: a job capturing the spec itself
  // would not fit std::function's inline buffer, so every task from another
  // rank was a malloc on the polling thread freed by a worker (the slow,
  // cross-thread path of glibc's allocator).
  auto spec = std::allocate_shared<TaskSpec>(PoolAllocator<TaskSpec>());
  if (Status st = decode_task(r, *spec); !st) {
    PRISM_LOG_ERROR("dropped task from rank {}: {}", src, st.to_string());
    return;
  }
  if (spec->kind == TaskKind::kActorCall) {  // to the actor's mailbox, in its caller's order
    const ObjectId actor = spec->actor;
    actors::Call call{{spec->caller_rank, spec->caller_actor},
                      spec->call_seq,
                      spec->skip,
                      spec->actor_incarnation,
                      spec};
    actor_host_.enqueue(actor, std::move(call));
    return;
  }
  if (src == global_scheduler_) received_from_global_.fetch_add(1, std::memory_order_relaxed);
  if (spec->id.owner_rank != static_cast<uint32_t>(layout_.world_rank)) {
    // Its result may be forwarded to tasks elsewhere (on_forward_object).
    std::lock_guard lk(live_mu_);
    live_tasks_.try_emplace(spec->id);
  }
  for (const auto& a : spec->args)
    if (a.kind == WireArg::Kind::kPendingRef) return hold_for_args(std::move(spec));
  auto demand = spec->resources;
  TaskSpec* job_spec = spec.get();
  pool_.submit([this, job_spec] { execute(*job_spec); }, std::move(demand), false, std::move(spec));
  send_heartbeat();
}

// A task sent ahead of its arguments (kPendingRef) waits here until each is
// ready. Its owner arranged each delivery (dispatch_ahead_locked): a result
// of a task running here is taken as it finishes; otherwise its producer or
// its owner sends it. Then the task is queued like any task.
void NodeRuntime::hold_for_args(std::shared_ptr<TaskSpec> spec) {
  std::lock_guard lk(mu_);
  auto held = std::make_unique<HeldTask>();
  held->spec = std::move(spec);
  const uint64_t key = kHeldBit | next_held_++;
  const uint32_t owner = held->spec->id.owner_rank;
  std::vector<ObjectId> served;
  for (size_t i = 0; i < held->spec->args.size(); ++i) {
    auto& a = held->spec->args[i];
    if (a.kind != WireArg::Kind::kPendingRef) continue;
    const ObjectId dep_id = a.ref;
    const uint32_t producer = a.location.holder;
    auto dep = entry_locked(dep_id);  // kept by the task's owner meanwhile: no registration
    if (!dep->ready.load())           // its value may have come first (keep_early_locked)
      if (auto early = take_early_value_locked(dep_id)) (void)accept_value_locked(dep_id, *early);
    if (dep->ready.load()) {
      fill_arg(a, i, dep_id, *dep, held->error);
      served.push_back(dep_id);
      continue;
    }
    dep->dependents.emplace_back(key, i);
    ++held->unresolved;
    if (dep_id.owner_rank != owner) {
      request_status_locked(dep_id, *dep);  // another rank's object: ask its owner
    } else if (producer == static_cast<uint32_t>(layout_.world_rank)) {
      std::unique_lock live_lk(live_mu_);
      auto live = live_tasks_.find(dep_id);
      if (live != live_tasks_.end()) {
        live->second.push_back(layout_.world_rank);  // taken when it finishes here
      } else {
        live_lk.unlock();
        request_status_locked(dep_id, *dep);  // it finished already: its owner has it
      }
    }
    // (else its producer forwards it, or its owner subscribed this node)
  }
  for (const auto& id : served) maybe_free_locked(id);
  if (held->unresolved == 0) return start_held_locked(std::move(held));
  held_.emplace(key, std::move(held));
}

void NodeRuntime::resolve_held_locked(uint64_t key, size_t arg, const ObjectId& id,
                                      const ObjectEntry& e) {
  auto it = held_.find(key);
  if (it == held_.end()) return;
  HeldTask& h = *it->second;
  fill_arg(h.spec->args[arg], arg, id, e, h.error);
  if (--h.unresolved > 0) return;
  auto held = std::move(it->second);
  held_.erase(it);
  start_held_locked(std::move(held));
}

void NodeRuntime::start_held_locked(std::unique_ptr<HeldTask> held) {
  if (!held->error.empty()) {  // never runs: its refs' pins go, its owner hears why
    ObjectValue v;
    v.kind = ObjectValue::Kind::kError;
    v.error = std::move(held->error);
    std::vector<std::pair<ObjectId, int>> none;
    release_unborrowed_locked(*held->spec, none);
    deliver_result_locked(held->spec->id, std::move(v), {}, held->spec->attempt);
    return;
  }
  auto demand = held->spec->resources;
  TaskSpec* job_spec = held->spec.get();
  pool_.submit([this, job_spec] { execute(*job_spec); }, std::move(demand), false,
               std::move(held->spec));
}

// The owner of a task running here asks for its result to go to `dst` too.
void NodeRuntime::on_forward_object(int src, Reader& r) {
  const ObjectId id = decode_object_id(r);
  const int dst = r.get<int32_t>();
  if (!r.finish("forward object")) return;
  if (dst < 0 || dst >= layout_.num_nodes) return;
  {
    std::lock_guard lk(live_mu_);
    auto live = live_tasks_.find(id);
    if (live != live_tasks_.end()) {
      live->second.push_back(dst);
      return;
    }
  }
  // Done already (the owner's messages come in order, so it was here): the
  // owner, which has the result by now or soon, sends it.
  Writer w(32);
  w.put(MessageKind::kForwardFailed);
  encode_object_id(id, w);
  w.put<int32_t>(dst);
  if (Status st = send(src, w); !st)
    PRISM_LOG_WARN("forward failed to rank {}: {}", src, st.to_string());
}

// Sends a finished task's result to the nodes its owner asked for, and to
// tasks held here (this node's own), besides its owner: one message, or
// none, instead of a round through the owner.
void NodeRuntime::forward_result_locked(const ObjectId& id, const ObjectValue& v,
                                        std::vector<int> to) {
  Writer w(32 + (v.kind == ObjectValue::Kind::kInline ? v.bytes.size() : 64));
  w.put(MessageKind::kForwardedObject);
  encode_object_id(id, w);
  encode_object_value(v, w);
  for (int dst : to) {
    if (dst == layout_.world_rank) {  // a task held here may start now
      if (objects_.find(id)) complete_locked(id, v);
    } else if (Status st = send(dst, w); !st) {
      PRISM_LOG_WARN("forwarding {} to rank {}: {}", id.to_string(), dst, st.to_string());
    }
  }
}

// A forwarded value whose task has not come yet (on_status_reply): kept for
// kEarlyValueTtlUs at most (a copy whose task was served by another copy).
void NodeRuntime::keep_early_locked(const ObjectId& id, ObjectValue v) {
  const int64_t now = Timeline::now_us();
  while (!early_order_.empty() && now - early_order_.front().first > kEarlyValueTtlUs) {
    auto it = early_values_.find(early_order_.front().second);
    if (it != early_values_.end() && it->second.arrived_us == early_order_.front().first)
      early_values_.erase(it);
    early_order_.pop_front();
  }
  auto& early = early_values_[id];
  early.value = std::move(v);
  early.arrived_us = now;
  early_order_.emplace_back(now, id);
}

std::optional<ObjectValue> NodeRuntime::take_early_value_locked(const ObjectId& id) {
  if (early_values_.empty()) return std::nullopt;
  auto it = early_values_.find(id);
  if (it == early_values_.end()) return std::nullopt;
  ObjectValue v = std::move(it->second.value);
  early_values_.erase(it);  // its early_order_ record expires on its own
  return v;
}

// A task that failed before it decoded all its arguments never borrowed some
// of the refs its submitter pinned for the trip (ObjectRef arguments, refs
// inside values): release those pins, or the objects would be kept for the
// job. Refs it did borrow released their pins then.
void NodeRuntime::release_unborrowed_locked(const TaskSpec& spec,
                                            std::vector<std::pair<ObjectId, int>>& borrowed) {
  const int sender = static_cast<int>(spec.id.owner_rank);
  auto release_unless_borrowed = [&](const ObjectId& rid) {
    auto it = std::find(borrowed.begin(), borrowed.end(), std::pair{rid, sender});
    if (it != borrowed.end())
      borrowed.erase(it);
    else
      release_transit_pin_locked(rid, sender);
  };
  for (const auto& a : spec.args) {
    if (a.kind == WireArg::Kind::kRef) release_unless_borrowed(a.ref);
    if (a.kind == WireArg::Kind::kValueWithRefs)
      for (const auto& rid : a.contained) release_unless_borrowed(rid);
  }
}

// Runs on a worker thread (an actor's method: on one of its runners).
// For a local task `spec` lives in its in_flight_ record, erased at the end:
// nothing here reads it after that.
void NodeRuntime::execute(TaskSpec& spec, LocalActor* actor) {
  Scope scope(this);
  struct CurrentTask {  // nested tasks submitted from here name this one as parent
    ObjectId saved = tls_current_task;
    uint32_t saved_attempt = tls_current_attempt;
    CurrentTask(const ObjectId& id, uint32_t attempt) {
      tls_current_task = id;
      tls_current_attempt = attempt;
    }
    ~CurrentTask() {
      tls_current_task = saved;
      tls_current_attempt = saved_attempt;
    }
  } current_task(spec.id, spec.attempt);
  std::optional<TaskAcks> acks;  // only arguments can need them (see TaskAcks)
  if (!spec.args.empty()) acks.emplace().task_owner = spec.id.owner_rank;
  struct RunnerClockScope {  // tasks run nested in this one read the clock themselves
    RunnerClock* clock = std::exchange(tls_runner_clock, nullptr);
    ~RunnerClockScope() { tls_runner_clock = clock; }
  } runner;
  const int64_t t0 =
      runner.clock && runner.clock->last_end_us ? runner.clock->last_end_us : Timeline::now_us();
  const int64_t outer_not_own_us = tls_not_own_us;
  tls_not_own_us = 0;
  std::vector<std::byte> result;
  std::vector<detail::HandlePtr> contained;        // refs serialized inside the result
  std::vector<std::pair<ObjectId, int>> borrowed;  // by argument decoding (BorrowLog below)
  std::string error;
  bool user_code = false;
  bool lost_input = false;  // an argument's holder was lost (docs/fault-tolerance.md)
  try {
    // A task whose owner was lost while it waited here: nobody will read its
    // result (fate sharing), so it does not run. (Actor calls do: their
    // actor's state may count on them.)
    if (const int owner = static_cast<int>(spec.id.owner_rank);
        spec.kind == TaskKind::kFunction && owner != layout_.world_rank && is_lost(owner))
      throw Error("task '" + spec.name + "' did not run: its owner " + lost_reason(owner));
    if (spec.kind == TaskKind::kFunction && !spec.fn)
      spec.fn = detail::find_function(spec.function);  // sent by another rank
    if (spec.kind == TaskKind::kActorCall && !spec.method)
      spec.method = detail::find_actor_method(spec.function);
    if (spec.kind == TaskKind::kFunction && !spec.fn)
      throw RegistrationError("function '" + spec.function + "' is not registered on rank " +
                              std::to_string(layout_.world_rank) +
                              " (every rank must run the same binary with PRISM_REMOTE)");
    if (spec.kind == TaskKind::kActorCall && (!spec.method || !actor))
      throw RegistrationError("actor method '" + spec.name + "' is not registered on rank " +
                              std::to_string(layout_.world_rank) +
                              " (every rank must run the same binary with PRISM_ACTOR)");
    // GPUs: the worker pool granted them before the task started (a device
    // is never shared beyond 1.0), or the actor holds them; the thread's
    // CUDA device is the first.
    if (const auto& gpus = worker::WorkerPool::current_gpu_ids(); !gpus.empty())
      worker::set_current_device(gpus.front());
    std::vector<detail::ArgValue> args(spec.args.size());
    std::vector<std::unique_ptr<FetchedCopy>> fetched;  // pooled, warm, registered buffers
    std::vector<std::shared_ptr<const object_store::StoredObject>> pinned;
    fetched.reserve(spec.args.size());
    for (size_t i = 0; i < spec.args.size(); ++i) {
      auto& w = spec.args[i];
      auto& a = args[i];
      switch (w.kind) {
        case WireArg::Kind::kPendingRef:  // held until ready (hold_for_args): never here
          throw Error("argument " + std::to_string(i) + " was not resolved before the task ran");
        case WireArg::Kind::kValue:
          a.bytes = w.value;
          break;
        case WireArg::Kind::kValueWithRefs:
          a.bytes = w.value;
          a.ref_sender = static_cast<int32_t>(spec.id.owner_rank);  // the submitter pinned them
          break;
        case WireArg::Kind::kRef:
          a.is_ref = true;
          a.ref = to_pod(w.ref);
          a.ref_sender = static_cast<int32_t>(spec.id.owner_rank);  // the submitter pinned it
          break;
        case WireArg::Kind::kRemoteValue: {
          const auto& loc = w.location;
          if (loc.holder == static_cast<uint32_t>(layout_.world_rank)) {
            auto obj = acquire_local(w.ref);  // pinned for the task's duration
            if (!obj && obj.status().code() == Errc::kLost) {
              copy_lost(w.ref, obj.status().message());  // before this task's result goes
              lost_input = true;  // its owner runs it again once the argument is made again
            }
            if (!obj) throw Error("argument " + std::to_string(i) + ": " + obj.status().message());
            a.bytes = (*obj)->bytes();
            pinned.push_back(std::move(obj.value()));
          } else {
            auto buf = store_.allocate(loc.size + kFetchSlack);
            if (!buf)
              throw Error("no memory for argument " + std::to_string(i) + ": " +
                          buf.status().message());
            fetched.push_back(std::make_unique<FetchedCopy>(std::move(buf.value())));
            auto& copy = *fetched.back();
            Status st = fetch(w.ref, loc, copy.buffer.data(), "argument " + std::to_string(i),
                              &copy.offset);
            if (!st) {
              lost_input = is_lost(static_cast<int>(loc.holder)) || st.code() == Errc::kLost;
              throw Error("fetching argument " + std::to_string(i) + ": " + st.to_string());
            }
            a.bytes = {copy.data(), loc.size};
          }
          break;
        }
      }
    }
    struct BorrowLog {
      std::vector<std::pair<ObjectId, int>>* outer = tls_borrow_log;
      TaskAcks* outer_acks = tls_task_acks_;
      BorrowLog(std::vector<std::pair<ObjectId, int>>* log, TaskAcks* acks) {
        tls_borrow_log = log;
        tls_task_acks_ = acks;
      }
      ~BorrowLog() {
        tls_borrow_log = outer;
        tls_task_acks_ = outer_acks;
      }
    } log(&borrowed, acks ? &*acks : nullptr);
    detail::InvokeResult out;
    user_code = true;  // an exception from here on is the task's own (retry_exceptions)
    switch (spec.kind) {
      case TaskKind::kFunction:
        out = spec.group.is_nil() ? spec.fn->invoke(spec.fn->fn, args) : run_mpi_rank(spec, args);
        break;
      case TaskKind::kActorCreation:
        out = construct_actor(spec, args);
        break;
      case TaskKind::kActorCall:
        out = spec.method->invoke(actor->instance, *spec.method, args);
        break;
    }
    result = std::move(out.bytes);
    contained = std::move(out.contained);
  } catch (const std::exception& e) {
    error = std::string(e.what()) + " [node " + std::to_string(layout_.world_rank) + "]";
  } catch (...) {
    error = "unknown exception [node " + std::to_string(layout_.world_rank) + "]";
  }
  // A failed method of an actor group's member breaks its group: the others'
  // collectives would wait for it forever.
  if (!error.empty() && actor && actor->group)
    break_group_everywhere(*actor->group, "member " + std::to_string(actor->group_index) + " (" +
                                              spec.name + ") failed: " + error);
  // So does an MPI task's rank that failed before it met the others (say,
  // fetching an argument); after the meeting this changes nothing.
  if (!error.empty() && !actor && !spec.group.is_nil() && spec.kind == TaskKind::kFunction)
    break_group_everywhere(
        *groups_->join(spec.group, spec.group_label,
                       std::vector<int>(spec.group_nodes.begin(), spec.group_nodes.end())),
        "rank " + std::to_string(spec.group_index) + " failed: " + error);
  // A member that failed before it took its reservation gives it back.
  if (!error.empty() && !spec.group.is_nil() && spec.kind != TaskKind::kActorCall)
    if (auto r = take_reservation(spec.group, spec.group_index))
      pool_.release_kept(r->demand, r->grant);
  const int64_t t1 = Timeline::now_us();
  if (runner.clock) runner.clock->last_end_us = t1;
  const int64_t own_us = std::max<int64_t>(0, t1 - t0 - tls_not_own_us);
  tls_not_own_us = outer_not_own_us + (t1 - t0);  // run inline: not the outer task's own work
  if (timeline_.enabled())  // the event copies the name: build it only when recording
    timeline_.record({spec.name, actor ? "actor call" : "task", t0, t1 - t0, layout_.world_rank,
                      worker::WorkerPool::current_index(), 0, !error.empty(),
                      actor ? actor->track : std::string()});
  if (acks) await_task_acks(*acks);  // the result lets the task's owner drop its arguments
  // An actor with checkpoints: the state this call left goes to the owner
  // before the call's result goes out, so a result seen is in a checkpoint.
  if (actor && actor->checkpoint_interval > 0 &&
      (actor->calls_done.fetch_add(1, std::memory_order_relaxed) + 1) %
              actor->checkpoint_interval ==
          0)
    save_checkpoint(*actor);
  const ObjectId id = spec.id;       // `spec` may be gone after in_flight_.erase below
  const uint32_t attempt = spec.attempt;
  ObjectValue v;
  if (!error.empty()) {
    v.kind = ObjectValue::Kind::kError;
    v.error = std::move(error);
    v.task_exception = user_code;
    v.lost_input = lost_input;
  } else {
    v = make_value(id, std::move(result));
  }
  // This worker takes its next job from the queue right after: a task this
  // result makes ready here runs on it without waking another thread. Not
  // for actor calls: their runner goes on to the actor's next call.
  std::optional<worker::WorkerPool::FinishingScope> finishing;
  if (!actor) finishing.emplace(pool_);
  std::lock_guard lk(mu_);
  if (spec.fn) note_task_time_locked(*spec.fn, own_us);  // before `spec` may go below
  if (v.kind == ObjectValue::Kind::kError) release_unborrowed_locked(spec, borrowed);
  ++stats_.tasks_executed;
  if (actor) ++stats_.actor_calls;
  stats_.busy_us += static_cast<uint64_t>(t1 - t0);
  if (v.kind == ObjectValue::Kind::kError) ++stats_.tasks_failed;
  deliver_result_locked(id, std::move(v), std::move(contained), attempt);
}

// The result of a task run (or refused) here goes to its owner: this
// process, or a TaskResult message.
void NodeRuntime::deliver_result_locked(const ObjectId& id, ObjectValue v,
                                        std::vector<detail::HandlePtr> contained,
                                        uint32_t attempt) {
  const int owner = static_cast<int>(id.owner_rank);
  if (owner == layout_.world_rank) {
    if (earlier_run_locked(id, attempt, layout_.world_rank)) return;
    if (retry_locked(id, v)) return;
    // A large result in this rank's store can still lose its copy (a spill
    // file deleted under the job): keep how it was made, as for results
    // held elsewhere (docs/fault-tolerance.md, "Lineage").
    std::shared_ptr<Lineage> lineage;
    if (v.kind == ObjectValue::Kind::kRemote)
      if (auto it = in_flight_.find(id.seq); it != in_flight_.end() && it->second->spec.id == id)
        lineage = lineage_of_locked(*it->second);
    retire_task_locked(id, v.kind == ObjectValue::Kind::kError, layout_.world_rank);
    auto* before = objects_.find(id);
    const bool fresh = !before || !(*before)->ready.load();
    complete_locked(id, std::move(v));
    // (The entry is looked up again only when there is something to keep.)
    if (lineage && fresh)
      if (auto* found = objects_.find(id)) (*found)->lineage = std::move(lineage);
    if (!contained.empty())
      if (auto* found = objects_.find(id)) (*found)->contained = std::move(contained);
    maybe_free_locked(id);
    return;
  }
  Writer w(32 + (v.kind == ObjectValue::Kind::kInline ? v.bytes.size() : 64));
  // Refs inside the result: pinned here until the owner, which keeps them
  // with the result, is counted as their borrower (TransitDone).
  std::vector<ObjectId> contained_ids;
  for (const auto& h : contained) {
    contained_ids.push_back(to_id(h->id()));
    pin_for_trip_locked(contained_ids.back());
  }
  encode_task_result(id, v, contained_ids, w, attempt);
  if (Status st = send(owner, w); !st && is_lost(owner))  // nobody reads it: fate sharing
    PRISM_LOG_DEBUG("result of {} to lost rank {} dropped", id.to_string(), owner);
  else if (!st)
    PRISM_LOG_ERROR("result of {} to rank {}: {}", id.to_string(), owner, st.to_string());
  std::vector<int> to;
  {
    std::lock_guard live_lk(live_mu_);
    if (auto live = live_tasks_.find(id); live != live_tasks_.end()) {
      to = std::move(live->second);
      live_tasks_.erase(live);
    }
  }
  // Refs inside a value are counted through its owner: such results are not forwarded.
  if (!to.empty() && contained_ids.empty()) forward_result_locked(id, v, std::move(to));
}

}  // namespace prism::runtime
