// NodeRuntime, part: actor restarts (docs/fault-tolerance.md, "Actor
// restarts"). An actor instance dies with its node rank or in a crash
// (prism::kill with .no_restart = false). Its owner (the creator) then runs
// the creation task again while the actor has restarts left: the new
// instance is the creation task's next run (its incarnation), and it loads
// the last checkpoint its predecessor sent the owner. Every caller that
// learns of the death (a rejected call, the lost rank, the owner's answer)
// sends its unanswered calls again, in their order, to the new instance
// while they have retries left (max_task_retries), and numbers its calls
// from 1 for it. A call the dead instance ran is answered by it and never
// runs twice.
#include <algorithm>
#include <tuple>

#include "actor/checkpoint_image.hpp"
#include "common/log.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

using namespace internal;

// This rank learns that instance `incarnation` of actor `id` is gone.
// Idempotent: later news of the same death changes nothing.
void NodeRuntime::actor_gone_locked(const ObjectId& id, uint32_t incarnation,
                                    const std::string& why, int lost_rank) {
  auto& e = *entry_locked(id);
  e.actor = true;
  if (e.actor_min_incarnation > incarnation) return;
  e.actor_min_incarnation = incarnation + 1;
  if (!e.owned && e.ready.load()) {  // ask the owner where it lives now (it answers when it knows)
    e.ready.store(false, std::memory_order_release);
    e.status_requested = false;
  }
  // Calls sent from here to the lost rank get no answer: those with
  // retries go again once the new instance is known, the others fail now.
  // (A dead instance on a live rank answers each call it did not run with
  // a rejection, and each it ran with its result: exactly once.)
  if (lost_rank >= 0) {
    std::vector<uint64_t> sent;
    for (const auto& [seq, t] : in_flight_)
      if (t->spec.kind == TaskKind::kActorCall && t->spec.actor == id && t->node == lost_rank)
        sent.push_back(seq);
    std::sort(sent.begin(), sent.end());  // submission order
    for (uint64_t seq : sent)
      if (auto it = in_flight_.find(seq);
          it != in_flight_.end() && !resend_actor_call_locked(it, /*unpin=*/true))
        fail_actor_call_locked(*it->second, why, /*unpin=*/true);
  }
  // Calls still waiting for their arguments were numbered for the dead
  // instance: they wait for the new one too.
  for (auto& [seq, t] : waiting_)
    if (t->spec.kind == TaskKind::kActorCall && t->spec.actor == id && !t->actor_dep_pending) {
      e.dependents.emplace_back(seq, kActorDep);
      ++t->unresolved;
      t->actor_dep_pending = true;
    }
  request_status_locked(id, e);
}

// A call answered "the instance is gone" (the ActorHost's rejection). True
// if it goes again; false: it fails with that answer.
bool NodeRuntime::retry_actor_call_locked(PendingMap::iterator it, const ObjectValue& v) {
  if (v.kind != ObjectValue::Kind::kError || !v.actor_gone) return false;
  const ObjectId id = it->second->spec.id;
  const ObjectId actor = it->second->spec.actor;
  actor_gone_locked(actor, it->second->spec.actor_incarnation, v.error, -1);
  it = in_flight_.find(id.seq);
  if (it == in_flight_.end() || it->second->spec.id != id) return true;  // sent again above
  return resend_actor_call_locked(it, /*unpin=*/false);  // the host released its pins
}

// `it`: a call sent to an instance that is gone. While it has retries it
// goes again once the actor's new instance is known (true); `unpin`: its
// last trip's pins were never released (the executor was lost).
bool NodeRuntime::resend_actor_call_locked(PendingMap::iterator it, bool unpin) {
  PendingTask& t = *it->second;
  if (t.retries_left == 0) return false;
  if (t.retries_left != kRetryAlways) --t.retries_left;
  ++t.spec.attempt;  // a late answer of the run sent to the dead instance is dropped
  auto task = std::move(it->second);
  in_flight_.erase(it);
  if (unpin) unpin_task_refs_locked(*task);
  ++stats_.actor_calls_retried;
  PRISM_LOG_INFO("actor call '{}' ({}) goes again to its actor's next instance (run {})",
                 task->spec.name, task->spec.id.to_string(), task->spec.attempt + 1);
  task->node = -1;
  task->actor_dep_pending = false;
  add_actor_dep_locked(*task, task->spec.actor);
  redispatch_locked(std::move(task));  // pins its refs for the new trip
  return true;
}

void NodeRuntime::fail_actor_call_locked(PendingTask& task, const std::string& why, bool unpin) {
  if (unpin) unpin_task_refs_locked(task);
  const ObjectId id = task.spec.id;
  const int node = task.node;
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = "actor call '" + task.spec.name + "': " + why +
            " before it answered, and the call has no retries left (max_task_retries)";
  retire_task_locked(id, true, node);  // `task` is gone after this
  complete_locked(id, std::move(v));
}

// The owner runs the creation task again: the next instance, from the last
// checkpoint if there is one.
void NodeRuntime::restart_actor_locked(const ObjectId& id, ObjectEntry& e, const std::string& why) {
  const uint32_t restarts = e.lineage->spec.attempt + 1;
  PRISM_LOG_WARN(
      "actor {} ({}) is gone ({}): restarting it (restart {}{})", id.to_string(),
      e.lineage->spec.name, why, restarts,
      e.lineage->spec.checkpoint.empty() ? ", from its constructor" : ", from its last checkpoint");
  e.ready.store(false, std::memory_order_release);
  if (observer_.actor_changed)
    observer_.actor_changed(
        {id, {}, {}, -1, ActorEvent::State::kRestarting, static_cast<int32_t>(restarts)});
  ++stats_.actors_restarted;
  rebuild_locked(id, e);
}

// The owner records the actor dead for good: askers and waiting calls get
// `why`.
void NodeRuntime::end_actor_locked(const ObjectId& id, ObjectEntry& e, const std::string& why) {
  e.lineage.reset();
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = why;
  v.actor_gone = true;
  e.ready.store(false, std::memory_order_release);
  complete_locked(id, std::move(v));  // its GCS row says dead (actor_created_locked)
}

// An actor that lived on the lost rank `rank`.
void NodeRuntime::actor_lost_locked(const ObjectId& id, ObjectEntry& e, const std::string& lost,
                                    int rank) {
  const auto at = actor_location(e.value);
  actor_gone_locked(id, at ? at->incarnation : 0, "the actor " + lost, rank);
  if (!e.owned) return;
  if (e.lineage && e.lineage->rebuilds_left > 0) return restart_actor_locked(id, e, lost);
  end_actor_locked(
      id, e, "the actor " + lost + (e.lineage ? " and has no restarts left (max_restarts)" : ""));
}

// The owner hears from the actor's node that instance `incarnation` ended:
// killed (for good), crashed (restartable), or at shutdown.
void NodeRuntime::actor_died_locked(const ObjectId& id, uint32_t incarnation,
                                    const std::string& why, bool restartable) {
  heard_actor_end_locked(id);
  auto* found = objects_.find(id);
  if (!found || !*found || !(*found)->owned) {  // every handle is gone: nothing to restart
    if (observer_.actor_changed)
      observer_.actor_changed({id, {}, {}, -1, ActorEvent::State::kDead});
    return;
  }
  auto& e = **found;
  const auto at = actor_location(e.value);
  if (!e.ready.load() || !at || at->incarnation != incarnation) return;  // known already
  actor_gone_locked(id, incarnation, why, -1);                           // this rank's own calls
  const bool may_restart = restartable && !e.kill_requested && e.lineage;
  if (may_restart && e.lineage->rebuilds_left > 0) return restart_actor_locked(id, e, why);
  end_actor_locked(id, e,
                   why + (may_restart ? ", and it has no restarts left (max_restarts)" : ""));
}

// Calls waiting for their actor's location are renumbered (resolve_actor_dep)
// in the order they were made when they go to a new instance.
void NodeRuntime::order_actor_calls_locked(std::vector<std::pair<uint64_t, size_t>>& deps) {
  using Key = std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>;  // caller actor, seq
  std::vector<std::pair<Key, std::pair<uint64_t, size_t>>> keyed;
  keyed.reserve(deps.size());
  for (const auto& d : deps) {
    Key k{};
    if (auto it = waiting_.find(d.first); d.second == kActorDep && it != waiting_.end()) {
      const TaskSpec& s = it->second->spec;
      k = {s.caller_actor.owner_rank, s.caller_actor.index, s.caller_actor.seq, s.call_seq};
    }
    keyed.emplace_back(k, d);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < deps.size(); ++i) deps[i] = keyed[i].second;
}

// ------------------------------------------------------------ checkpoints ---

// After every checkpoint_interval-th call, on the runner that ran it: the
// state goes to the owner, which keeps the newest for a restart.
void NodeRuntime::save_checkpoint(LocalActor& la) {
  std::vector<std::byte> image;
  try {
    image = actors::save_checkpoint(la.save, la.instance);
  } catch (const std::exception& ex) {
    PRISM_LOG_WARN("{}: saving a checkpoint failed: {} (a restart uses the previous one)", la.track,
                   ex.what());
    return;
  }
  const uint64_t calls = la.calls_done.load(std::memory_order_relaxed);
  Writer w(image.size() + 64);
  encode_message(ActorCheckpointMsg{la.id, la.incarnation, calls, image}, w);
  std::lock_guard lk(mu_);
  ++stats_.checkpoints_saved;
  const int owner = static_cast<int>(la.id.owner_rank);
  if (owner != layout_.world_rank) {
    if (Status st = send(owner, w); !st)
      PRISM_LOG_WARN("{}: checkpoint to rank {}: {}", la.track, owner, st.to_string());
    return;
  }
  Reader r(std::span<const std::byte>(w.buffer()).subspan(1));
  on_actor_checkpoint(layout_.world_rank, r);
}

void NodeRuntime::on_actor_checkpoint(int src, Reader& r) {
  ActorCheckpointMsg m;
  if (Status st = decode_message(r, m); !st)
    return PRISM_LOG_ERROR("dropped a message from rank {}: {}", src, st.to_string());
  const auto& [id, incarnation, calls, image] = m;
  std::lock_guard lk(mu_);
  auto* found = objects_.find(id);
  if (!found || !*found || !(*found)->owned || !(*found)->lineage) return;  // no restart to come
  Lineage& l = *(*found)->lineage;
  if (!l.spec.checkpoint.empty() &&
      std::pair{incarnation, calls} <= std::pair{l.checkpoint_incarnation, l.checkpoint_calls})
    return;  // an older one overtaken by a newer
  l.spec.checkpoint.assign(image.begin(), image.end());
  l.checkpoint_incarnation = incarnation;
  l.checkpoint_calls = calls;
}

}  // namespace prism::runtime
