#include "runtime/node_runtime_internal.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/thread_name.hpp"
#include "prism/remote.hpp"

namespace prism::runtime {
namespace internal {

thread_local NodeRuntime* tls_runtime = nullptr;
thread_local ObjectId tls_current_task;
thread_local uint32_t tls_current_attempt = 0;
thread_local int64_t tls_not_own_us = 0;
thread_local RunnerClock* tls_runner_clock = nullptr;
thread_local std::vector<std::pair<ObjectId, int>>* tls_borrow_log = nullptr;
thread_local ObjectId tls_current_actor;
thread_local GroupMember tls_group_member;

}  // namespace internal

using namespace internal;

namespace {

std::atomic<NodeRuntime*> process_runtime{nullptr};

// --prism-store-reuse-bytes; "auto": the whole capacity (the store keeps idle
// buffers within what live objects leave of it).
uint64_t reuse_bytes(const Config& c) {
  if (c.store_reuse_bytes != Config::kAutoReuse) return c.store_reuse_bytes;
  return c.store_capacity ? c.store_capacity : uint64_t{2} << 30;
}

}  // namespace

thread_local NodeRuntime::TaskAcks* NodeRuntime::tls_task_acks_ = nullptr;

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
      actor_host_(
          {.start_runner = [this](const actors::ActorId&,
                                  const std::shared_ptr<void>& c) { start_actor_runner(c); },
           .execute = [this](const actors::ActorId&, const std::shared_ptr<void>& c,
                             actors::Call& call) { execute_actor_call(c, call); },
           .reject = [this](actors::Call& call,
                            const std::string& why) { reject_actor_call(call, why); },
           .destroy = [this](const actors::ActorId& id,
                             const std::shared_ptr<void>& c) { destroy_actor(id, c); }}),
      timeline_(!config.timeline.empty()) {
  stats_.slots = static_cast<uint64_t>(pool_.slots());
  lost_ = std::vector<std::atomic<bool>>(static_cast<size_t>(std::max(1, layout_.world_size)));
  // The global scheduler lives on the first GCS rank (runtime/gcs_role.cpp).
  if (config.global_scheduler && !layout_.gcs_ranks.empty() && layout_.num_nodes > 1) {
    global_scheduler_ = layout_.gcs_ranks.front();
    scheduler_.use_global_scheduler(true);
  }
  transport_.set_handler([this](int src, std::span<const std::byte> m) { on_message(src, m); });
  engine_.set_deferred_work([this] { run_deferred_work(); });
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
uint32_t NodeRuntime::current_attempt() {
  return tls_current_attempt;
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
  // A member waiting for the others lends its CPU, as get() does: members
  // sharing a node rank must not starve each other.
  groups_ = std::make_unique<groups::GroupRegistry>(
      layout_.world_rank, inter_node_,
      groups::LocalGroup::WaitHooks{[this] {
                                      if (worker::WorkerPool::current() == &pool_)
                                        pool_.lend_slot();
                                    },
                                    [this] {
                                      if (worker::WorkerPool::current() == &pool_)
                                        pool_.reclaim_slot();
                                    }});
  // Heartbeats before the pool: a worker polling the transport runs
  // on_message, which reads heartbeats_ on a kAlive; creating the threads
  // after the assignment orders it before every such read (TSan found the
  // race when a peer's heartbeat arrived while start() was still here).
  start_heartbeats();
  pool_.start();
  progress_thread_ = std::thread([this] {
    Scope scope(this);
    name_this_thread("prism-progress");
    engine_.run();
  });
}

void NodeRuntime::stop() {
  if (stopped_.exchange(true)) return;
  if (heartbeats_) heartbeats_->stop();
  engine_.stop();
  const size_t dropped = pool_.stop();
  if (dropped) PRISM_LOG_WARN("shutdown dropped {} queued tasks", dropped);
  if (progress_thread_.joinable()) progress_thread_.join();
  // Messages that still arrive (during the shutdown barrier) must not reach
  // a runtime that is about to be destroyed.
  transport_.set_handler([](int, std::span<const std::byte>) {});
}

Status NodeRuntime::send(int dst, const Writer& w) {
  if (is_lost(dst)) return {Errc::kTransport, "rank " + std::to_string(dst) + " was lost"};
  auto& buf = const_cast<Writer&>(w).buffer();
  return transport_.send(dst, buf);
}

void NodeRuntime::broadcast_shutdown(int exit_code) {
  Writer w;
  w.put(MessageKind::kShutdown);
  w.put<int32_t>(exit_code);
  for (int r = 0; r < layout_.world_size; ++r) {
    if (r == layout_.world_rank || lost_[static_cast<size_t>(r)].load()) continue;
    if (Status st = send(r, w); !st) PRISM_LOG_ERROR("shutdown to rank {}: {}", r, st.to_string());
  }
  shutdown_code_ = exit_code;
  shutdown_ = true;
  engine_.notify_all();
  transport::ProgressEngine::notify(shutdown_word_);
}

void NodeRuntime::ask_to_settle_records() {
  {
    std::lock_guard lk(mu_);
    records_settled_.assign(static_cast<size_t>(layout_.num_nodes), 0);
  }
  Writer w(8);
  w.put(MessageKind::kSettleRecords);
  for (int r = 0; r < layout_.num_nodes; ++r)
    if (r != layout_.world_rank && !is_lost(r)) (void)send(r, w);  // a lost rank answers nothing
}

void NodeRuntime::wait_for_settled_records(int64_t timeout_us) {
  const auto all_settled = [this] {
    for (int r = 0; r < layout_.num_nodes; ++r)
      if (r != layout_.world_rank && !is_lost(r) && !records_settled_[static_cast<size_t>(r)])
        return false;
    return true;
  };
  if (!wait_at_shutdown(all_settled, timeout_us))
    PRISM_LOG_WARN("rank {}: node ranks did not settle their GCS records within {} ms",
                   layout_.world_rank, timeout_us / 1000);
}

bool NodeRuntime::wait_for_settle_request() {
  engine_.wait_until([this] { return shutdown_.load() || settle_asked_.load(); },
                     transport::ProgressEngine::Clock::time_point::max(),
                     transport::ProgressEngine::kObjects, &shutdown_word_);
  return !shutdown_.load();
}

void NodeRuntime::report_records_settled() {
  Writer w(8);
  w.put(MessageKind::kRecordsSettled);
  (void)send(0, w);  // the driver's rank; if it is gone, so is the job
}

int NodeRuntime::wait_for_shutdown() {
  engine_.wait_until([this] { return shutdown_.load(); },
                     transport::ProgressEngine::Clock::time_point::max(),
                     transport::ProgressEngine::kObjects, &shutdown_word_);
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
    case MessageKind::kForwardedObject:
      on_status_reply(src, r, /*forwarded=*/true);
      return;
    case MessageKind::kStealOrder:
      on_steal_order(src, r);
      return;
    case MessageKind::kPushedTasks:
      on_pushed_tasks(src, r);
      return;
    case MessageKind::kGroupReserve:
      on_group_reserve(src, r);
      return;
    case MessageKind::kGroupReserveReply:
      on_group_reserve_reply(src, r);
      return;
    case MessageKind::kGroupRelease:
      on_group_release(r);
      return;
    case MessageKind::kGroupBroken:
      on_group_broken(r);
      return;
    case MessageKind::kAlive:
      if (heartbeats_) heartbeats_->heard(src);
      return;
    case MessageKind::kNodeLost: {
      const auto rank = r.get<int32_t>();
      const std::string why = r.get_string();
      if (!r.finish("node lost")) return;
      node_lost(rank, why);
      return;
    }
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
    case MessageKind::kForwardObject:
      on_forward_object(src, r);
      return;
    case MessageKind::kForwardFailed:
      on_forward_failed(r);
      return;
    case MessageKind::kKillActor:
      on_kill_actor(src, r);
      return;
    case MessageKind::kActorDied:
      on_actor_died(src, r);
      return;
    case MessageKind::kObjectLost:
      on_object_lost(src, r);
      return;
    case MessageKind::kActorCheckpoint:
      on_actor_checkpoint(src, r);
      return;
    case MessageKind::kSettleRecords:
      if (!r.finish("settle records")) return;
      settle_asked_ = true;
      transport::ProgressEngine::notify(shutdown_word_);
      return;
    case MessageKind::kRecordsSettled: {
      if (!r.finish("records settled")) return;
      std::lock_guard lk(mu_);
      if (src >= 0 && static_cast<size_t>(src) < records_settled_.size()) {
        records_settled_[static_cast<size_t>(src)] = 1;
        engine_.notify_all();
      }
      return;
    }
    case MessageKind::kShutdown:
      shutdown_code_ = r.get<int32_t>();
      shutdown_ = true;
      engine_.notify_all();
      transport::ProgressEngine::notify(shutdown_word_);
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

void NodeRuntime::send_heartbeat(bool urgent) {
  if (global_scheduler_ < 0) return;
  const int64_t now = Timeline::now_us();
  const int64_t last = last_heartbeat_us_.load(std::memory_order_relaxed);
  const bool due = now - last >= static_cast<int64_t>(config_.heartbeat_us);
  if (!due && !pool_.idle() && !urgent) return;
  // One thread reports at a time. A report asked for while another is being
  // sent is not dropped: the sender reads the state again before it leaves
  // (a dropped report could leave an idle node's last word "busy", or its
  // received pushes uncounted, so the global scheduler never gave it work
  // again: an idle node stays silent).
  heartbeat_again_.store(true, std::memory_order_release);
  for (;;) {
    std::unique_lock lk(heartbeat_mu_, std::try_to_lock);
    if (!lk) return;  // the sender will see heartbeat_again_
    while (heartbeat_again_.exchange(false, std::memory_order_acq_rel)) {
      const auto load = pool_.load();
      scheduler::NodeLoad l{load.queued,
                            load.running,
                            received_from_global_.load(std::memory_order_relaxed),
                            load.movable,
                            pushes_received_.load(std::memory_order_relaxed),
                            recent_task_us_.load(std::memory_order_relaxed) >= kAskAheadMinUs};
      // Nothing new since the last report (an idle node stays silent).
      if (l == last_heartbeat_) continue;
      last_heartbeat_ = l;
      last_heartbeat_us_.store(now, std::memory_order_relaxed);
      reported_movable_.store(l.movable, std::memory_order_relaxed);
      Writer w(48);
      w.put(MessageKind::kNodeLoad);
      encode_node_load(l, w);
      if (Status st = send(global_scheduler_, w); !st)
        PRISM_LOG_WARN("heartbeat to rank {}: {}", global_scheduler_, st.to_string());
    }
    lk.unlock();
    if (!heartbeat_again_.load(std::memory_order_acquire)) return;  // else asked for meanwhile
  }
}

}  // namespace prism::runtime
