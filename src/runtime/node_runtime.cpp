#include "runtime/node_runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/log.hpp"
#include "prism/errors.hpp"
#include "prism/remote.hpp"
#include "worker/gpu_device.hpp"

namespace prism::runtime {
namespace {

thread_local NodeRuntime* tls_runtime = nullptr;
thread_local ObjectId tls_current_task;     // the task running on this thread (lineage)
// Time inside the running task that is not its own work (us): waits in get()
// and tasks it ran inline meanwhile. A function's mean run time is its own
// work, so a task that mostly waits for its children counts as short.
thread_local int64_t tls_not_own_us = 0;
// While a task runs: the (ref, sender) pairs its decoding borrowed (see
// release_unborrowed_locked).
thread_local std::vector<std::pair<ObjectId, int>>* tls_borrow_log = nullptr;
std::atomic<NodeRuntime*> process_runtime{nullptr};

ObjectId to_id(const detail::ObjectIdPod& p) {
  return {p.owner_rank, p.index, p.seq};
}
detail::ObjectIdPod to_pod(const ObjectId& id) {
  return {id.owner_rank, id.index, id.seq};
}

// --prism-store-reuse-bytes; "auto": the whole capacity (the store keeps idle
// buffers within what live objects leave of it).
uint64_t reuse_bytes(const Config& c) {
  if (c.store_reuse_bytes != Config::kAutoReuse) return c.store_reuse_bytes;
  return c.store_capacity ? c.store_capacity : uint64_t{2} << 30;
}

}  // namespace

// A reader's copy of a remote object, in a pooled buffer (returned to the
// pool when the last reader lets go), at the offset the fetch chose.
struct FetchedCopy {
  explicit FetchedCopy(object_store::Buffer b) : buffer(std::move(b)) {}
  const std::byte* data() const noexcept { return buffer.data() + offset; }
  object_store::Buffer buffer;
  size_t offset = 0;
};

// The refs a running task decoded out of its arguments whose owner is a
// third rank (neither the task's owner nor this one). Its owner holds the
// argument objects, which keep those refs alive, until the result arrives, and
// then lets go; the owners of the refs might hear of that before they hear of
// us (another channel). The result waits until every one of them counted us.
struct NodeRuntime::TaskAcks {
  uint32_t task_owner = 0;
  std::atomic<int> pending{0};
  transport::ProgressEngine::WakeWord wake;
};
thread_local NodeRuntime::TaskAcks* NodeRuntime::tls_task_acks_ = nullptr;

// One object this process knows about: owned (we created it) or borrowed.
struct NodeRuntime::ObjectEntry {
  bool owned = false;
  std::atomic<bool> ready{false};  // read without mu_ by waiters
  // Valid once ready, then immutable: get() hands out views of inline bytes
  // kept alive by the entry itself (no separate allocation per value).
  ObjectValue value;
  std::shared_ptr<const FetchedCopy> fetched;            // a copy pulled from the holder
  std::string task_name;                                 // the creating task, for error messages
  int handles = 0;                                       // live ObjectHandles in this process
  int in_transit = 0;                      // refs sent to other ranks, not yet counted by the owner
  int registrations = 0;                   // borrowed: AddBorrower messages sent to the owner
  std::unordered_map<int, int> borrowers;  // owned: rank -> registrations
  bool shared = false;            // a ref escaped inside a value: kept for the job (see docs)
  bool status_requested = false;  // borrowed: asked the owner
  std::vector<int> subscribers;   // owned: ranks to tell when ready
  std::vector<std::pair<uint64_t, size_t>> dependents;  // (waiting task seq, arg index)
  transport::ProgressEngine::WakeWord wake;             // get()s sleeping until it is ready
  std::vector<detail::HandlePtr> contained;             // owned: refs serialized inside the value
};

// A submitted task not finished yet.
struct NodeRuntime::PendingTask {
  TaskSpec spec;
  scheduler::TaskRequest request;
  std::vector<detail::HandlePtr> arg_refs;  // keep argument objects alive until done
  std::vector<ObjectId> value_refs;         // refs inside argument values, pinned for the trip
  size_t unresolved = 0;
  int node = -1;
  bool report_when_done = false;  // Observer::task_done, not dispatched + finished
  worker::WorkerPool::Ticket queued;  // queued here: a get() may run it inline
  std::string arg_error;  // set when an argument's task failed: this one never runs
};

NodeRuntime::NodeRuntime(const Config& config, transport::Transport& transport,
                         ClusterLayout layout, std::vector<scheduler::NodeResources> nodes,
                         const worker::Topology* topology,
                         transport::ProgressEngine::HostSpinBudget host_spin)
    : config_(config),
      transport_(transport),
      layout_(std::move(layout)),
      engine_(transport, config.spin_us, static_cast<uint32_t>(std::max(1, config.spinners)),
              host_spin),
      store_(transport, config.store_capacity, config.spill_dir, reuse_bytes(config)),
      pool_({.resources = nodes.at(layout_.world_rank),
             .pin = config.pin_workers,
             .topology = topology,
             .first_core = layout_.first_core,
             .after_job = [this] { send_heartbeat(); }},
            engine_),
      objects_(static_cast<uint32_t>(layout_.world_rank)),
      scheduler_(layout_.world_rank, std::move(nodes)),
      timeline_(!config.timeline.empty()) {
  stats_.slots = static_cast<uint64_t>(pool_.slots());
  // The global scheduler lives on the first GCS rank (runtime/gcs_role.cpp).
  if (config.global_scheduler && !layout_.gcs_ranks.empty() && layout_.num_nodes > 1) {
    global_scheduler_ = layout_.gcs_ranks.front();
    scheduler_.use_global_scheduler(true);
  }
  transport_.set_handler([this](int src, std::span<const std::byte> m) { on_message(src, m); });
  engine_.set_deferred_work([this] { flush_spills(); });
}

NodeRuntime::~NodeRuntime() {
  stop();
}

NodeRuntime* NodeRuntime::current() noexcept {
  return tls_runtime ? tls_runtime : process_runtime.load(std::memory_order_acquire);
}
void NodeRuntime::set_process_runtime(NodeRuntime* rt) noexcept {
  process_runtime.store(rt);
}
std::vector<int> NodeRuntime::current_gpu_ids() {
  return worker::WorkerPool::current_gpu_ids();
}
NodeRuntime::Scope::Scope(NodeRuntime* rt) noexcept : previous_(tls_runtime) {
  tls_runtime = rt;
}
NodeRuntime::Scope::~Scope() {
  tls_runtime = previous_;
}

void NodeRuntime::start() {
  pool_.start();
  progress_thread_ = std::thread([this] {
    Scope scope(this);
    engine_.run();
  });
}

void NodeRuntime::stop() {
  if (stopped_.exchange(true)) return;
  engine_.stop();
  const size_t dropped = pool_.stop();
  if (dropped) PRISM_LOG_WARN("shutdown dropped {} queued tasks", dropped);
  if (progress_thread_.joinable()) progress_thread_.join();
  // Messages that still arrive (during the shutdown barrier) must not reach
  // a runtime that is about to be destroyed.
  transport_.set_handler([](int, std::span<const std::byte>) {});
}

Status NodeRuntime::send(int dst, const Writer& w) {
  auto& buf = const_cast<Writer&>(w).buffer();
  return transport_.send(dst, buf);
}

void NodeRuntime::broadcast_shutdown(int exit_code) {
  Writer w;
  w.put(MessageKind::kShutdown);
  w.put<int32_t>(exit_code);
  for (int r = 0; r < layout_.world_size; ++r) {
    if (r == layout_.world_rank) continue;
    if (Status st = send(r, w); !st) PRISM_LOG_ERROR("shutdown to rank {}: {}", r, st.to_string());
  }
  shutdown_code_ = exit_code;
  shutdown_ = true;
  engine_.notify_all();
}

int NodeRuntime::wait_for_shutdown() {
  engine_.wait_until([this] { return shutdown_.load(); });
  return shutdown_code_.load();
}

MemoryStats NodeRuntime::memory_stats() const {
  const auto st = store_.stats();
  MemoryStats m;
  m.objects_in_store = st.objects;
  m.bytes_in_store = st.bytes_in_use;
  m.store_capacity = st.capacity;
  m.objects_spilled = st.objects_spilled;
  m.bytes_spilled = st.bytes_spilled;
  std::lock_guard lk(mu_);
  m.tracked_objects = objects_.size();
  return m;
}

std::vector<scheduler::NodeResources> NodeRuntime::nodes() const {
  std::lock_guard lk(mu_);
  std::vector<scheduler::NodeResources> out;
  for (int i = 0; i < scheduler_.num_nodes(); ++i) out.push_back(scheduler_.node(i));
  return out;
}

NodeStats NodeRuntime::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

std::optional<uint64_t> NodeRuntime::mean_task_ns(std::string_view function) const {
  std::lock_guard lk(mu_);
  return mean_task_ns_locked(detail::find_function(function));
}

bool NodeRuntime::has_object(const ObjectId& id) const {
  std::lock_guard lk(mu_);
  return objects_.contains(id);
}

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
    objects_.erase(id);
    return;
  }
  if (!e.ready.load() || !e.subscribers.empty() || !e.borrowers.empty()) return;
  // Refs inside the value go with it, after the entry is gone (releasing
  // them re-enters release() for other entries).
  auto contained = std::move(e.contained);
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

ObjectValue NodeRuntime::make_value(const ObjectId& id, std::vector<std::byte> bytes) {
  ObjectValue v;
  if (bytes.size() <= config_.inline_threshold) {
    v.kind = ObjectValue::Kind::kInline;
    v.bytes.assign(std::move(bytes));
    return v;
  }
  const uint64_t size = bytes.size();
  return stored_value(id, store_.seal(id, std::move(bytes)), size);  // keeps the vector's memory
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
  std::memcpy(buffer->data(), header.data(), header.size());
  if (!payload.empty()) std::memcpy(buffer->data() + header.size(), payload.data(), payload.size());
  return add_put(id, stored_value(id, store_.seal(id, std::move(buffer.value()), size), size));
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
  for (auto [seq, arg] : deps) {
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
}

void NodeRuntime::request_status_locked(const ObjectId& id, ObjectEntry& e) {
  if (e.owned || e.status_requested) return;
  e.status_requested = true;
  Writer w;
  w.put(MessageKind::kObjectStatusRequest);
  encode_object_id(id, w);
  if (Status st = send(static_cast<int>(id.owner_rank), w); !st)
    PRISM_LOG_ERROR("status request for {}: {}", id.to_string(), st.to_string());
}

// Pulls a remote object: pin at the holder (which restores it if it was
// spilled), one RDMA get, unpin. Records it in the timeline.
Status NodeRuntime::fetch(const ObjectId& id, const RemoteLocation& loc, void* into,
                          const std::string& what, size_t* aligned_offset) {
  const int64_t t0 = Timeline::now_us();
  const int holder = static_cast<int>(loc.holder);
  const uint64_t req = next_fetch_.fetch_add(1);
  auto slot = std::make_shared<FetchSlot>();
  {
    std::lock_guard lk(mu_);
    fetches_[req] = slot;
  }
  Writer w(32);
  w.put(MessageKind::kFetchRequest);
  w.put(req);
  encode_object_id(id, w);
  Status st = send(holder, w);
  // Not lending the slot: the fetch is part of this task's own start, and
  // lending would only start more fetches competing for the holder's memory.
  if (st) wait_for([&] { return slot->done.load(std::memory_order_acquire); }, -1, nullptr, false);
  {
    std::lock_guard lk(mu_);
    fetches_.erase(req);
  }
  if (st && !slot->ok) st = {Errc::kNotFound, slot->error};
  if (st && slot->size != loc.size)
    st = {Errc::kMalformedMessage, id.to_string() + ": holder reports " +
                                       std::to_string(slot->size) + " bytes, expected " +
                                       std::to_string(loc.size)};
  if (st) {
    // The copy runs measurably slower (7-20% here) when source and
    // destination differ in alignment within a cache line.
    if (aligned_offset) {
      *aligned_offset = slot->address % kFetchSlack;
      into = static_cast<std::byte*>(into) + *aligned_offset;
    }
    st = transport_.rdma_get(holder, slot->address, slot->rkey, into, loc.size);
    Writer done(16);
    done.put(MessageKind::kFetchDone);
    done.put(req);
    if (Status s2 = send(holder, done); !s2) PRISM_LOG_WARN("fetch done: {}", s2.to_string());
  }
  const int64_t t1 = Timeline::now_us();
  if (timeline_.enabled())
    timeline_.record({"fetch " + what + " from node " + std::to_string(holder), "transfer", t0,
                      t1 - t0, layout_.world_rank, worker::WorkerPool::current_index(), loc.size,
                      !st.is_ok()});
  if (st) {
    std::lock_guard lk(mu_);
    stats_.bytes_fetched += loc.size;
  }
  return st;
}

void NodeRuntime::on_fetch_request(int src, Reader& r) {
  const auto req = r.get<uint64_t>();
  const ObjectId id = decode_object_id(r);
  if (!r.finish("fetch request")) return;
  serve_fetch(src, req, id);
}

// Pins (restoring if spilled) and answers with the address and rkey. When the
// store has no room only because other reads pin objects, the request waits
// for those reads to finish instead of failing.
void NodeRuntime::serve_fetch(int src, uint64_t req, const ObjectId& id) {
  auto obj = store_.acquire(id);
  if (!obj && obj.status().code() == Errc::kBusy) {
    std::lock_guard lk(mu_);
    if (!pinned_reads_.empty()) {
      deferred_fetches_.push_back({src, req, id});
      return;
    }
  }
  Writer w(64);
  w.put(MessageKind::kFetchReply);
  w.put(req);
  w.put<uint8_t>(obj.has_value());
  if (obj) {
    const auto& o = *obj;
    w.put(reinterpret_cast<uint64_t>(o->bytes().data()));
    w.put(static_cast<uint64_t>(o->bytes().size()));
    w.put_bytes(o->region().remote_key);
    std::lock_guard lk(mu_);
    pinned_reads_[{src, req}] = o;
  } else {
    w.put_string(obj.status().message() + " (on node " + std::to_string(layout_.world_rank) + ")");
  }
  if (Status st = send(src, w); !st) {
    PRISM_LOG_WARN("fetch reply to rank {}: {}", src, st.to_string());
    std::lock_guard lk(mu_);
    pinned_reads_.erase({src, req});
  }
}

void NodeRuntime::on_fetch_reply(Reader& r) {
  const auto req = r.get<uint64_t>();
  const bool ok = r.get<uint8_t>() != 0;
  uint64_t address = 0, size = 0;
  std::vector<std::byte> rkey;
  std::string error;
  if (ok) {
    address = r.get<uint64_t>();
    size = r.get<uint64_t>();
    auto k = r.get_bytes();
    rkey.assign(k.begin(), k.end());
  } else {
    error = r.get_string();
  }
  if (!r.finish("fetch reply")) return;
  std::lock_guard lk(mu_);
  auto it = fetches_.find(req);
  if (it == fetches_.end()) return;
  auto& slot = *it->second;
  slot.ok = ok;
  slot.address = address;
  slot.size = size;
  slot.rkey = std::move(rkey);
  slot.error = std::move(error);
  slot.done.store(true, std::memory_order_release);
  engine_.notify();
}

// ------------------------------------------------------------------ tasks ---

detail::HandlePtr NodeRuntime::submit(const detail::RemoteFunctionInfo& function,
                                      std::vector<detail::TaskArg> args,
                                      const TaskOptions& options) {
  auto task = make_pooled<PendingTask>();
  const uint64_t seq = next_seq_.fetch_add(1);
  const ObjectId id{static_cast<uint32_t>(layout_.world_rank), 0, seq};
  task->spec.id = id;
  task->spec.function = function.name;
  task->spec.fn = &function;
  task->spec.name = options.name.empty() ? function.name : options.name;
  task->spec.resources = {options.num_cpus, options.num_gpus, options.memory, options.resources};
  task->spec.parent = tls_current_task;
  task->request = {options.num_cpus,  options.num_gpus, options.memory,
                   options.resources, options.node,     static_cast<int>(options.placement),
                   task->spec.name};

  std::lock_guard lk(mu_);
  // Infeasible requests fail at once, before anything is queued.
  if (Status st = scheduler_.check(task->request); !st) {
    if (st.code() == Errc::kInfeasible) throw InfeasibleError(st.message());
    throw Error(st.message());
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
        }
        break;
      }
    }
  }
  if (task->unresolved == 0)
    dispatch_locked(std::move(task));
  else
    waiting_.emplace(seq, std::move(task));
  return result;
}

// Fills argument `arg` of `task` from the ready object `dep`.
void NodeRuntime::resolve_arg_locked(PendingTask& task, size_t arg, const ObjectId& dep_id,
                                     const ObjectEntry& dep) {
  auto& w = task.spec.args[arg];
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
      if (task.arg_error.empty())
        task.arg_error = "argument " + std::to_string(arg) + " failed: " + dep.value.error;
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
  const ObjectId id = task->spec.id;
  if (!task->arg_error.empty()) return fail_unsent_locked(*task, task->arg_error);
  for (const auto& a : task->spec.args)  // locality: where is the largest argument?
    if (a.kind == WireArg::Kind::kRemoteValue && a.location.size > task->request.data_bytes) {
      task->request.data_bytes = a.location.size;
      task->request.data_node = static_cast<int>(a.location.holder);
    }
  const std::optional<uint64_t> mean_ns = mean_task_ns_locked(task->spec.fn);
  auto node = scheduler_.pick(task->request,
                              pool_.has_room(task->spec.resources, local_queue_limit(mean_ns)));
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
    task->queued = pool_.submit([this, pending = task.get()] { execute(pending->spec); },
                                task->spec.resources, known_short);
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

void NodeRuntime::flush_spills() {
  std::lock_guard lk(mu_);
  flush_spills_locked();
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

// "The local queue is short" measured in time, not tasks: a task queued here
// starts after about queued / slots x (mean task time), one sent away after a
// hop (global scheduler, other node: ~kSpillHopUs of messages). So empty
// tasks queue ~20 deep per slot before spilling (sending them away costs more
// CPU than running them), while tasks of a millisecond or more spill as soon
// as every slot has one waiting. The mean is per function (a job switching
// from tiny tasks to long ones must not queue the long ones deep); a function
// not run here yet counts as long. --prism-local-queue fixes the count.
size_t NodeRuntime::local_queue_limit(std::optional<uint64_t> mean_ns) const {
  if (config_.local_queue > 0) return static_cast<size_t>(config_.local_queue);
  if (!mean_ns) return static_cast<size_t>(pool_.slots());
  const double task_us = kTaskOverheadUs + 1e-3 * static_cast<double>(*mean_ns);
  const double per_slot = std::clamp(kSpillHopUs / task_us, 1.0, kMaxQueuePerSlot);
  return static_cast<size_t>(per_slot * pool_.slots());
}

// A moving average (1/8 per run) of the function's run time here.
void NodeRuntime::note_task_time_locked(const detail::RemoteFunctionInfo& function, int64_t us) {
  const uint64_t sample = static_cast<uint64_t>(std::max<int64_t>(us, 0)) * 1000;
  if (function.index >= task_ns_.size()) task_ns_.resize(function.index + 1, 0);
  uint64_t& slot = task_ns_[function.index];
  slot = slot == 0 ? sample + 1 : slot - (slot - 1) / 8 + sample / 8;
}

std::optional<uint64_t> NodeRuntime::mean_task_ns_locked(
    const detail::RemoteFunctionInfo* function) const {
  if (!function || function->index >= task_ns_.size() || task_ns_[function->index] == 0)
    return std::nullopt;
  return task_ns_[function->index] - 1;
}

// Runs on a worker thread.
// For a local task `spec` lives in its in_flight_ record, erased at the end:
// nothing here reads it after that.
void NodeRuntime::execute(TaskSpec& spec) {
  Scope scope(this);
  struct CurrentTask {  // nested tasks submitted from here name this one as parent
    ObjectId saved = tls_current_task;
    explicit CurrentTask(const ObjectId& id) { tls_current_task = id; }
    ~CurrentTask() { tls_current_task = saved; }
  } current_task(spec.id);
  std::optional<TaskAcks> acks;  // only arguments can need them (see TaskAcks)
  if (!spec.args.empty()) acks.emplace().task_owner = spec.id.owner_rank;
  const int64_t t0 = Timeline::now_us();
  const int64_t outer_not_own_us = tls_not_own_us;
  tls_not_own_us = 0;
  std::vector<std::byte> result;
  std::vector<detail::HandlePtr> contained;  // refs serialized inside the result
  std::vector<std::pair<ObjectId, int>> borrowed;  // by argument decoding (BorrowLog below)
  std::string error;
  try {
    if (!spec.fn) spec.fn = detail::find_function(spec.function);  // sent by another rank
    const auto* fn = spec.fn;
    if (!fn)
      throw RegistrationError("function '" + spec.function + "' is not registered on rank " +
                              std::to_string(layout_.world_rank) +
                              " (every rank must run the same binary with PRISM_REMOTE)");
    // GPUs: the worker pool granted them before the task started (a device
    // is never shared beyond 1.0); the thread's CUDA device is the first.
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
            auto obj = store_.acquire(w.ref);  // pinned for the task's duration
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
            if (!st) throw Error("fetching argument " + std::to_string(i) + ": " + st.to_string());
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
    auto out = fn->invoke(fn->fn, args);
    result = std::move(out.bytes);
    contained = std::move(out.contained);
  } catch (const std::exception& e) {
    error = std::string(e.what()) + " [node " + std::to_string(layout_.world_rank) + "]";
  } catch (...) {
    error = "unknown exception [node " + std::to_string(layout_.world_rank) + "]";
  }
  const int64_t t1 = Timeline::now_us();
  const int64_t own_us = std::max<int64_t>(0, t1 - t0 - tls_not_own_us);
  tls_not_own_us = outer_not_own_us + (t1 - t0);  // run inline: not the outer task's own work
  if (timeline_.enabled())  // the event copies the name: build it only when recording
    timeline_.record({spec.name, "task", t0, t1 - t0, layout_.world_rank,
                      worker::WorkerPool::current_index(), 0, !error.empty()});
  if (acks) await_task_acks(*acks);  // the result lets the task's owner drop its arguments
  const ObjectId id = spec.id;  // `spec` may be gone after in_flight_.erase below
  ObjectValue v;
  if (!error.empty()) {
    v.kind = ObjectValue::Kind::kError;
    v.error = std::move(error);
  } else {
    v = make_value(id, std::move(result));
  }
  const int owner = static_cast<int>(id.owner_rank);
  std::lock_guard lk(mu_);
  if (spec.fn) note_task_time_locked(*spec.fn, own_us);  // before `spec` may go below
  if (v.kind == ObjectValue::Kind::kError) release_unborrowed_locked(spec, borrowed);
  ++stats_.tasks_executed;
  stats_.busy_us += static_cast<uint64_t>(t1 - t0);
  if (v.kind == ObjectValue::Kind::kError) ++stats_.tasks_failed;
  if (owner == layout_.world_rank) {
    if (auto it = in_flight_.find(id.seq); it != in_flight_.end()) {
      if (it->second->node >= 0) scheduler_.on_complete(it->second->node);
      const bool failed = v.kind == ObjectValue::Kind::kError;
      if (it->second->report_when_done)
        observer_.task_done(it->second->spec, failed, layout_.world_rank);
      else if (observer_.task_finished)
        observer_.task_finished(id, failed, layout_.world_rank);
      in_flight_.erase(it);
      ++stats_.tasks_finished;
    }
    complete_locked(id, std::move(v));
    if (auto* found = objects_.find(id); found && !contained.empty())
      (*found)->contained = std::move(contained);
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
  encode_task_result(id, v, contained_ids, w);
  if (Status st = send(owner, w); !st)
    PRISM_LOG_ERROR("result of {} to rank {}: {}", id.to_string(), owner, st.to_string());
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
  // Help while waiting: a local task no worker has started runs right here.
  if (!queued_here.expired() && !e->ready.load(std::memory_order_acquire))
    pool_.run_inline(queued_here);
  if (!e->ready.load(std::memory_order_acquire))
    wait_for([&] { return e->ready.load(std::memory_order_acquire); }, -1, nullptr, true, &e->wake);
  std::unique_lock lk(mu_);
  switch (e->value.kind) {
    case ObjectValue::Kind::kError:
      throw TaskError(e->task_name.empty() ? id.to_string() : e->task_name, e->value.error);
    case ObjectValue::Kind::kInline:
      return {e->value.bytes, e};  // the entry keeps the bytes alive
    case ObjectValue::Kind::kRemote:
      break;
  }
  const RemoteLocation loc = e->value.location;
  if (loc.holder == static_cast<uint32_t>(layout_.world_rank)) {  // zero copy from our store
    lk.unlock();
    auto obj = store_.acquire(id);  // restores it if it was spilled
    if (!obj) {
      if (obj.status().code() == Errc::kOutOfMemory)
        throw ObjectStoreFullError(obj.status().message());
      throw Error(obj.status().message());
    }
    auto pinned = std::move(obj.value());
    return {pinned->bytes(), pinned};
  }
  if (e->fetched) return {{e->fetched->data(), loc.size}, e->fetched};
  lk.unlock();
  // Pull it with RDMA outside the lock; concurrent getters may both fetch,
  // the first copy wins. The copy lives in a pooled buffer (warm, registered;
  // never zero-filled) that goes back to the pool when the last reader lets go.
  auto buf = store_.allocate(loc.size + kFetchSlack);
  if (!buf)
    throw Error("no memory for a copy of " + id.to_string() + ": " + buf.status().message());
  auto copy = std::make_shared<FetchedCopy>(std::move(buf.value()));
  Status st = fetch(id, loc, copy->buffer.data(), id.to_string(), &copy->offset);
  if (!st)
    throw Error("fetching " + id.to_string() + " from rank " + std::to_string(loc.holder) + ": " +
                st.to_string());
  lk.lock();
  if (!e->fetched) e->fetched = std::move(copy);
  return {{e->fetched->data(), loc.size}, e->fetched};
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

// --------------------------------------------------------------- messages ---

void NodeRuntime::on_message(int src, std::span<const std::byte> msg) {
  // Whichever thread polled the message (a pool thread between jobs, a
  // waiting driver), refs dropped while handling it are released here, also
  // with several runtimes in one process (tests).
  Scope scope(this);
  Reader r(msg);
  const auto kind = r.get<MessageKind>();
  switch (kind) {
    case MessageKind::kSubmitTask:
      on_submit(src, r);
      return;
    case MessageKind::kSubmitTasks:
      if (Status st = for_each_batched(r,
                                       [&](std::span<const std::byte> body) {
                                         Reader one(body);
                                         on_submit(src, one);
                                       });
          !st)
        PRISM_LOG_ERROR("dropped a malformed batch of tasks from rank {}: {}", src, st.to_string());
      return;
    case MessageKind::kTaskResult:
      on_task_result(src, r);
      return;
    case MessageKind::kObjectStatusRequest:
      on_status_request(src, r);
      return;
    case MessageKind::kObjectStatusReply:
      on_status_reply(src, r);
      return;
    case MessageKind::kFreeObject:
      on_free(r);
      return;
    case MessageKind::kAddBorrower:
      on_add_borrower(src, r, /*ack=*/false);
      return;
    case MessageKind::kAddBorrowerAndAck:
      on_add_borrower(src, r, /*ack=*/true);
      return;
    case MessageKind::kBorrowerCounted:
      on_borrower_counted(r);
      return;
    case MessageKind::kFetchRequest:
      on_fetch_request(src, r);
      return;
    case MessageKind::kFetchReply:
      on_fetch_reply(r);
      return;
    case MessageKind::kFetchDone: {
      const auto req = r.get<uint64_t>();
      if (!r.finish("fetch done")) return;
      std::vector<DeferredFetch> retry;
      {
        std::shared_ptr<const object_store::StoredObject> unpinned;  // released before retrying
        std::lock_guard lk(mu_);
        if (auto it = pinned_reads_.find({src, req}); it != pinned_reads_.end()) {
          unpinned = std::move(it->second);
          pinned_reads_.erase(it);
        }
        retry.swap(deferred_fetches_);
      }
      for (const auto& d : retry) serve_fetch(d.src, d.req, d.id);  // may defer again
      return;
    }
    case MessageKind::kRemoveBorrower:
      on_remove_borrower(src, r);
      return;
    case MessageKind::kTransitDone: {
      const ObjectId id = decode_object_id(r);
      if (!r.finish("transit done")) return;
      std::lock_guard lk(mu_);
      transit_done_locked(id);
      return;
    }
    case MessageKind::kShutdown:
      shutdown_code_ = r.get<int32_t>();
      shutdown_ = true;
      engine_.notify_all();
      return;
    default:
      if (static_cast<uint8_t>(kind) >= static_cast<uint8_t>(MessageKind::kGcsFirst) &&
          static_cast<uint8_t>(kind) <= static_cast<uint8_t>(MessageKind::kGcsLast) &&
          gcs_handler_) {
        gcs_handler_(src, msg);
        return;
      }
      PRISM_LOG_WARN("rank {}: dropped a malformed message from rank {} (kind {}, {} bytes)",
                     layout_.world_rank, src, static_cast<int>(kind), msg.size());
  }
}

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
  if (src == global_scheduler_) received_from_global_.fetch_add(1, std::memory_order_relaxed);
  auto demand = spec->resources;
  TaskSpec* job_spec = spec.get();
  pool_.submit([this, job_spec] { execute(*job_spec); }, std::move(demand), false, std::move(spec));
  send_heartbeat();
}

void NodeRuntime::send_heartbeat(bool urgent) {
  if (global_scheduler_ < 0) return;
  const int64_t now = Timeline::now_us();
  const int64_t last = last_heartbeat_us_.load(std::memory_order_relaxed);
  const bool due = now - last >= static_cast<int64_t>(config_.heartbeat_us);
  if (!due && !pool_.idle() && !urgent) return;
  const auto load = pool_.load();
  std::unique_lock lk(heartbeat_mu_, std::try_to_lock);
  if (!lk) return;  // another thread is reporting right now
  scheduler::NodeLoad l{load.queued, load.running,
                        received_from_global_.load(std::memory_order_relaxed)};
  // Nothing new since the last report (an idle node stays silent).
  if (l.queued == last_heartbeat_.queued && l.running == last_heartbeat_.running &&
      l.received_from_global == last_heartbeat_.received_from_global)
    return;
  last_heartbeat_ = l;
  last_heartbeat_us_.store(now, std::memory_order_relaxed);
  Writer w(48);
  w.put(MessageKind::kNodeLoad);
  encode_node_load(l, w);
  if (Status st = send(global_scheduler_, w); !st)
    PRISM_LOG_WARN("heartbeat to rank {}: {}", global_scheduler_, st.to_string());
}

void NodeRuntime::on_task_result(int src, Reader& r) {
  ObjectId id;
  ObjectValue v;
  std::vector<ObjectId> contained;
  if (Status st = decode_task_result(r, id, v, contained); !st) {
    PRISM_LOG_ERROR("dropped a malformed task result from rank {}: {}", src, st.to_string());
    return;
  }
  std::lock_guard lk(mu_);
  if (auto it = in_flight_.find(id.seq); it != in_flight_.end() && it->second->spec.id == id) {
    // The global scheduler fails only tasks it could not place: no executor
    // saw them, so the submitter's pins on their refs go now.
    if (src == global_scheduler_ && v.kind == ObjectValue::Kind::kError)
      unpin_task_refs_locked(*it->second);
    if (it->second->node >= 0) scheduler_.on_complete(it->second->node);
    if (observer_.task_finished)
      observer_.task_finished(id, v.kind == ObjectValue::Kind::kError, src);
    in_flight_.erase(it);
    ++stats_.tasks_finished;
  }
  auto* before = objects_.find(id);
  const bool fresh = !before || !(*before)->ready.load();
  complete_locked(id, std::move(v));
  if (!contained.empty()) {
    // The result keeps its refs: borrowing them releases the executor's pins.
    std::vector<detail::HandlePtr> held;
    for (const auto& rid : contained) held.push_back(borrow(rid, src));
    if (auto* found = objects_.find(id); found && fresh) (*found)->contained = std::move(held);
  }
  maybe_free_locked(id);
}

void NodeRuntime::on_status_request(int src, Reader& r) {
  const ObjectId id = decode_object_id(r);
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
  if (!e.ready.load()) {
    e.subscribers.push_back(src);
    return;
  }
  Writer w;
  w.put(MessageKind::kObjectStatusReply);
  encode_object_id(id, w);
  encode_object_value(e.value, w);
  if (Status st = send(src, w); !st) PRISM_LOG_WARN("status reply: {}", st.to_string());
}

void NodeRuntime::on_status_reply(int src, Reader& r) {
  const ObjectId id = decode_object_id(r);
  ObjectValue v;
  if (Status st = decode_object_value(r, v); !st) {
    PRISM_LOG_ERROR("dropped a malformed status reply from rank {}", src);
    return;
  }
  std::lock_guard lk(mu_);
  if (objects_.find(id)) complete_locked(id, std::move(v));  // else: let go meanwhile
}

void NodeRuntime::on_free(Reader& r) {
  const ObjectId id = decode_object_id(r);
  if (r.finish("free object") && store_.erase(id) && observer_.object_freed)
    observer_.object_freed(id);
}

}  // namespace prism::runtime
