// NodeRuntime, part: objects as the API sees them — put, the values of
// finished objects, get and wait, and owners answering borrowers' status
// requests.
#include "runtime/node_runtime_internal.hpp"

#include <cstring>

#include "common/log.hpp"
#include "prism/errors.hpp"

namespace prism::runtime {

using namespace internal;

ObjectValue NodeRuntime::make_value(const ObjectId& id, std::vector<std::byte> bytes) {
  ObjectValue v;
  if (bytes.size() <= config_.inline_threshold) {
    v.kind = ObjectValue::Kind::kInline;
    v.bytes.assign(std::move(bytes));
    return v;
  }
  const uint64_t size = bytes.size();
  auto buffer = store_.adopt(std::move(bytes));  // keeps the vector's memory
  if (!buffer) return stored_value(id, buffer.status(), size);
  return stored_value(id, seal_when_room(id, std::move(buffer.value()), size), size);
}

// The value of an object just sealed in this rank's store (or why it is not).
ObjectValue NodeRuntime::stored_value(
    const ObjectId& id, const Expected<std::shared_ptr<const object_store::StoredObject>>& stored,
    uint64_t size) {
  ObjectValue v;
  if (!stored) {
    v.kind = ObjectValue::Kind::kError;
    v.error = stored.status().message();
    return v;
  }
  if (const int owner = static_cast<int>(id.owner_rank); is_lost(owner)) {
    // Made for an owner lost meanwhile, after end_what_lost_rank_owned
    // dropped what it had here: nobody would ever free it.
    store_.erase(id);
    v.kind = ObjectValue::Kind::kError;
    v.error = "object " + id.to_string() + ": its owner " + lost_reason(owner);
    return v;
  }
  if (observer_.object_sealed) observer_.object_sealed(id, size);
  v.kind = ObjectValue::Kind::kRemote;
  v.location.holder = static_cast<uint32_t>(layout_.world_rank);
  v.location.size = size;
  return v;
}

detail::HandlePtr NodeRuntime::put(std::vector<std::byte> encoded,
                                   std::vector<detail::HandlePtr> contained) {
  const ObjectId id{static_cast<uint32_t>(layout_.world_rank), 0, next_seq_.fetch_add(1)};
  return add_put(id, make_value(id, std::move(encoded)), std::move(contained));
}

// A large contiguous value goes straight into a store buffer (header and
// payload copied once), usually one a freed object left mapped and
// registered: no intermediate vector, no fresh pages to fault in.
detail::HandlePtr NodeRuntime::put_contiguous(std::span<const std::byte> header,
                                              std::span<const std::byte> payload) {
  const uint64_t size = header.size() + payload.size();
  if (size <= config_.inline_threshold) {
    std::vector<std::byte> bytes;
    bytes.reserve(size);
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    return put(std::move(bytes));
  }
  const ObjectId id{static_cast<uint32_t>(layout_.world_rank), 0, next_seq_.fetch_add(1)};
  auto buffer = store_.allocate(size);
  if (!buffer) throw ObjectStoreFullError(buffer.status().message());
  if (!header.empty()) std::memcpy(buffer->data(), header.data(), header.size());
  if (!payload.empty()) std::memcpy(buffer->data() + header.size(), payload.data(), payload.size());
  return add_put(id, stored_value(id, seal_when_room(id, std::move(buffer.value()), size), size));
}

detail::HandlePtr NodeRuntime::add_put(const ObjectId& id, ObjectValue v,
                                       std::vector<detail::HandlePtr> contained) {
  if (v.kind == ObjectValue::Kind::kError) throw ObjectStoreFullError(v.error);
  // A fresh id: nobody can subscribe to, depend on or wait for it yet, so the
  // entry is built ready, without complete_locked's notifications.
  auto e = std::allocate_shared<ObjectEntry>(PoolAllocator<ObjectEntry>());
  e->owned = true;
  e->task_name = "put";
  e->handles = 1;
  e->value = std::move(v);
  e->contained = std::move(contained);
  e->ready.store(true, std::memory_order_release);
  void* const entry = e.get();
  {
    std::lock_guard lk(mu_);
    objects_.slot(id) = std::move(e);
    ++stats_.objects_put;
  }
  return std::allocate_shared<detail::ObjectHandle>(PoolAllocator<detail::ObjectHandle>(),
                                                    to_pod(id), entry, instance_);
}

// The object is ready: record its value, tell subscribers, wake dependents.
void NodeRuntime::complete_locked(const ObjectId& id, ObjectValue value) {
  auto ep = entry_locked(id);
  auto& e = *ep;
  if (e.ready.load()) return;  // duplicate result
  e.value = std::move(value);
  e.ready.store(true, std::memory_order_release);
  transport::ProgressEngine::notify(e.wake);
  if (e.actor) actor_created_locked(id, e);

  if (!e.subscribers.empty()) {
    Writer w;
    w.put(MessageKind::kObjectStatusReply);
    encode_object_id(id, w);
    encode_object_value(e.value, w);
    for (int r : e.subscribers)
      if (Status st = send(r, w); !st) PRISM_LOG_WARN("status reply: {}", st.to_string());
    e.subscribers.clear();
  }
  auto deps = std::move(e.dependents);
  e.dependents.clear();
  // A restarted actor: calls to it are numbered afresh in the order they were made.
  if (e.actor && deps.size() > 1)
    if (const auto at = actor_location(e.value); at && at->incarnation > 0)
      order_actor_calls_locked(deps);
  for (auto [seq, arg] : deps) {
    if (seq & kHeldBit) {  // a task sent ahead of its arguments, held here
      resolve_held_locked(seq, arg, id, e);
      continue;
    }
    auto it = waiting_.find(seq);
    if (it == waiting_.end()) continue;
    resolve_arg_locked(*it->second, arg, id, e);
    if (--it->second->unresolved == 0) {
      auto task = std::move(it->second);
      waiting_.erase(it);
      dispatch_locked(std::move(task));
    }
  }
  engine_.notify();
  // A borrowed entry nothing here holds any more (one made only to learn
  // when a held task's argument is ready) goes now that it served.
  if (!e.owned && e.handles == 0) maybe_free_locked(id);
}

void NodeRuntime::request_status_locked(const ObjectId& id, ObjectEntry& e) {
  if (e.owned || e.status_requested) return;
  e.status_requested = true;
  if (is_lost(static_cast<int>(id.owner_rank))) {  // it will never answer: the object fails
    orphaned_.push_back(id);
    engine_.request_deferred_work();
    return;
  }
  Writer w;
  w.put(MessageKind::kObjectStatusRequest);
  encode_object_id(id, w);
  w.put<uint32_t>(e.actor_min_incarnation);  // an actor: answer with this instance or a later one
  if (Status st = send(static_cast<int>(id.owner_rank), w); !st)
    PRISM_LOG_ERROR("status request for {}: {}", id.to_string(), st.to_string());
}

// ---------------------------------------------------------------- waiting ---

void NodeRuntime::wait_for(const std::function<bool()>& done, int64_t timeout_us, bool* timed_out,
                           bool lend_slot, transport::ProgressEngine::WakeWord* word) {
  auto deadline = timeout_us < 0 ? transport::ProgressEngine::Clock::time_point::max()
                                 : transport::ProgressEngine::Clock::now() +
                                       std::chrono::microseconds(timeout_us);
  // Inside a task: lend the CPU slot while blocked (nested tasks need it).
  auto* pool = worker::WorkerPool::current();
  const bool lend = lend_slot && pool == &pool_ && !done();
  if (lend) pool_.lend_slot();
  const bool in_task = !tls_current_task.is_nil();
  const int64_t w0 = in_task ? Timeline::now_us() : 0;
  engine_.wait_until([&] { return done() || engine_.stopping(); }, deadline,
                     transport::ProgressEngine::kObjects, word);
  if (in_task) tls_not_own_us += Timeline::now_us() - w0;
  if (lend) pool_.reclaim_slot();
  if (done()) return;
  if (timed_out && !engine_.stopping()) {
    *timed_out = true;
    return;
  }
  if (!timed_out) throw Error("the Prism runtime is shutting down");
}

detail::ValueBytes NodeRuntime::get(const detail::HandlePtr& handle) {
  // Ready inline values need no lock: the entry lives as long as the handle
  // and its value never changes once ready.
  if (handle->runtime() == instance_) {
    const auto& e = *static_cast<const ObjectEntry*>(handle->entry());
    if (e.ready.load(std::memory_order_acquire) && e.value.kind == ObjectValue::Kind::kInline)
      return {e.value.bytes, handle};
  }
  const ObjectId id = to_id(handle->id());
  EntryPtr e;
  worker::WorkerPool::Ticket queued_here;
  {
    std::lock_guard lk(mu_);
    e = entry_locked(id);
    if (!e->ready.load()) request_status_locked(id, *e);
    if (auto it = in_flight_.find(id.seq);
        e->owned && it != in_flight_.end() && it->second->node == layout_.world_rank)
      queued_here = it->second->queued;
  }
  // Help while waiting: a local task no worker has started runs right here
  // (and a call an actor's method made to its own actor, on its thread).
  if (!queued_here.expired() && !e->ready.load(std::memory_order_acquire))
    pool_.run_inline(queued_here);
  const auto ready = [&] { return e->ready.load(std::memory_order_acquire); };
  if (!ready() && !help_own_actor(id, ready)) wait_for(ready, -1, nullptr, true, &e->wake);
  // A remote object whose holder is lost becomes not ready again while it
  // is made again (docs/fault-tolerance.md): wait for it once more.
  for (;;) {
    std::unique_lock lk(mu_);
    if (!e->ready.load()) {
      request_status_locked(id, *e);
      lk.unlock();
      wait_for(ready, -1, nullptr, true, &e->wake);
      continue;
    }
    auto got = get_ready(id, e, lk);
    if (got) return std::move(*got);
  }
}

// `e` is ready (under `lk`): its bytes, or nullopt when its holder was lost
// meanwhile.
std::optional<detail::ValueBytes> NodeRuntime::get_ready(
    const ObjectId& id, const EntryPtr& e, std::unique_lock<AdaptiveRecursiveMutex>& lk) {
  switch (e->value.kind) {
    case ObjectValue::Kind::kError:
      throw TaskError(e->task_name.empty() ? id.to_string() : e->task_name, e->value.error);
    case ObjectValue::Kind::kInline:
      return detail::ValueBytes{e->value.bytes, e};  // the entry keeps the bytes alive
    case ObjectValue::Kind::kRemote:
      break;
  }
  const RemoteLocation loc = e->value.location;
  if (loc.holder == static_cast<uint32_t>(layout_.world_rank)) {  // zero copy from our store
    lk.unlock();
    auto obj = acquire_local(id);  // restores it if it was spilled
    if (!obj && obj.status().code() == Errc::kLost) {
      copy_lost(id, obj.status().message());  // the owner makes it again or fails it
      forget_lost_copy(id, e);
      return std::nullopt;
    }
    if (!obj) {
      if (obj.status().code() == Errc::kOutOfMemory)
        throw ObjectStoreFullError(obj.status().message());
      throw Error(obj.status().message());
    }
    auto pinned = std::move(obj.value());
    return detail::ValueBytes{pinned->bytes(), pinned};
  }
  if (e->fetched) return detail::ValueBytes{{e->fetched->data(), loc.size}, e->fetched};
  lk.unlock();
  // Pull it with RDMA outside the lock; concurrent getters may both fetch,
  // the first copy wins. The copy lives in a pooled buffer (warm, registered;
  // never zero-filled) that goes back to the pool when the last reader lets go.
  auto buf = store_.allocate(loc.size + kFetchSlack);
  if (!buf)
    throw Error("no memory for a copy of " + id.to_string() + ": " + buf.status().message());
  auto copy = std::make_shared<FetchedCopy>(std::move(buf.value()));
  Status st = fetch(id, loc, copy->buffer.data(), id.to_string(), &copy->offset);
  if (!st && is_lost(static_cast<int>(loc.holder))) return std::nullopt;
  if (!st && st.code() == Errc::kLost) {  // its owner heard first: ask it again
    forget_lost_copy(id, e);
    return std::nullopt;
  }
  if (!st)
    throw Error("fetching " + id.to_string() + " from rank " + std::to_string(loc.holder) + ": " +
                st.to_string());
  lk.lock();
  if (!e->fetched) e->fetched = std::move(copy);
  return detail::ValueBytes{{e->fetched->data(), loc.size}, e->fetched};
}

// A reader found the copy `e` names gone: a borrower asks the owner again
// (the owner's own entry was reset when it heard).
void NodeRuntime::forget_lost_copy(const ObjectId& id, const EntryPtr& e) {
  std::lock_guard lk(mu_);
  if (e->owned || !e->ready.load()) return;
  e->ready.store(false, std::memory_order_release);
  e->fetched.reset();
  e->status_requested = false;
  request_status_locked(id, *e);
}

std::vector<bool> NodeRuntime::wait(const std::vector<detail::HandlePtr>& handles,
                                    size_t num_returns, int64_t timeout_us) {
  std::vector<EntryPtr> entries;
  entries.reserve(handles.size());
  {
    std::lock_guard lk(mu_);
    for (const auto& h : handles) {
      const ObjectId id = to_id(h->id());
      auto e = entry_locked(id);
      if (!e->ready.load()) request_status_locked(id, *e);
      entries.push_back(std::move(e));
    }
  }
  auto count_ready = [&] {
    size_t n = 0;
    for (const auto& e : entries) n += e->ready.load(std::memory_order_acquire) ? 1 : 0;
    return n;
  };
  bool timed_out = false;
  if (count_ready() < num_returns)
    wait_for([&] { return count_ready() >= num_returns; }, timeout_us, &timed_out);
  std::vector<bool> ready(entries.size(), false);
  size_t taken = 0;
  for (size_t i = 0; i < entries.size() && taken < num_returns; ++i)
    if (entries[i]->ready.load(std::memory_order_acquire)) {
      ready[i] = true;
      ++taken;
    }
  return ready;
}

void NodeRuntime::on_status_request(int src, Reader& r) {
  const ObjectId id = decode_object_id(r);
  const auto min_incarnation = r.get<uint32_t>();
  if (!r.finish("status request")) return;
  std::lock_guard lk(mu_);
  auto* found = objects_.find(id);
  if (!found || !(*found)->owned) {
    Writer w;
    w.put(MessageKind::kObjectStatusReply);
    encode_object_id(id, w);
    ObjectValue v;
    v.kind = ObjectValue::Kind::kError;
    v.error = "object " + id.to_string() + " is unknown to its owner (rank " +
              std::to_string(layout_.world_rank) + "): it was freed or never existed";
    encode_object_value(v, w);
    if (Status st = send(src, w); !st) PRISM_LOG_WARN("status reply: {}", st.to_string());
    return;
  }
  auto& e = **found;
  // An actor the asker knows a later instance of than this rank has: the
  // answer waits until this rank has restarted it or recorded its death.
  const auto at = e.actor && e.ready.load() ? actor_location(e.value) : std::nullopt;
  if (!e.ready.load() || (at && at->incarnation < min_incarnation)) {
    e.subscribers.push_back(src);
    return;
  }
  Writer w;
  w.put(MessageKind::kObjectStatusReply);
  encode_object_id(id, w);
  encode_object_value(e.value, w);
  if (Status st = send(src, w); !st) PRISM_LOG_WARN("status reply: {}", st.to_string());
}

// An object's value from a peer: its owner's answer to a status request, or
// (`forwarded`) its producer's copy for a task held here (ForwardObject). A
// forwarded value can overtake the task it is for (producer and owner are
// different senders): with no entry here yet it is kept until the task comes
// (keep_early_locked; dropping it left the task held for ever).
void NodeRuntime::on_status_reply(int src, Reader& r, bool forwarded) {
  const ObjectId id = decode_object_id(r);
  ObjectValue v;
  if (Status st = decode_object_value(r, v); !st) {
    PRISM_LOG_ERROR("dropped a malformed {} from rank {}",
                    forwarded ? "forwarded object" : "status reply", src);
    return;
  }
  std::lock_guard lk(mu_);
  if (accept_value_locked(id, v) || !forwarded) return;  // a reply for one let go meanwhile
  keep_early_locked(id, std::move(v));
}

bool NodeRuntime::accept_value_locked(const ObjectId& id, ObjectValue& v) {
  auto* e = objects_.find(id);
  if (!e) return false;
  // An actor's creation object: the node it lives on, and which instance.
  const auto at = (*e)->actor ? actor_location(v) : std::nullopt;
  if (on_lost_rank(v) ||
      (at && (is_lost(at->node) || at->incarnation < (*e)->actor_min_incarnation))) {
    // The owner answered before it heard of the loss: ask again until it
    // has (it then makes the object again, or fails it).
    (*e)->status_requested = false;
    request_status_locked(id, **e);
    return true;
  }
  complete_locked(id, std::move(v));
  return true;
}

void NodeRuntime::on_free(Reader& r) {
  const ObjectId id = decode_object_id(r);
  if (r.finish("free object") && store_.erase(id) && observer_.object_freed)
    observer_.object_freed(id);
}

}  // namespace prism::runtime
