// NodeRuntime, part: actors (docs/actors.md). An actor is created by a task
// that runs its constructor where the scheduler places it; the task's result
// (owned by the creator, like any task's) is the node the actor lives on,
// and every handle is a reference to that object, so the actor lives while
// any handle does. A call is a task sent to that node, where the ActorHost
// (src/actor) runs it in its caller's order; its result comes back like a
// task's. This file holds the runtime's side: creating, calling, killing,
// naming, and the ActorHost's hooks.
#include <cstring>

#include "actor/checkpoint_image.hpp"
#include "actor/registry.hpp"
#include "common/log.hpp"
#include "prism/errors.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

using namespace internal;

namespace {

// "Counter actor:0.5"
std::string actor_label(const std::string& cls, const ObjectId& id) {
  return cls + " actor:" + std::to_string(id.owner_rank) + "." + std::to_string(id.seq);
}

}  // namespace

// ---------------------------------------------------------- the caller side ---

detail::HandlePtr NodeRuntime::create_actor(const detail::ActorCtorInfo& ctor,
                                            std::vector<detail::TaskArg> args,
                                            const ActorOptions& options) {
  const std::string cls = detail::actor_class_name(ctor.class_key);
  if (cls.empty())
    throw RegistrationError(
        "actor class is not registered: add PRISM_ACTOR(Class, &Class::method, ...) at "
        "namespace scope");
  if (options.max_concurrency < 1)
    throw Error("actor " + cls + ": max_concurrency must be at least 1, not " +
                std::to_string(options.max_concurrency));
  if (options.max_restarts < -1)
    throw Error("actor " + cls + ": max_restarts must be -1 (always), 0 or more, not " +
                std::to_string(options.max_restarts));
  if (options.max_task_retries < -1)
    throw Error("actor " + cls + ": max_task_retries must be -1 (always), 0 or more, not " +
                std::to_string(options.max_task_retries));
  if (options.checkpoint_interval < 0)
    throw Error("actor " + cls + ": checkpoint_interval must be 0 (never) or more, not " +
                std::to_string(options.checkpoint_interval));
  auto task = new_task(ctor.key);
  const ObjectId id = task->spec.id;
  TaskSpec& spec = task->spec;
  spec.kind = TaskKind::kActorCreation;
  spec.name = cls + "()";
  spec.held = {options.num_cpus, options.num_gpus, options.memory, options.resources};
  spec.resources = spec.held;  // the constructor runs on a CPU even if the actor holds none
  spec.resources.num_cpus = std::max(1.0, options.num_cpus);
  spec.max_concurrency = static_cast<uint32_t>(options.max_concurrency);
  spec.actor_name = options.name;
  spec.max_task_retries = options.max_task_retries;
  // Checkpoints serve restarts only: an actor without either saves none.
  spec.checkpoint_interval = ctor.save && options.max_restarts != 0
                                 ? static_cast<uint32_t>(options.checkpoint_interval)
                                 : 0;
  task->request = {spec.resources.num_cpus,
                   spec.resources.num_gpus,
                   spec.resources.memory,
                   spec.resources.custom,
                   options.node,
                   static_cast<int>(options.placement),
                   "actor " + cls};
  // Restarts (failures.cpp): the creation task is kept as its lineage.
  task->max_retries =
      options.max_restarts < 0 ? UINT32_MAX : static_cast<uint32_t>(options.max_restarts);
  {
    std::lock_guard lk(mu_);  // infeasible actors fail at once, before a name is taken
    if (Status st = scheduler_.check(task->request); !st) {
      if (st.code() == Errc::kInfeasible) throw InfeasibleError(st.message());
      throw Error(st.message());
    }
  }
  if (!options.name.empty()) {  // claimed before anything runs: a taken name creates nothing
    if (!actor_names_.claim)
      throw Error("actor " + cls + ": named actors need the GCS (this runtime has none)");
    if (Status st = actor_names_.claim(options.name, id, ctor.class_key); !st)
      throw Error(
          st.code() == Errc::kAlreadyExists
              ? "an actor named '" + options.name + "' already exists (" + st.message() + ")"
              : "could not register the actor name '" + options.name + "': " + st.message());
  }
  std::lock_guard lk(mu_);
  auto& entry = *entry_locked(id);
  entry.actor = true;
  entry.shared = !options.name.empty();  // a named actor lives until killed or the job ends
  ++stats_.actors_created;
  if (observer_.actor_changed)
    observer_.actor_changed({id, cls, options.name, -1, ActorEvent::State::kPending});
  return enqueue_task_locked(std::move(task), args);
}

detail::HandlePtr NodeRuntime::submit_actor_call(const detail::HandlePtr& actor,
                                                 const detail::ActorMethodInfo& method,
                                                 std::vector<detail::TaskArg> args) {
  const ObjectId aid = to_id(actor->id());
  auto task = new_task({});  // `function` is filled in only if the call leaves this rank
  TaskSpec& spec = task->spec;
  spec.kind = TaskKind::kActorCall;
  spec.method = &method;
  spec.name = method.name;
  spec.resources.num_cpus = 0;  // a call holds nothing: its actor decides (LocalActor::runner)
  spec.actor = aid;
  spec.caller_rank = layout_.world_rank;
  spec.caller_actor = tls_current_actor;
  std::lock_guard lk(mu_);
  // Numbered for the instance known now; renumbered when it is sent to a
  // later one (resolve_actor_dep).
  spec.actor_incarnation = call_seqs_[aid].incarnation;
  spec.call_seq = next_call_seq_locked(aid, spec.caller_actor, spec.actor_incarnation);
  task->actor = actor;  // (a member, not arg_refs: no vector allocated per call)
  add_actor_dep_locked(*task, aid);
  return enqueue_task_locked(std::move(task), args);
}

uint64_t NodeRuntime::next_call_seq_locked(const ObjectId& actor, const ObjectId& caller,
                                           uint32_t incarnation) {
  auto& numbers = call_seqs_[actor];
  if (incarnation > numbers.incarnation) {  // a new instance counts every caller's calls from 1
    numbers.incarnation = incarnation;
    numbers.callers.clear();
  }
  auto& callers = numbers.callers;
  for (auto& [who, n] : callers)
    if (who == caller) return ++n;
  callers.emplace_back(caller, 1);
  return 1;
}

// A call goes to the node its actor lives on: known once the creation object
// is ready (here, or asked of its owner) and names an instance not known to
// be gone.
void NodeRuntime::add_actor_dep_locked(PendingTask& task, const ObjectId& actor) {
  auto creation = entry_locked(actor);
  creation->actor = true;
  if (creation->ready.load()) {
    const auto at = actor_location(creation->value);
    if (!at || at->incarnation >= creation->actor_min_incarnation)
      return resolve_actor_dep(task, actor, *creation);
  }
  creation->dependents.emplace_back(task.spec.id.seq, kActorDep);
  ++task.unresolved;
  task.actor_dep_pending = true;
  request_status_locked(actor, *creation);
}

void NodeRuntime::resolve_actor_dep(PendingTask& task, const ObjectId& actor,
                                    const ObjectEntry& creation) {
  task.actor_dep_pending = false;
  const auto& v = creation.value;
  if (const auto at = actor_location(v)) {
    task.node = at->node;
    if (!task.actor_retries_set) {
      task.retries_left =
          at->max_task_retries < 0 ? kRetryAlways : static_cast<uint32_t>(at->max_task_retries);
      task.actor_retries_set = true;
    }
    TaskSpec& spec = task.spec;
    if (spec.actor_incarnation != at->incarnation) {  // numbered for an instance that is gone
      spec.actor_incarnation = at->incarnation;
      spec.call_seq = next_call_seq_locked(actor, spec.caller_actor, at->incarnation);
    }
  } else if (task.arg_error.empty()) {
    task.arg_error = "its actor (actor:" + std::to_string(actor.owner_rank) + "." +
                     std::to_string(actor.seq) + ") " +
                     (v.actor_gone ? "is gone: " : "could not be created: ") +
                     (v.kind == ObjectValue::Kind::kError ? v.error : "bad creation record");
  }
}

void NodeRuntime::dispatch_actor_call_locked(PendingPtr task) {
  TaskSpec& spec = task->spec;
  const ObjectId id = spec.id;
  const int node = task->node;
  if (!task->arg_error.empty()) {
    // The actor exists: this caller's next call must not wait for this one.
    if (node == layout_.world_rank) {
      actor_host_.enqueue(
          spec.actor,
          {{spec.caller_rank, spec.caller_actor}, spec.call_seq, true, spec.actor_incarnation, {}});
    } else if (node >= 0) {
      TaskSpec skip;
      skip.id = id;
      skip.function = spec.method->key;
      skip.name = spec.name;
      skip.kind = TaskKind::kActorCall;
      skip.actor = spec.actor;
      skip.caller_rank = spec.caller_rank;
      skip.caller_actor = spec.caller_actor;
      skip.call_seq = spec.call_seq;
      skip.actor_incarnation = spec.actor_incarnation;
      skip.skip = true;
      Writer w(64);
      w.put(MessageKind::kSubmitTask);
      encode_task(skip, w);
      if (Status st = send(node, w); !st)
        PRISM_LOG_WARN("actor call skip to rank {}: {}", node, st.to_string());
    }
    return fail_unsent_locked(*task, task->arg_error);
  }
  // Reported once, when done, if it runs here (like a short local task).
  task->report_when_done = node == layout_.world_rank && static_cast<bool>(observer_.task_done);
  if (observer_.task_dispatched && !task->report_when_done) observer_.task_dispatched(spec, node);
  if (node == layout_.world_rank) {
    // The record stays in in_flight_ until the call ran (execute erases it),
    // so the mailbox holds a pointer to its spec, not a copy.
    actors::Call call{{spec.caller_rank, spec.caller_actor},
                      spec.call_seq,
                      false,
                      spec.actor_incarnation,
                      std::shared_ptr<void>(std::shared_ptr<void>(), &spec)};
    const ObjectId actor = spec.actor;
    in_flight_.emplace(id.seq, std::move(task));
    actor_host_.enqueue(actor, std::move(call));
    return;
  }
  spec.function = spec.method->key;  // the method's name on the wire
  Writer w(64);
  w.put(MessageKind::kSubmitTask);
  encode_task(spec, w);
  if (Status st = send(node, w); !st)
    return fail_unsent_locked(
        *task, "could not send the call to rank " + std::to_string(node) + ": " + st.to_string());
  in_flight_.emplace(id.seq, std::move(task));
}

void NodeRuntime::kill_actor(const detail::HandlePtr& actor, bool restart) {
  const ObjectId aid = to_id(actor->id());
  std::lock_guard lk(mu_);
  auto& e = *entry_locked(aid);
  e.actor = true;
  if (restart) {  // a crash: its owner restarts it if it may (actor_died_locked)
    if (e.ready.load() && actor_location(e.value))
      kill_created_actor_locked(aid, e, "was killed by prism::kill (as a crash)", true);
    return;  // not (yet, or any more) alive: nothing to crash
  }
  e.kill_requested = true;
  e.lineage.reset();  // a killed actor is not restarted
  if (e.ready.load())
    kill_created_actor_locked(aid, e, "was killed by prism::kill");
  else
    request_status_locked(aid, e);  // killed as soon as it exists (complete_locked)
}

// The actor of creation object `e` (ready) is ended wherever it lives.
void NodeRuntime::kill_created_actor_locked(const ObjectId& id, const ObjectEntry& e,
                                            const std::string& reason, bool crash) {
  const auto at = actor_location(e.value);
  if (!at) return;  // never lived
  if (!crash && static_cast<int>(id.owner_rank) == layout_.world_rank)
    ending_actors_.emplace(id, at->node);
  if (at->node == layout_.world_rank) {
    if (crash) crash_kills_.insert(id);
    actor_host_.kill(id, reason);
    return;
  }
  Writer w(64);
  encode_message(KillActorMsg{id, reason, crash}, w);
  if (Status st = send(at->node, w); !st)
    PRISM_LOG_WARN("actor kill to rank {}: {}", at->node, st.to_string());
}

detail::HandlePtr NodeRuntime::named_actor(const std::string& name, const char* class_key) {
  if (!actor_names_.find) throw Error("named actors need the GCS (this runtime has none)");
  auto found = actor_names_.find(name);
  if (!found)
    throw Error(found.status().code() == Errc::kNotFound
                    ? "no actor is named '" + name + "'"
                    : "looking up the actor named '" + name + "': " + found.status().message());
  if (found->second != class_key)
    throw Error("the actor named '" + name + "' is a " + detail::actor_class_name(found->second) +
                ", not a " + detail::actor_class_name(class_key));
  return borrow(found->first);
}

void NodeRuntime::on_kill_actor(int src, Reader& r) {
  KillActorMsg m;
  if (Status st = decode_message(r, m); !st)
    return PRISM_LOG_ERROR("dropped a message from rank {}: {}", src, st.to_string());
  if (m.crash) {
    std::lock_guard lk(mu_);
    crash_kills_.insert(m.actor);
  }
  actor_host_.kill(m.actor, m.reason);  // not here (any more): nothing to do
}

void NodeRuntime::on_actor_died(int src, Reader& r) {
  ActorDiedMsg m;
  if (Status st = decode_message(r, m); !st)
    return PRISM_LOG_ERROR("dropped a message from rank {}: {}", src, st.to_string());
  PRISM_LOG_DEBUG("actor {} on rank {}: {}", m.actor.to_string(), src, m.reason);
  std::lock_guard lk(mu_);
  actor_died_locked(m.actor, m.incarnation, m.reason, m.restartable);
}

// An actor's creation object became ready here: its owner records the actor
// alive on its node (or dead: the constructor failed); a kill that came
// before it existed is carried out now.
void NodeRuntime::actor_created_locked(const ObjectId& id, const ObjectEntry& e) {
  if (e.owned && observer_.actor_changed) {
    ActorEvent ev{id, {}, {}, -1, ActorEvent::State::kDead};
    if (const auto at = actor_location(e.value)) {
      ev.node = at->node;
      ev.state = ActorEvent::State::kAlive;
    }
    observer_.actor_changed(ev);
  }
  if (e.kill_requested) kill_created_actor_locked(id, e, "was killed by prism::kill");
}

// ------------------------------------------------------- the actor's side ---

// The creation task, on the chosen node: construct, keep the resources, join
// the host. Its result is this node's rank.
detail::InvokeResult NodeRuntime::construct_actor(TaskSpec& spec,
                                                  std::span<const detail::ArgValue> args) {
  const auto* ctor = detail::find_actor_ctor(spec.function);
  if (!ctor)
    throw RegistrationError("actor constructor " + spec.name + " is not registered on rank " +
                            std::to_string(layout_.world_rank) +
                            " (every rank must run the same binary)");
  auto la = std::make_shared<LocalActor>();
  la->id = spec.id;
  la->class_name = detail::actor_class_name(ctor->class_key);
  la->name = spec.actor_name;
  la->track = spec.actor_name.empty() ? "actor " + actor_label(la->class_name, spec.id)
                                      : "actor '" + spec.actor_name + "' (" + la->class_name + ")";
  la->destroy = ctor->destroy;
  la->held = spec.held;
  la->incarnation = spec.attempt;  // a restart is the creation task's next run
  la->save = ctor->save;
  la->checkpoint_interval = ctor->save ? spec.checkpoint_interval : 0;
  if (spec.group.is_nil()) {
    la->instance = ctor->create(args);  // a throwing constructor fails the creation
    if (!spec.checkpoint.empty() && ctor->load) {
      try {  // a restart continues from its last checkpoint
        actors::load_checkpoint(spec.checkpoint, ctor->load, la->instance);
      } catch (...) {
        ctor->destroy(la->instance);
        throw;
      }
      PRISM_LOG_INFO("{} restarted from its checkpoint ({} bytes)", la->track,
                     spec.checkpoint.size());
    }
    la->grant = pool_.keep_after_job(spec.held);  // held until the actor dies
  } else {
    // An actor group's member: it lives on the resources reserved for it,
    // and joins its group here before its constructor runs (which may ask
    // prism::collective::rank()).
    auto reserved = take_reservation(spec.group, spec.group_index);
    if (!reserved)
      throw Error("no resources were reserved for member " + std::to_string(spec.group_index) +
                  " of " + spec.group_label + " on rank " + std::to_string(layout_.world_rank));
    la->held = reserved->demand;
    la->grant = reserved->grant;
    la->group = groups_->join(spec.group, spec.group_label,
                              std::vector<int>(spec.group_nodes.begin(), spec.group_nodes.end()));
    la->group_index = spec.group_index;
    try {
      MemberScope member(la->group.get(), la->group_index);
      worker::WorkerPool::GpuScope gpus(la->grant.gpu_ids);
      la->instance = ctor->create(args);
    } catch (const std::exception& e) {
      pool_.release_kept(la->held, la->grant);
      break_group_everywhere(*la->group, "member " + std::to_string(la->group_index) + " (" +
                                             la->class_name + "()) failed: " + e.what());
      throw;
    }
  }
  // Its methods run on the CPUs it holds. One that holds none takes a CPU
  // slot per running method, like a task, unless it is threaded
  // (max_concurrency > 1): its threads are its own, as a process's would be.
  la->runner.num_cpus = spec.held.num_cpus > 0 || spec.max_concurrency > 1 ? 0 : 1;
  const std::string name = la->class_name;
  if (!actor_host_.add(spec.id, {name, static_cast<int>(spec.max_concurrency), spec.attempt, la}))
    throw Error("actor " + actor_label(name, spec.id) + " exists already");
  {
    std::lock_guard lk(mu_);
    ++stats_.actors_hosted;
    ++stats_.actors_alive;
  }
  // Its owner was lost while it was being made (end_what_lost_rank_owned
  // ran before it was here): it ends at once.
  if (const int owner = static_cast<int>(spec.id.owner_rank); is_lost(owner))
    actor_host_.kill(spec.id, "was ended: its owner " + lost_reason(owner));
  return {encode_actor_location({layout_.world_rank, spec.attempt, spec.max_task_retries}), {}};
}

void NodeRuntime::start_actor_runner(const std::shared_ptr<void>& context) {
  auto* la = static_cast<LocalActor*>(context.get());
  pool_.submit(
      [this, la] {
        RunnerClock clock;
        tls_runner_clock = &clock;
        actor_host_.run(la->id);  // (does not throw)
        tls_runner_clock = nullptr;
      },
      la->runner, /*short_job=*/false, context);
}

void NodeRuntime::execute_actor_call(const std::shared_ptr<void>& context, actors::Call& call) {
  auto* la = static_cast<LocalActor*>(context.get());
  struct CurrentActor {  // calls made from the method are the actor's own
    ObjectId saved = tls_current_actor;
    explicit CurrentActor(const ObjectId& id) { tls_current_actor = id; }
    ~CurrentActor() { tls_current_actor = saved; }
  } current(la->id);
  worker::WorkerPool::GpuScope gpus(la->grant.gpu_ids);
  MemberScope member(la->group.get(), la->group_index);
  execute(*static_cast<TaskSpec*>(call.payload.get()), la);
}

// A call that will never run (its actor is dead or not here): its result is
// the reason, and the refs its submitter pinned for it are let go.
void NodeRuntime::reject_actor_call(actors::Call& call, const std::string& why) {
  TaskSpec& spec = *static_cast<TaskSpec*>(call.payload.get());
  const ObjectId id = spec.id;
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = why;
  v.actor_gone = true;  // its caller may send it again to a restarted instance
  const uint32_t attempt = spec.attempt;
  std::lock_guard lk(mu_);
  std::vector<std::pair<ObjectId, int>> none;
  release_unborrowed_locked(spec, none);  // before the record holding `spec` may go
  deliver_result_locked(id, std::move(v), {}, attempt);
}

// Nothing runs on the actor any more: its destructor runs (a job of its
// own, never on the polling thread), then what it held is released and its
// owner hears of it.
void NodeRuntime::destroy_actor(const actors::ActorId& id, const std::shared_ptr<void>& context) {
  auto la = std::static_pointer_cast<LocalActor>(context);
  std::string reason = actor_host_.death(id).value_or("ended");
  bool crashed = false;
  {
    std::lock_guard lk(mu_);
    crashed = crash_kills_.erase(id) > 0;
  }
  if (la->group)  // its group's collectives cannot complete without it
    break_group_everywhere(*la->group, "member " + std::to_string(la->group_index) + " (" +
                                           la->class_name + ") ended: " + reason);
  // The destructor runs as a method would (la->runner): on a CPU slot of its
  // own for an actor that holds none — with no CPU asked, each of a burst of
  // deaths would start a thread while the slots are busy — and on what the
  // actor holds otherwise, which is released only after it has run.
  pool_.submit(
      [this, la, crashed, reason = std::move(reason)] {
        Scope scope(this);
        try {
          la->destroy(la->instance);
        } catch (const std::exception& e) {
          PRISM_LOG_WARN("the destructor of {} threw: {}", la->track, e.what());
        }
        la->instance = nullptr;
        pool_.release_kept(la->held, la->grant);
        std::lock_guard lk(mu_);
        --stats_.actors_alive;
        if (static_cast<int>(la->id.owner_rank) == layout_.world_rank) {
          actor_died_locked(la->id, la->incarnation, reason, crashed);
          return;
        }
        if (is_lost(static_cast<int>(la->id.owner_rank))) {
          // Its owner would record the death in the GCS (and free its name):
          // it is gone, so this rank does.
          if (observer_.actor_changed)
            observer_.actor_changed({la->id, la->class_name, la->name, layout_.world_rank,
                                     ActorEvent::State::kDead,
                                     static_cast<int32_t>(la->incarnation)});
          return;
        }
        Writer w(64);
        encode_message(ActorDiedMsg{la->id, reason, la->incarnation, crashed}, w);
        if (Status st = send(static_cast<int>(la->id.owner_rank), w); !st)
          PRISM_LOG_WARN("actor died message to rank {}: {}", la->id.owner_rank, st.to_string());
      },
      la->runner);
}

void NodeRuntime::heard_actor_end_locked(const ObjectId& id) {
  if (ending_actors_.erase(id) > 0 && ending_actors_.empty()) engine_.notify_all();
}

// The driver's end: the actors it killed or let go of a moment ago may still
// be running their destructors on other nodes, and their rows would stay
// alive in the GCS (and in its snapshot) if the job ended first.
void NodeRuntime::wait_for_ended_actors(int64_t timeout_us) {
  if (!wait_at_shutdown([this] { return ending_actors_.empty(); }, timeout_us))
    PRISM_LOG_WARN("rank {}: ended actors not reported dead after {} ms", layout_.world_rank,
                   timeout_us / 1000);
}

void NodeRuntime::kill_local_actors(const std::string& reason) {
  actor_host_.kill_all(reason);
  // Their destructors are jobs: give them a bounded while before the pool stops.
  if (!wait_at_shutdown([this] { return stats_.actors_alive == 0; }, 5'000'000))
    PRISM_LOG_WARN("rank {}: actor destructors still running at shutdown", layout_.world_rank);
}

bool NodeRuntime::wait_at_shutdown(const std::function<bool()>& done_locked, int64_t timeout_us) {
  bool timed_out = false;
  wait_for(
      [&] {
        std::lock_guard lk(mu_);
        return done_locked();
      },
      timeout_us, &timed_out, /*lend_slot=*/false);
  return !timed_out;
}

// A method of an actor waits for a call it made to its own actor: the call
// (and the self-calls before it) run here, or a one-method-at-a-time actor
// would wait for itself forever. True if `awaited` is such a call.
bool NodeRuntime::help_own_actor(const ObjectId& awaited, const std::function<bool()>& done) {
  if (tls_current_actor.is_nil() || awaited.owner_rank != static_cast<uint32_t>(layout_.world_rank))
    return false;
  {
    std::lock_guard lk(mu_);
    // Sent to the mailbox, or still waiting for its arguments or for this
    // process to learn where the actor lives.
    auto is_own_call = [&](const PendingMap& m) {
      auto it = m.find(awaited.seq);
      return it != m.end() && it->second->spec.kind == TaskKind::kActorCall &&
             it->second->spec.actor == tls_current_actor;
    };
    if (!is_own_call(in_flight_) && !is_own_call(waiting_)) return false;
  }
  const actors::CallerId self{layout_.world_rank, tls_current_actor};
  while (!done()) {
    if (actor_host_.run_from(tls_current_actor, self)) continue;
    bool timed_out = false;  // the call may still wait for its arguments: look again soon
    wait_for(done, 200, &timed_out);
  }
  return true;
}

}  // namespace prism::runtime
