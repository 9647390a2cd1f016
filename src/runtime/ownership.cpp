// NodeRuntime, part: distributed reference counting (Ray's ownership) —
// handles, borrowers, refs in transit, and freeing what nobody refers to.
#include "runtime/node_runtime_internal.hpp"

#include "common/log.hpp"

namespace prism::runtime {

using namespace internal;

// ---------------------------------------------------------------- objects ---

const NodeRuntime::EntryPtr& NodeRuntime::entry_locked(const ObjectId& id) {
  auto& e = objects_.slot(id);
  if (!e) {
    e = std::allocate_shared<ObjectEntry>(PoolAllocator<ObjectEntry>());
    e->owned = id.owner_rank == static_cast<uint32_t>(layout_.world_rank);
  }
  return e;
}

detail::HandlePtr NodeRuntime::make_handle_locked(const ObjectId& id) {
  auto& e = *entry_locked(id);
  ++e.handles;  // the entry outlives the handle (maybe_free_locked)
  return std::allocate_shared<detail::ObjectHandle>(PoolAllocator<detail::ObjectHandle>(),
                                                    to_pod(id), &e, instance_);
}

// Distributed reference counting (Ray's ownership, simplified):
//  * a rank that receives a ref it does not own registers with the owner
//    (AddBorrower) and deregisters when its last handle goes (RemoveBorrower,
//    after the adds on the same FIFO channel);
//  * the sender of an ObjectRef argument pins its entry (in_transit) until the
//    owner has counted the receiver and says so (TransitDone), so the count
//    never touches zero while a ref is on the wire.
detail::HandlePtr NodeRuntime::borrow(const ObjectId& id, int sender, const ObjectId& outer) {
  if (tls_borrow_log) tls_borrow_log->emplace_back(id, sender);
  std::lock_guard lk(mu_);
  auto h = make_handle_locked(id);
  auto& e = **objects_.find(id);
  if (!e.owned) {
    ++e.registrations;
    const int owner = static_cast<int>(id.owner_rank);
    // Decoded out of the value of an object another rank owns, for a third
    // owner: once we let go of the value, its owner drops its own ref, and
    // that RemoveBorrower (on its channel) could reach the owner before our
    // AddBorrower (on ours) and free the object. The value stays pinned here
    // until the owner says it counted us.
    if (sender < 0 && !outer.is_nil() &&
        outer.owner_rank != static_cast<uint32_t>(layout_.world_rank) &&
        outer.owner_rank != id.owner_rank)
      if (auto* o = objects_.find(outer)) {
        ++(*o)->in_transit;
        awaiting_count_[id].push_back({outer, nullptr});
        send_id_message(MessageKind::kAddBorrowerAndAck, owner, id, sender);
        return h;
      }
    // Decoded by a running task out of an argument value (see TaskAcks).
    if (sender < 0 && outer.is_nil() && tls_task_acks_ &&
        id.owner_rank != tls_task_acks_->task_owner) {
      tls_task_acks_->pending.fetch_add(1);
      awaiting_count_[id].push_back({ObjectId{}, tls_task_acks_});
      send_id_message(MessageKind::kAddBorrowerAndAck, owner, id, sender);
      return h;
    }
    send_id_message(MessageKind::kAddBorrower, owner, id, sender);
  } else {
    release_transit_pin_locked(id, sender);  // the ref came home to its owner
  }
  return h;
}

// The owner has counted the receiver of a ref `sender` pinned: unpin it.
void NodeRuntime::release_transit_pin_locked(const ObjectId& id, int sender) {
  if (sender == layout_.world_rank)
    transit_done_locked(id);
  else if (sender >= 0)
    send_id_message(MessageKind::kTransitDone, sender, id);
}

void NodeRuntime::send_id_message(MessageKind kind, int dst, const ObjectId& id, int64_t extra) {
  Writer w(32);
  w.put(kind);
  encode_object_id(id, w);
  if (kind != MessageKind::kTransitDone && kind != MessageKind::kBorrowerCounted)
    w.put<int32_t>(static_cast<int32_t>(extra));
  if (Status st = send(dst, w); !st)
    PRISM_LOG_WARN("reference message to rank {}: {}", dst, st.to_string());
}

void NodeRuntime::pin_for_trip_locked(const ObjectId& id) {
  ++entry_locked(id)->in_transit;
}

void NodeRuntime::transit_done_locked(const ObjectId& id) {
  auto* e = objects_.find(id);
  if (!e) return;
  if ((*e)->in_transit > 0) --(*e)->in_transit;
  maybe_free_locked(id);
}

void NodeRuntime::on_add_borrower(int src, Reader& r, bool ack) {
  const ObjectId id = decode_object_id(r);
  const int sender = r.get<int32_t>();
  if (!r.finish("add borrower")) return;
  std::lock_guard lk(mu_);
  if (auto* e = objects_.find(id)) ++(*e)->borrowers[src];
  release_transit_pin_locked(id, sender);
  if (ack) send_id_message(MessageKind::kBorrowerCounted, src, id);
}

// The owner counted us for `id`: the value it was decoded out of is unpinned,
// or the task that decoded it may send its result (a blank: nothing).
void NodeRuntime::on_borrower_counted(Reader& r) {
  const ObjectId id = decode_object_id(r);
  if (!r.finish("borrower counted")) return;
  std::lock_guard lk(mu_);
  auto it = awaiting_count_.find(id);
  if (it == awaiting_count_.end()) return;
  const AwaitedCount counted = it->second.front();
  it->second.pop_front();
  if (it->second.empty()) awaiting_count_.erase(it);
  if (counted.task) {
    counted.task->pending.fetch_sub(1);
    engine_.notify(counted.task->wake);
  } else {
    transit_done_locked(counted.outer);
  }
}

// Before a task's result goes out: every ref it decoded out of an argument
// value is counted by its owner (bounded: an owner that never answers must
// not hold the result forever). Entries still waiting become blanks, so a late
// answer pops its own place in the per-ref order and changes nothing.
void NodeRuntime::await_task_acks(TaskAcks& acks) {
  if (acks.pending.load() == 0) return;
  bool timed_out = false;
  wait_for([&] { return acks.pending.load() == 0 || engine_.stopping(); }, kTaskAcksTimeoutUs,
           &timed_out, /*lend_slot=*/true, &acks.wake);
  if (acks.pending.load() == 0) return;
  std::lock_guard lk(mu_);
  for (auto& [id, waiting] : awaiting_count_)
    for (auto& a : waiting)
      if (a.task == &acks) a = AwaitedCount{};
  PRISM_LOG_WARN("a task's result went out before the owners of {} refs it decoded counted rank {}",
                 acks.pending.load(), layout_.world_rank);
}

void NodeRuntime::on_remove_borrower(int src, Reader& r) {
  const ObjectId id = decode_object_id(r);
  const int count = r.get<int32_t>();
  if (!r.finish("remove borrower")) return;
  std::lock_guard lk(mu_);
  auto* e = objects_.find(id);
  if (!e) return;
  auto b = (*e)->borrowers.find(src);
  if (b != (*e)->borrowers.end() && (b->second -= count) <= 0) (*e)->borrowers.erase(b);
  maybe_free_locked(id);
}

void NodeRuntime::note_shared(const ObjectId& id) noexcept {
  std::lock_guard lk(mu_);
  if (auto* e = objects_.find(id)) (*e)->shared = true;
}

void NodeRuntime::release(const ObjectId& id) noexcept {
  std::lock_guard lk(mu_);
  auto* e = objects_.find(id);
  if (!e) return;
  if (--(*e)->handles <= 0) maybe_free_locked(id);
}

// Frees (owner) or lets go of (borrower) an object nobody here refers to any
// more, and no task, borrower or ref in transit needs.
void NodeRuntime::maybe_free_locked(const ObjectId& id) {
  auto* found = objects_.find(id);
  if (!found) return;
  auto& e = **found;
  if (e.handles > 0 || e.in_transit > 0 || !e.dependents.empty() || e.shared) return;
  if (!e.owned) {  // a borrower lets go: tell the owner, drop the cached copy
    if (e.registrations > 0)
      send_id_message(MessageKind::kRemoveBorrower, static_cast<int>(id.owner_rank), id,
                      e.registrations);
    // (Its call numbers stay: this process may borrow the actor again, and
    // its next call must follow the last one it made.)
    objects_.erase(id);
    return;
  }
  if (!e.ready.load() || !e.subscribers.empty() || !e.borrowers.empty()) return;
  // Refs inside the value go with it, after the entry is gone (releasing
  // them re-enters release() for other entries).
  auto contained = std::move(e.contained);
  if (e.actor) {  // Ray's semantics: an actor whose every handle is gone ends
    kill_created_actor_locked(id, e, "was destroyed: every handle to it is gone");
    call_seqs_.erase(id);
  }
  if (e.value.kind == ObjectValue::Kind::kRemote) {
    const int holder = static_cast<int>(e.value.location.holder);
    if (holder == layout_.world_rank) {
      if (store_.erase(id) && observer_.object_freed) observer_.object_freed(id);
    } else {
      Writer w;
      w.put(MessageKind::kFreeObject);
      encode_object_id(id, w);
      if (Status st = send(holder, w); !st)
        PRISM_LOG_WARN("free {}: {}", id.to_string(), st.to_string());
    }
  }
  objects_.erase(id);
}

}  // namespace prism::runtime
