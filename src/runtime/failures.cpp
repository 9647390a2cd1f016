// NodeRuntime, part: failures (docs/fault-tolerance.md). A task's owner runs
// it again when a run is lost with the node rank running it, or when it
// threw and the task retries exceptions, while it has retries left
// (TaskOptions::max_retries, retry_exceptions). Each run carries its number
// (TaskSpec::attempt) and the owner takes only the last run's result, so a
// retried task's result is delivered once.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/log.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

using namespace internal;

bool NodeRuntime::retry_locked(const ObjectId& id, const ObjectValue& v, const std::string& lost) {
  auto it = in_flight_.find(id.seq);
  if (it == in_flight_.end() || it->second->spec.id != id) return false;
  PendingTask& t = *it->second;
  // An actor's calls go again to its next instance (actor_restarts.cpp);
  // a group's members live and die with their group.
  if (t.spec.kind == TaskKind::kActorCall && lost.empty()) return retry_actor_call_locked(it, v);
  // An actor's creation (or restart) lost with its node rank runs again
  // elsewhere while the actor has restarts left.
  const bool creation = t.spec.kind == TaskKind::kActorCreation && !lost.empty();
  if ((t.spec.kind != TaskKind::kFunction && !creation) || !t.spec.group.is_nil()) return false;
  const bool threw = v.kind == ObjectValue::Kind::kError && v.task_exception;
  const bool lost_input = v.kind == ObjectValue::Kind::kError && v.lost_input;
  if (lost.empty() && !lost_input && !(threw && t.retry_exceptions)) return false;
  if (t.retries_left == 0) return false;
  if (t.retries_left != kRetryAlways) --t.retries_left;
  // An exception retried as asked is routine (debug); a lost run is news.
  if (threw && lost.empty() && !lost_input)
    PRISM_LOG_DEBUG("task '{}' ({}) run {} failed: {}; running it again ({} retries left)",
                    t.spec.name, id.to_string(), t.spec.attempt + 1, v.error, t.retries_left);
  else
    PRISM_LOG_WARN("task '{}' ({}) run {} {}; running it again ({} retries left)", t.spec.name,
                   id.to_string(), t.spec.attempt + 1, lost.empty() ? "failed: " + v.error : lost,
                   t.retries_left);
  ++t.spec.attempt;
  if (creation)  // each run is a new instance: a later restart must not reuse its number
    if (auto* found = objects_.find(id); found && *found && (*found)->lineage)
      (*found)->lineage->spec.attempt = t.spec.attempt;
  auto task = std::move(it->second);
  in_flight_.erase(it);
  if (task->node >= 0) scheduler_.on_complete(task->node);
  if (lost_input)  // a borrowed argument whose copy is gone: ask its owner again
    for (const auto& w : task->spec.args) {
      if (w.kind != WireArg::Kind::kRemoteValue && w.kind != WireArg::Kind::kPendingRef) continue;
      auto* arg = objects_.find(w.ref);
      if (!arg || !*arg || (*arg)->owned || !(*arg)->ready.load() ||
          (*arg)->value.kind != ObjectValue::Kind::kRemote)
        continue;
      (*arg)->ready.store(false, std::memory_order_release);
      (*arg)->fetched.reset();
      (*arg)->status_requested = false;
    }
  if (!lost.empty() || lost_input) {
    unpin_task_refs_locked(*task);  // the lost run never released its pins
    // Nodes it was to forward its result to (tasks sent ahead) hear it from
    // here now.
    for (int dst : task->forwards) subscribe_locked(id, dst);
    task->forwards.clear();
  }
  redispatch_locked(std::move(task));
  return true;
}

// Sends a task that ran before again: its refs are pinned for the new trip
// (the last run's executor released them), arguments that were still on
// their way when it was first sent (sent ahead) are filled in from here, or
// it waits for them again.
void NodeRuntime::redispatch_locked(PendingPtr task) {
  if (task->spec.kind != TaskKind::kActorCall) task->node = -1;  // a call's: where its actor is
  task->queued = {};
  task->report_when_done = false;
  const uint64_t seq = task->spec.id.seq;
  for (size_t i = 0; i < task->spec.args.size(); ++i) {
    auto& w = task->spec.args[i];
    if (w.kind == WireArg::Kind::kRef) pin_for_trip_locked(w.ref);
    for (const auto& rid : w.contained) pin_for_trip_locked(rid);
    // The copy a remote argument named may be gone (its holder lost): it is
    // looked up again below, and waited for while it is being made again.
    if (w.kind == WireArg::Kind::kRemoteValue) w.kind = WireArg::Kind::kPendingRef;
    if (w.kind != WireArg::Kind::kPendingRef) continue;
    auto dep = entry_locked(w.ref);
    if (dep->ready.load() && !on_lost_rank(dep->value)) {
      resolve_arg_locked(*task, i, w.ref, *dep);
    } else {
      dep->dependents.emplace_back(seq, i);
      ++task->unresolved;
      request_status_locked(w.ref, *dep);
    }
  }
  if (task->unresolved == 0)
    dispatch_locked(std::move(task));
  else
    waiting_.emplace(seq, std::move(task));
}

// --------------------------------------------------------------- lineage ---

// Plain tasks only: an actor's results depend on its state, a group's on
// its members.
std::shared_ptr<NodeRuntime::Lineage> NodeRuntime::lineage_of_locked(const PendingTask& t) const {
  if (!config_.reconstruct || t.spec.kind != TaskKind::kFunction || !t.spec.group.is_nil())
    return nullptr;
  return make_lineage(t);
}

std::shared_ptr<NodeRuntime::Lineage> NodeRuntime::make_lineage(const PendingTask& t) {
  auto l = std::make_shared<Lineage>();
  l->spec = t.spec;
  l->request = t.request;
  l->arg_refs = t.arg_refs;
  l->max_retries = t.max_retries;
  l->rebuilds_left = t.max_retries;
  l->retry_exceptions = t.retry_exceptions;
  return l;
}

// An actor with restarts keeps its creation task (the first time it is
// created; a restart's run leaves the lineage as it is).
void NodeRuntime::keep_actor_lineage_locked(const PendingTask& t) {
  if (t.max_retries == 0 || !t.spec.group.is_nil()) return;
  auto* found = objects_.find(t.spec.id);
  if (!found || !(*found)->owned || (*found)->lineage) return;
  (*found)->lineage = make_lineage(t);
}

// Runs the task that made `id` again; its result completes the (reset)
// entry as the first run's did. Arguments that are themselves being made
// again are waited for.
bool NodeRuntime::rebuild_locked(const ObjectId& id, ObjectEntry& e) {
  if (!e.lineage || e.lineage->rebuilds_left == 0) return false;
  Lineage& l = *e.lineage;
  --l.rebuilds_left;
  auto task = make_pooled<PendingTask>();
  task->spec = l.spec;
  task->spec.attempt = ++l.spec.attempt;  // a late result of an earlier run is dropped
  task->request = l.request;
  // A result pinned to a node rank that is gone is made wherever it fits.
  if (is_lost(task->request.node)) task->request.node = -1;
  if (is_lost(task->request.data_node)) task->request.data_node = -1;
  task->arg_refs = l.arg_refs;
  task->retries_left = l.max_retries;
  task->max_retries = l.max_retries;
  task->retry_exceptions = l.retry_exceptions;
  PRISM_LOG_INFO("rebuilding {} ({}) from its lineage, run {}", id.to_string(), l.spec.name,
                 task->spec.attempt + 1);
  ++stats_.tasks_rebuilt;
  redispatch_locked(std::move(task));
  return true;
}

}  // namespace prism::runtime

namespace prism::runtime {

using namespace internal;

// ------------------------------------------------------ lost node ranks ---

// The driver's rank and every other node rank send each other a heartbeat
// every tenth of --prism-node-timeout-ms; the driver's rank declares a
// silent node rank lost and tells the others, and a node rank that loses
// the driver ends itself (the job is over without it).
void NodeRuntime::start_heartbeats() {
  if (config_.node_timeout_ms <= 0 || layout_.world_size < 2) return;
  membership::Heartbeats::Options o;
  o.timeout_us = int64_t{config_.node_timeout_ms} * 1000;
  o.interval_us = std::max<int64_t>(o.timeout_us / 10, 1000);
  if (layout_.is_driver()) {
    for (int r = 1; r < layout_.num_nodes; ++r) {
      o.send_to.push_back(r);
      o.watch.push_back(r);
    }
  } else {
    o.send_to.push_back(0);
    o.watch.push_back(0);
  }
  heartbeats_ = std::make_unique<membership::Heartbeats>(
      std::move(o),
      [this](int r) {
        Writer w(8);
        w.put(MessageKind::kAlive);
        (void)send(r, w);  // a lost peer's heartbeat fails: nothing to do
      },
      [this](int r) {
        const std::string why = "silent for " + std::to_string(config_.node_timeout_ms) +
                                " ms (--prism-node-timeout-ms)";
        if (r != 0) return node_lost(r, why);
        std::fprintf(stderr,
                     "prism: rank %d: the driver's rank 0 was %s: the job cannot go on; "
                     "ending this rank\n",
                     layout_.world_rank, why.c_str());
        // The GCS ranks would wait for a shutdown that no driver sends.
        Writer w(16);
        w.put(MessageKind::kShutdown);
        w.put<int32_t>(1);
        for (int g : layout_.gcs_ranks) (void)send(g, w);
        std::fflush(nullptr);
        std::_Exit(1);
      });
  heartbeats_->start();
}

std::vector<int> NodeRuntime::lost_ranks() const {
  std::vector<int> out;
  for (size_t r = 0; r < lost_.size(); ++r)
    if (lost_[r].load()) out.push_back(static_cast<int>(r));
  return out;
}

void NodeRuntime::node_lost(int rank, const std::string& why) {
  if (rank < 0 || rank >= layout_.num_nodes || rank == 0) return;
  if (rank == layout_.world_rank) {
    // The driver gave this rank up (it was silent too long, say stalled on
    // a busy host): its tasks already run elsewhere, so it must not go on.
    std::fprintf(stderr, "prism: rank %d was declared lost by the driver (%s); ending it\n", rank,
                 why.c_str());
    std::fflush(nullptr);
    std::_Exit(1);
  }
  if (lost_[static_cast<size_t>(rank)].exchange(true)) return;
  lost_any_.store(true);
  std::fprintf(stderr, "prism: node rank %d was lost (%s)\n", rank, why.c_str());
  {
    std::lock_guard lk(mu_);
    node_lost_locked(rank, why);
  }
  // Groups with members there break (outside mu_, as every other break:
  // a group's lock is never taken under the runtime's).
  if (groups_)
    groups_->node_lost(rank, "node rank " + std::to_string(rank) + " was lost (" + why +
                                 "), and its members with it");
  end_what_lost_rank_owned(rank, why);
  // Everyone else hears it from the driver's rank, after its own objects
  // are being made again: a borrower that asks about one then waits for it.
  if (layout_.is_driver()) {
    Writer w(64);
    w.put(MessageKind::kNodeLost);
    w.put<int32_t>(rank);
    w.put_string(why);
    for (int r = 1; r < layout_.world_size; ++r)
      if (r != rank && !lost_[static_cast<size_t>(r)].load()) (void)send(r, w);
    if (observer_.node_lost) observer_.node_lost(rank);  // the GCS writes its death
  }
}

void NodeRuntime::node_lost_locked(int rank, const std::string& why) {
  lost_why_[rank] = why;
  const std::string lost = lost_reason(rank);
  scheduler_.mark_lost(rank);
  reserve_rounds_lost_locked(rank);  // a group being placed hears: no room there
  // 1. Tasks sent there, or to the global scheduler (which may have placed
  //    them there: its choice is known only from the result), run again
  //    while they have retries; calls to actors there fail.
  std::vector<uint64_t> seqs;
  for (const auto& [seq, t] : in_flight_)
    if (t->node == rank || t->node == scheduler::Scheduler::kGlobal) seqs.push_back(seq);
  std::vector<std::string> failed;
  for (uint64_t seq : seqs) {
    auto it = in_flight_.find(seq);
    if (it == in_flight_.end()) continue;
    const ObjectId id = it->second->spec.id;
    const std::string name = it->second->spec.name;
    const bool placed_there = it->second->node == rank;
    if (placed_there && it->second->spec.kind == TaskKind::kActorCall) {
      // Its actor lived there: its calls go again or fail (actor_gone_locked).
      actor_gone_locked(it->second->spec.actor, it->second->spec.actor_incarnation,
                        "the actor " + lost, rank);
      // (Still here if this rank knew of the death before: it goes now.)
      if (auto again = in_flight_.find(seq); again != in_flight_.end() &&
                                             again->second->spec.id == id &&
                                             !resend_actor_call_locked(again, /*unpin=*/true))
        fail_actor_call_locked(*again->second, "the actor " + lost, /*unpin=*/true);
      continue;
    }
    if (retry_locked(id, {}, lost)) continue;
    if (!placed_there && it->second->spec.kind == TaskKind::kFunction &&
        it->second->spec.group.is_nil())
      continue;  // the global scheduler's, no retries left: it may well run elsewhere
    ObjectValue v;
    v.kind = ObjectValue::Kind::kError;
    v.error = "task '" + name + "' " + lost +
              (it->second->spec.kind == TaskKind::kFunction && it->second->spec.group.is_nil()
                   ? ", and it has no retries left (max_retries)"
                   : "");
    unpin_task_refs_locked(*it->second);
    retire_task_locked(id, true, rank);
    complete_locked(id, std::move(v));
    failed.push_back(name);
  }
  if (!failed.empty()) {
    std::string names;
    for (size_t i = 0; i < failed.size() && i < 8; ++i) names += (i ? ", " : "") + failed[i];
    std::fprintf(stderr, "prism: %zu task(s) running on node rank %d failed with it: %s%s\n",
                 failed.size(), rank, names.c_str(), failed.size() > 8 ? ", ..." : "");
  }
  // 2. Pulls from there fail now (their readers look again, below).
  for (auto& [req, slot] : fetches_)
    if (slot->holder == rank && !slot->done.load()) {
      slot->ok = false;
      slot->error = "the holder " + lost;
      slot->done.store(true, std::memory_order_release);
    }
  // 3. Objects whose copy was there: an owner makes its own again from their
  //    lineage (or fails them: made by put, or no lineage kept); a borrower
  //    asks the owner again. Objects whose owner was there fail (their
  //    holders drop them: end_what_lost_rank_owned), and actors that lived
  //    there die.
  std::vector<std::pair<ObjectId, std::string>> to_fail;
  std::vector<ObjectId> to_rebuild, to_ask, dead_actors;
  objects_.for_each([&](const ObjectId& id, const EntryPtr& e) {
    if (!e) return;
    if (!e->ready.load()) {
      if (!e->owned && static_cast<int>(id.owner_rank) == rank)
        to_fail.emplace_back(id, "object " + id.to_string() + ": its owner " + lost);
      return;
    }
    if (e->actor) {
      if (const auto at = actor_location(e->value); at && at->node == rank)
        dead_actors.push_back(id);
      return;
    }
    if (!e->owned && static_cast<int>(id.owner_rank) == rank &&
        e->value.kind == ObjectValue::Kind::kRemote) {
      e->ready.store(false, std::memory_order_release);  // (it fails below)
      e->fetched.reset();
      to_fail.emplace_back(id, "object " + id.to_string() + ": its owner " + lost);
      return;
    }
    if (e->value.kind != ObjectValue::Kind::kRemote ||
        static_cast<int>(e->value.location.holder) != rank)
      return;
    // Readers that hold a view keep their copy (`fetched`); everyone else
    // waits for the object again.
    // (The value keeps its kind: a reader without the lock may look at it.)
    e->ready.store(false, std::memory_order_release);
    e->fetched.reset();
    if (!e->owned && static_cast<int>(id.owner_rank) != rank) {
      to_ask.push_back(id);
    } else if (e->owned && e->lineage && e->lineage->rebuilds_left > 0) {
      to_rebuild.push_back(id);
    } else {
      to_fail.emplace_back(
          id, "object " + id.to_string() + " " + lost + ", which held its only copy" +
                  (!e->owned             ? ", and so was its owner"
                   : e->lineage          ? ": it was made again too many times (max_retries)"
                   : config_.reconstruct ? " (made by put or by an actor, it cannot be made again)"
                                         : " (--prism-reconstruct=false keeps no lineage)"));
    }
  });
  // Every lost object is reset before any is made again, so a task that
  // needs another lost object waits for it instead of using its old copy.
  for (const auto& id : to_rebuild) rebuild_locked(id, *entry_locked(id));
  for (auto& [id, reason] : to_fail) {
    ObjectValue v;
    v.kind = ObjectValue::Kind::kError;
    v.error = std::move(reason);
    complete_locked(id, std::move(v));
  }
  for (const auto& id : to_ask) {
    auto& e = *entry_locked(id);
    e.status_requested = false;
    request_status_locked(id, e);
  }
  for (const auto& id : dead_actors) actor_lost_locked(id, *entry_locked(id), lost, rank);
  std::erase_if(ending_actors_, [rank](const auto& a) { return a.second == rank; });  // no report
  if (!to_rebuild.empty())
    PRISM_LOG_WARN("rank {}: making {} object(s) lost with node rank {} again from their lineage",
                   layout_.world_rank, to_rebuild.size(), rank);
  engine_.notify_all();
}

// "was lost with node rank K (why)".
std::string NodeRuntime::lost_reason(int rank) const {
  std::lock_guard lk(mu_);
  const auto it = lost_why_.find(rank);
  return "was lost with node rank " + std::to_string(rank) +
         (it != lost_why_.end() ? " (" + it->second + ")" : "");
}

// Fate sharing, as in Ray: what a lost rank owned cannot outlive it. Its
// actors living here die, named ones too (only the owner knows where an
// actor lives, so nobody could reach them again): their CPUs come back and
// their callers hear why. Its objects held in this rank's store go (only
// the owner would have freed them; their borrowers fail them,
// node_lost_locked), and so do its tasks held for arguments (its queued
// tasks do not run: execute()). What this rank reserved for the lost rank's
// groups is given back. Called outside mu_ (killing an actor rejects its
// calls, which takes it).
void NodeRuntime::end_what_lost_rank_owned(int rank, const std::string& why) {
  std::vector<Reservation> released;
  std::vector<ObjectId> unheld;
  {
    std::lock_guard lk(mu_);
    // Tasks held for arguments that their owner was to send: never run.
    for (auto it = held_.begin(); it != held_.end();) {
      if (static_cast<int>(it->second->spec->id.owner_rank) != rank) {
        ++it;
        continue;
      }
      std::vector<std::pair<ObjectId, int>> none;
      release_unborrowed_locked(*it->second->spec, none);
      unheld.push_back(it->second->spec->id);
      it = held_.erase(it);
    }
    for (auto it = reservations_.begin(); it != reservations_.end();) {
      if (static_cast<int>(it->first.first.owner_rank) != rank) {
        ++it;
        continue;
      }
      released.push_back(std::move(it->second));
      it = reservations_.erase(it);
    }
  }
  if (!unheld.empty()) {
    std::lock_guard lk(live_mu_);
    for (const auto& id : unheld) live_tasks_.erase(id);
  }
  for (const auto& r : released) pool_.release_kept(r.demand, r.grant);
  size_t dropped = 0;
  for (const ObjectId& id : store_.ids())
    if (static_cast<int>(id.owner_rank) == rank && store_.erase(id)) {
      ++dropped;
      if (observer_.object_freed) observer_.object_freed(id);
    }
  const size_t ended = actor_host_.kill_where(
      [rank](const ObjectId& id) { return static_cast<int>(id.owner_rank) == rank; },
      "was ended: its owner " + lost_reason(rank));
  if (ended > 0 || dropped > 0 || !unheld.empty() || !released.empty())
    PRISM_LOG_WARN(
        "rank {}: ended {} actor(s), dropped {} object(s) and {} held task(s), and "
        "released {} group reservation(s) that node rank {} owned ({}); its tasks "
        "queued here will not run",
        layout_.world_rank, ended, dropped, unheld.size(), released.size(), rank, why);
}

// Objects whose owner was lost before it answered where they are: they fail.
void NodeRuntime::fail_orphaned_locked() {
  auto ids = std::move(orphaned_);
  orphaned_.clear();
  for (const auto& id : ids) {
    auto* found = objects_.find(id);
    if (!found || !*found || (*found)->owned || (*found)->ready.load()) continue;
    ObjectValue v;
    v.kind = ObjectValue::Kind::kError;
    // (An actor's callers put "its actor (actor:...) is gone: " before it.)
    v.error = ((*found)->actor ? std::string() : "object " + id.to_string() + ": ") + "its owner " +
              lost_reason(static_cast<int>(id.owner_rank));
    v.actor_gone = (*found)->actor;
    complete_locked(id, std::move(v));
  }
}

// ------------------------------------------------------ lost copies ---

// This rank held `id`, and its copy is gone (the store could not read the
// spill file back): the owner hears of it, before any reader does (one
// sender, in order).
void NodeRuntime::copy_lost(const ObjectId& id, const std::string& why) {
  const int owner = static_cast<int>(id.owner_rank);
  if (owner == layout_.world_rank) {
    std::lock_guard lk(mu_);
    return copy_lost_locked(id, layout_.world_rank, why);
  }
  Writer w(64);
  encode_message(ObjectLostMsg{id, why}, w);
  if (Status st = send(owner, w); !st)
    PRISM_LOG_WARN("object lost message to rank {}: {}", owner, st.to_string());
}

void NodeRuntime::on_object_lost(int src, Reader& r) {
  ObjectLostMsg m;
  if (Status st = decode_message(r, m); !st)
    return PRISM_LOG_ERROR("dropped a message from rank {}: {}", src, st.to_string());
  std::lock_guard lk(mu_);
  copy_lost_locked(m.object, src, m.why);
}

void NodeRuntime::copy_lost_locked(const ObjectId& id, int holder, const std::string& why) {
  auto* found = objects_.find(id);
  if (!found || !*found || !(*found)->owned) return;
  auto& e = **found;
  if (!e.ready.load() || e.value.kind != ObjectValue::Kind::kRemote ||
      static_cast<int>(e.value.location.holder) != holder)
    return;  // made again already, or not that copy
  e.ready.store(false, std::memory_order_release);
  e.fetched.reset();
  if (e.lineage && e.lineage->rebuilds_left > 0) {
    PRISM_LOG_WARN("object {} ({}) on rank {}: {}; making it again from its lineage",
                   id.to_string(), e.lineage->spec.name, holder, why);
    rebuild_locked(id, e);
    return;
  }
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = "object " + id.to_string() + " was lost: " + why + " on rank " +
            std::to_string(holder) + ", and it cannot be made again (" +
            (e.lineage              ? "it was made again too many times: max_retries"
             : !config_.reconstruct ? "--prism-reconstruct=false keeps no lineage"
                                    : "made by put or by an actor, it has no lineage") +
            ")";
  complete_locked(id, std::move(v));
}

}  // namespace prism::runtime
