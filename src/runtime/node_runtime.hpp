// NodeRuntime: everything a node rank runs — the owner table of the objects
// this process created, dependency resolution, the local scheduler's
// placement decisions, the worker pool and the object store — wired to one
// Transport. The driver's API calls and tasks' nested calls land here.
//
// Ownership (Ray's design): the process that submits a task owns its return
// object. Results go back to the owner; other ranks that hold a reference
// (borrowers) ask the owner for the value or its location.
//
// Threading: every public method is thread-safe. Message handlers run on the
// thread that holds the transport's poll role and never block.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actor/actor_host.hpp"
#include "common/adaptive_mutex.hpp"
#include "common/block_pool.hpp"
#include "common/config.hpp"
#include "common/ids.hpp"
#include "group/local_group.hpp"
#include "group/placement.hpp"
#include "membership/liveness.hpp"
#include "object_store/object_store.hpp"
#include "prism/actor.hpp"
#include "prism/api.hpp"
#include "prism/collective.hpp"
#include "prism/detail/core.hpp"
#include "runtime/layout.hpp"
#include "runtime/object_table.hpp"
#include "runtime/protocol.hpp"
#include "runtime/timeline.hpp"
#include "scheduler/scheduler.hpp"
#include "transport/progress_engine.hpp"
#include "worker/topology.hpp"
#include "worker/worker_pool.hpp"

namespace prism::runtime {

/// Counters for the run summary.
struct NodeStats {
  uint64_t tasks_submitted = 0;   // by this process (it owns their results)
  uint64_t tasks_finished = 0;    // of those, results received
  uint64_t tasks_executed = 0;    // run on this node's workers
  uint64_t tasks_failed = 0;      // of those, threw
  uint64_t tasks_rebuilt = 0;     // run again to make a result lost with a node rank
  uint64_t actors_restarted = 0;  // created again after their node rank was lost, or a crash
  uint64_t actor_calls_retried = 0;  // sent again after their actor's instance died
  uint64_t checkpoints_saved = 0;    // actor checkpoints taken here
  uint64_t busy_us = 0;           // worker time spent in tasks
  uint64_t objects_put = 0;
  uint64_t bytes_fetched = 0;  // pulled from other nodes' stores
  uint64_t slots = 0;
  uint64_t actors_created = 0;  // by this process (it owns them)
  uint64_t actors_hosted = 0;   // constructed on this node, ever
  uint64_t actors_alive = 0;    // living on this node now
  uint64_t actor_calls = 0;     // methods run on this node
  uint64_t tasks_pushed = 0;    // queued here, moved to an idle node by a steal order
  uint64_t tasks_taken = 0;     // moved here from a busy node by a steal order
};

class NodeRuntime {
 public:
  NodeRuntime(const Config& config, transport::Transport& transport, ClusterLayout layout,
              std::vector<scheduler::NodeResources> nodes, const worker::Topology* topology,
              transport::ProgressEngine::HostSpinBudget host_spin = {});
  ~NodeRuntime();
  NodeRuntime(const NodeRuntime&) = delete;
  NodeRuntime& operator=(const NodeRuntime&) = delete;

  /// Where messages of the GCS kinds (0x40..0x5F) go on this rank: the GCS
  /// client's handler. Set before start(). Runs on the polling thread.
  void set_gcs_handler(transport::MessageHandler handler) { gcs_handler_ = std::move(handler); }
  /// Observers of the task and object lifecycle (e.g. the GCS agent that
  /// records lineage and locations asynchronously). Set before start(); they
  /// run on the thread where the event happens and must not block.
  // A task this rank submits is reported either twice (task_dispatched, then
  // task_finished) or, when it runs here and its function is known to be
  // short, once when it finishes (task_done, with its spec): the owner is its
  // executor, so an earlier row would outlive nothing, and on a busy node the
  // second report was a third of the lineage cost.
  struct Observer {
    std::function<void(const TaskSpec&, int node)> task_dispatched;
    std::function<void(const ObjectId&, bool failed, int executor)> task_finished;
    std::function<void(const TaskSpec&, bool failed, int executor)> task_done;
    std::function<void(const ObjectId&, uint64_t size)> object_sealed;  // stored on this rank
    std::function<void(const ObjectId&)> object_freed;                  // dropped from this rank
    std::function<void(const ActorEvent&)> actor_changed;               // an actor this rank owns
    std::function<void(int rank)> node_lost;  // the driver's rank declared it lost
  };
  void set_observer(Observer observer) { observer_ = std::move(observer); }
  const ClusterLayout& layout() const noexcept { return layout_; }
  transport::Transport& transport() noexcept { return transport_; }

  /// Starts the progress thread and the workers.
  void start();
  /// Stops workers and the progress thread. Idempotent.
  void stop();

  /// Driver: tells every rank to shut down with `exit_code`.
  void broadcast_shutdown(int exit_code);
  /// Blocks until a shutdown message arrives; returns its exit code.
  int wait_for_shutdown();

  // The job's end, before the GCS ranks stop (runtime/run.cpp): every node
  // rank's last records must reach the GCS, not only the driver's (rows of
  // tasks and actors owned by a task elsewhere). docs/fault-tolerance.md.
  /// Driver: asks every other live node rank to settle its records.
  void ask_to_settle_records();
  /// Driver: waits (bounded) until every live node rank asked has answered.
  void wait_for_settled_records(int64_t timeout_us);
  /// Other node ranks: blocks until the driver asks them to settle (true) or
  /// the job shuts down (false).
  bool wait_for_settle_request();
  /// Other node ranks: tells the driver that this rank's records are settled.
  void report_records_settled();

  // ---- the API (see include/prism/detail/core.hpp) ----
  detail::HandlePtr submit(const detail::RemoteFunctionInfo& function,
                           std::vector<detail::TaskArg> args, const TaskOptions& options);
  detail::HandlePtr put(std::vector<std::byte> encoded,
                        std::vector<detail::HandlePtr> contained = {});
  detail::HandlePtr put_contiguous(std::span<const std::byte> header,
                                   std::span<const std::byte> payload);
  detail::ValueBytes get(const detail::HandlePtr& handle);
  std::vector<bool> wait(const std::vector<detail::HandlePtr>& handles, size_t num_returns,
                         int64_t timeout_us);
  /// `outer`: the object whose value the ref was decoded out of (a get()),
  /// nil if none; see DecodeScope and docs/objects.md.
  detail::HandlePtr borrow(const ObjectId& id, int sender = -1, const ObjectId& outer = {});
  void release(const ObjectId& id) noexcept;
  void note_shared(const ObjectId& id) noexcept;

  // ---- actors (actor_calls.cpp, docs/actors.md) ----
  detail::HandlePtr create_actor(const detail::ActorCtorInfo& ctor,
                                 std::vector<detail::TaskArg> args, const ActorOptions& options);
  detail::HandlePtr submit_actor_call(const detail::HandlePtr& actor,
                                      const detail::ActorMethodInfo& method,
                                      std::vector<detail::TaskArg> args);
  void kill_actor(const detail::HandlePtr& actor, bool restart = false);
  detail::HandlePtr named_actor(const std::string& name, const char* class_key);
  /// How actor names are claimed and looked up (the GCS agent's, blocking
  /// calls from API threads); without them named actors are refused. Set
  /// before start().
  struct ActorNames {
    std::function<Status(const std::string& name, const ObjectId& actor,
                         const std::string& class_key)>
        claim;
    std::function<Expected<std::pair<ObjectId, std::string>>(const std::string& name)> find;
  };
  void set_actor_names(ActorNames names) { actor_names_ = std::move(names); }
  /// Kills the actors living here (shutdown: their destructors run).
  void kill_local_actors(const std::string& reason);
  /// Waits (bounded) until every actor this rank ended has been reported dead
  /// by its node, so that its GCS row says dead before the job ends.
  void wait_for_ended_actors(int64_t timeout_us);

  // ---- actor groups, collectives, MPI tasks (actor_groups.cpp,
  // mpi_tasks.cpp; docs/mpi-interop.md) ----
  /// n members placed at once (all or none; waits while they do not fit).
  std::vector<detail::HandlePtr> create_actor_group(const detail::ActorCtorInfo& ctor,
                                                    std::vector<detail::TaskArg> args,
                                                    const ActorOptions& options, size_t n);
  /// The calling member's part of a collective (a group member's method or
  /// an MPI task's rank); Error outside one.
  void run_collective(const detail::CollectiveRequest& request);
  int group_rank() const;
  int group_size() const;
  /// The calling member's MPI communicator (an MPI_Comm*).
  void* group_communicator();
  /// How node ranks of a group meet (MPI); without one, a group's members
  /// must share one node rank. Set before start(); must outlive the runtime.
  void set_inter_node(groups::InterNode* inter) noexcept { inter_node_ = inter; }

  // ---- lost node ranks (failures.cpp, docs/fault-tolerance.md) ----
  /// Node rank `rank` is gone: its tasks run elsewhere (or fail), what it
  /// held or owned fails with an error naming it, its actors are dead. The
  /// driver's rank tells every other rank. Idempotent.
  void node_lost(int rank, const std::string& why);
  /// Whether any rank of the job was lost (shutdown then skips the MPI
  /// collectives, which would wait for it forever).
  bool lost_any() const noexcept { return lost_any_.load(); }
  bool is_lost(int rank) const noexcept {
    return lost_any_.load(std::memory_order_relaxed) && rank >= 0 &&
           static_cast<size_t>(rank) < lost_.size() && lost_[static_cast<size_t>(rank)].load();
  }
  /// A remote object's value whose copy was on a lost node rank.
  bool on_lost_rank(const ObjectValue& v) const noexcept {
    return v.kind == ObjectValue::Kind::kRemote && is_lost(static_cast<int>(v.location.holder));
  }
  std::vector<int> lost_ranks() const;

  /// The run number of the task running on the calling thread (0: first).
  static uint32_t current_attempt();
  /// GPU ids held by the task running on the calling thread (empty if none).
  static std::vector<int> current_gpu_ids();
  int node_id() const noexcept { return layout_.world_rank; }
  int num_nodes() const noexcept { return layout_.num_nodes; }
  /// What every node rank offers (totals), in node order.
  std::vector<scheduler::NodeResources> nodes() const;
  int world_rank() const noexcept { return layout_.world_rank; }
  NodeStats stats() const;
  /// Whether this process has a record of the object (for tests).
  bool has_object(const ObjectId& id) const;
  /// The mean of a function's own run time on this node (ns; waits and tasks
  /// run inline meanwhile excluded), if it ran here (for tests and tools).
  std::optional<uint64_t> mean_task_ns(std::string_view function) const;
  MemoryStats memory_stats() const;
  /// Takes the recorded timeline events (empty when the timeline is off).
  std::vector<TimelineEvent> take_timeline() { return timeline_.take(); }
  const object_store::ObjectStore& store() const noexcept { return store_; }
  transport::ProgressEngine& engine() noexcept { return engine_; }

  /// The runtime of the calling thread (driver, worker or progress thread),
  /// else the process's runtime (threads the driver starts), else nullptr.
  static NodeRuntime* current() noexcept;
  /// The process's runtime, for threads with no Scope; set by prism::run.
  static void set_process_runtime(NodeRuntime* rt) noexcept;
  /// Makes `rt` the calling thread's runtime until the scope ends.
  class Scope {
   public:
    explicit Scope(NodeRuntime* rt) noexcept;
    ~Scope();

   private:
    NodeRuntime* previous_;
  };

 private:
  struct ObjectEntry;
  struct PendingTask;
  struct Lineage;
  struct TaskAcks;    // node_runtime.cpp
  struct LocalActor;  // actor_calls.cpp
  using EntryPtr = std::shared_ptr<ObjectEntry>;
  // Task records and their map nodes come from BlockPools (common/block_pool.hpp).
  using PendingPtr = PooledPtr<PendingTask>;
  using PendingMap =
      std::unordered_map<uint64_t, PendingPtr, std::hash<uint64_t>, std::equal_to<uint64_t>,
                         PoolAllocator<std::pair<const uint64_t, PendingPtr>>>;

  void on_message(int src, std::span<const std::byte> msg);
  void on_submit(int src, Reader& r);
  void on_task_result(int src, Reader& r);
  void on_status_request(int src, Reader& r);
  void on_status_reply(int src, Reader& r, bool forwarded = false);
  // Completes `id` here with a peer's value `v` (or asks its owner again if
  // `v` is held by a lost rank); false when no entry here holds `id`.
  bool accept_value_locked(const ObjectId& id, ObjectValue& v);
  void on_free(Reader& r);
  void on_add_borrower(int src, Reader& r, bool ack);
  void on_borrower_counted(Reader& r);
  void await_task_acks(TaskAcks& acks);
  static constexpr int64_t kTaskAcksTimeoutUs = 10'000'000;
  void on_remove_borrower(int src, Reader& r);
  // A ref leaves in a message: keep its object until the receiver is counted
  // (TransitDone ends the pin in transit_done_locked).
  void pin_for_trip_locked(const ObjectId& id);
  void transit_done_locked(const ObjectId& id);
  void release_transit_pin_locked(const ObjectId& id, int sender);
  // Reports this node's load to the global scheduler: at most once per
  // heartbeat interval while busy, at once when it turns idle, never when idle.
  // urgent: even if one went less than --prism-heartbeat-us ago (still
  // not when another thread is sending one, nor when nothing changed).
  void send_heartbeat(bool urgent = false);
  void send_id_message(MessageKind kind, int dst, const ObjectId& id, int64_t extra = -1);

  // The slot stays valid until the entry is erased; copy it to keep the entry.
  const EntryPtr& entry_locked(const ObjectId& id);
  void request_status_locked(const ObjectId& id, ObjectEntry& e);
  void complete_locked(const ObjectId& id, ObjectValue value);
  void resolve_arg_locked(PendingTask& task, size_t arg, const ObjectId& dep_id,
                          const ObjectEntry& dep);
  static void fill_arg(WireArg& w, size_t arg, const ObjectId& dep_id, const ObjectEntry& dep,
                       std::string& error);

  // Tasks sent ahead of their arguments (kPendingRef), held here until the
  // arguments are ready (task_execution.cpp). Their keys in an entry's
  // dependents carry kHeldBit, apart from this process's own task seqs.
  struct HeldTask {
    std::shared_ptr<TaskSpec> spec;
    size_t unresolved = 0;
    std::string error;  // an argument failed: the task fails without running
  };
  static constexpr uint64_t kHeldBit = uint64_t{1} << 63;
  std::unordered_map<uint64_t, std::unique_ptr<HeldTask>> held_;  // (mu_)
  uint64_t next_held_ = 1;                                        // (mu_)
  void hold_for_args(std::shared_ptr<TaskSpec> spec);
  void resolve_held_locked(uint64_t key, size_t arg, const ObjectId& id, const ObjectEntry& e);
  void start_held_locked(std::unique_ptr<HeldTask> held);
  // Tasks from other ranks queued, held or running here, and where each
  // one's result goes besides its owner (ForwardObject; this rank for its
  // own held tasks).
  // Guarded by live_mu_ (taken after mu_, never before it): the polling
  // thread adds every task it takes in without the runtime lock.
  std::mutex live_mu_;
  std::unordered_map<ObjectId, std::vector<int>, ObjectIdHash> live_tasks_;
  void on_forward_object(int src, Reader& r);
  void on_forward_failed(Reader& r);
  void subscribe_locked(const ObjectId& id, int dst);
  void forward_result_locked(const ObjectId& id, const ObjectValue& v, std::vector<int> to);
  // A forwarded result can overtake the task it is for (producer and owner
  // are different senders): kept here until that task arrives and takes it
  // (hold_for_args), or for kEarlyValueTtlUs at most (a copy whose task was
  // served by another copy meanwhile). Guarded by mu_ (on_status_reply).
  struct EarlyValue {
    ObjectValue value;
    int64_t arrived_us = 0;
  };
  std::unordered_map<ObjectId, EarlyValue, ObjectIdHash> early_values_;
  std::deque<std::pair<int64_t, ObjectId>> early_order_;  // arrival order, for expiry
  static constexpr int64_t kEarlyValueTtlUs = 60'000'000;
  void keep_early_locked(const ObjectId& id, ObjectValue v);
  std::optional<ObjectValue> take_early_value_locked(const ObjectId& id);
  void dispatch_locked(PendingPtr task);
  bool sends_ahead(const PendingTask& task) const;
  void dispatch_ahead_locked(PendingPtr task);
  void retire_task_locked(const ObjectId& id, bool failed, int executor);
  void deliver_result_locked(const ObjectId& id, ObjectValue v,
                             std::vector<detail::HandlePtr> contained, uint32_t attempt = 0);
  // Failures (failures.cpp, docs/fault-tolerance.md): the owner runs a task
  // again when a run was lost with its node rank, or threw and the task
  // retries exceptions, while it has retries left. True if it went again.
  bool retry_locked(const ObjectId& id, const ObjectValue& v, const std::string& lost = {});
  bool earlier_run_locked(const ObjectId& id, uint32_t attempt, int src) const;
  void redispatch_locked(PendingPtr task);
  void node_lost_locked(int rank, const std::string& why);
  // A holder's copy of an object is gone (its spill file was deleted): its
  // owner makes it again from its lineage or fails it (failures.cpp).
  void copy_lost(const ObjectId& id, const std::string& why);
  void copy_lost_locked(const ObjectId& id, int holder, const std::string& why);
  void on_object_lost(int src, Reader& r);
  void forget_lost_copy(const ObjectId& id, const EntryPtr& e);
  Expected<std::shared_ptr<const object_store::StoredObject>> acquire_local(const ObjectId& id);
  // Seals `buffer` as `id` here; waits (bounded) while only readers' pins
  // keep the store from having room, as acquire_local does.
  Expected<std::shared_ptr<const object_store::StoredObject>> seal_when_room(
      const ObjectId& id, object_store::Buffer buffer, uint64_t size);
  // How long both wait for readers to let go, and one step of it (fetch.cpp).
  static constexpr std::chrono::seconds kReadersWait{30};
  bool pause_for_readers(std::chrono::steady_clock::time_point deadline);
  // Lineage (failures.cpp): what a finished task leaves to make its result
  // again, and making it again.
  std::shared_ptr<Lineage> lineage_of_locked(const PendingTask& task) const;
  static std::shared_ptr<Lineage> make_lineage(const PendingTask& task);
  bool rebuild_locked(const ObjectId& id, ObjectEntry& e);
  void keep_actor_lineage_locked(const PendingTask& creation);
  // Actor restarts (actor_restarts.cpp, docs/fault-tolerance.md). An actor
  // that lived on a lost rank, or crashed: restarted by its owner while it
  // has restarts left, else dead; its callers send their calls again
  // (max_task_retries) once they know where it lives now.
  void actor_lost_locked(const ObjectId& id, ObjectEntry& e, const std::string& lost, int rank);
  void actor_gone_locked(const ObjectId& id, uint32_t incarnation, const std::string& why,
                         int lost_rank);
  bool retry_actor_call_locked(PendingMap::iterator it, const ObjectValue& v);
  bool resend_actor_call_locked(PendingMap::iterator it, bool unpin);
  void fail_actor_call_locked(PendingTask& task, const std::string& why, bool unpin);
  void restart_actor_locked(const ObjectId& id, ObjectEntry& e, const std::string& why);
  void end_actor_locked(const ObjectId& id, ObjectEntry& e, const std::string& why);
  void actor_died_locked(const ObjectId& id, uint32_t incarnation, const std::string& why,
                         bool restartable);
  void order_actor_calls_locked(std::vector<std::pair<uint64_t, size_t>>& deps);
  void save_checkpoint(LocalActor& la);
  void on_actor_checkpoint(int src, Reader& r);
  std::unordered_set<ObjectId, ObjectIdHash> crash_kills_;  // (mu_) killed as a crash: restart
  // (mu_) Actors this rank owns and ended (prism::kill, last handle gone),
  // by the node they lived on, until their node reports them dead: the
  // driver waits for these reports before the job's last GCS records.
  std::unordered_map<ObjectId, int, ObjectIdHash> ending_actors_;
  void heard_actor_end_locked(const ObjectId& id);
  // Waits (bounded, off any CPU slot) until `done_locked`, checked under
  // mu_, holds; false if it timed out. The actor side of shutdown.
  bool wait_at_shutdown(const std::function<bool()>& done_locked, int64_t timeout_us);
  std::optional<detail::ValueBytes> get_ready(const ObjectId& id,
                                              const std::shared_ptr<ObjectEntry>& e,
                                              std::unique_lock<AdaptiveRecursiveMutex>& lk);
  void start_heartbeats();
  std::unique_ptr<membership::Heartbeats> heartbeats_;
  std::vector<std::atomic<bool>> lost_;  // by world rank
  std::atomic<bool> lost_any_{false};
  std::map<int, std::string> lost_why_;  // (mu_) lost rank -> why
  // Objects whose status was to be asked of a lost owner: they fail in the
  // next deferred work (not in the asking call, whose caller may still be
  // registering what waits for them).
  std::vector<ObjectId> orphaned_;  // (mu_)
  void fail_orphaned_locked();
  // What a lost rank owned here ends with it (fate sharing): its actors
  // die, its objects leave the store, its held tasks go, its groups'
  // reservations are released.
  void end_what_lost_rank_owned(int rank, const std::string& why);
  // "was lost with node rank K (why)", for errors about what went with it.
  std::string lost_reason(int rank) const;
  void unpin_task_refs_locked(const PendingTask& task);
  void fail_unsent_locked(const PendingTask& task, std::string why);
  void flush_spills_locked();
  // The engine's deferred work: spilled tasks go out, orphaned objects fail.
  void run_deferred_work();
  void release_unborrowed_locked(const TaskSpec& spec,
                                 std::vector<std::pair<ObjectId, int>>& borrowed);
  void maybe_free_locked(const ObjectId& id);
  // Runs a task on this thread: a function, an actor's constructor, or a
  // method of `actor` (a call).
  void execute(TaskSpec& spec, LocalActor* actor = nullptr);
  detail::InvokeResult construct_actor(TaskSpec& spec, std::span<const detail::ArgValue> args);

  // Groups (actor_groups.cpp, mpi_tasks.cpp). Each member's resources are
  // reserved on its node before anything is created there (two-phase:
  // reserve everywhere or release everywhere and try again).
  struct Reservation {
    scheduler::ResourceDemand demand;
    scheduler::ResourceGrant grant;
  };
  struct ReserveRound;
  groups::InterNode* inter_node_ = nullptr;
  std::unique_ptr<groups::GroupRegistry> groups_;                               // made in start()
  std::map<std::pair<ObjectId, uint32_t>, Reservation> reservations_;           // (mu_)
  std::unordered_map<uint64_t, std::shared_ptr<ReserveRound>> reserve_rounds_;  // (mu_)
  std::atomic<uint64_t> next_reserve_round_{1};
  std::vector<int> reserve_group(const ObjectId& group, const std::string& label, size_t n,
                                 const scheduler::ResourceDemand& each, groups::Spread how);
  std::vector<std::pair<bool, int>> reserve_round(
      const ObjectId& group, const scheduler::ResourceDemand& each,
      const std::map<int, std::vector<uint32_t>>& by_node, const std::vector<int>& ask);
  std::pair<bool, int> reserve_here(const ObjectId& group, const scheduler::ResourceDemand& each,
                                    const std::vector<uint32_t>& members);
  void release_here(const ObjectId& group, const std::vector<uint32_t>& members);
  void reserve_rounds_lost_locked(int rank);
  std::optional<Reservation> take_reservation(const ObjectId& group, uint32_t index);
  void on_group_reserve(int src, Reader& r);
  void on_group_reserve_reply(int src, Reader& r);
  void on_group_release(Reader& r);
  void on_group_broken(Reader& r);
  /// Breaks `g` here and tells its other node ranks.
  void break_group_everywhere(groups::LocalGroup& g, const std::string& reason);
  PendingPtr new_member_task(std::string_view function, const ObjectId& group,
                             const std::string& label, uint32_t index, std::vector<int32_t> nodes);
  detail::HandlePtr submit_mpi_task(const detail::RemoteFunctionInfo& function,
                                    std::vector<detail::TaskArg> args, const TaskOptions& options);
  detail::InvokeResult run_mpi_rank(TaskSpec& spec, std::span<const detail::ArgValue> args);

  // Actors (actor_calls.cpp). A pending call depends on its actor's creation
  // object (the node it lives on) as if on an argument with this index.
  static constexpr size_t kActorDep = SIZE_MAX;
  PendingPtr new_task(std::string_view function);
  detail::HandlePtr enqueue_task_locked(PendingPtr task, std::vector<detail::TaskArg>& args);
  void add_actor_dep_locked(PendingTask& task, const ObjectId& actor);
  void resolve_actor_dep(PendingTask& task, const ObjectId& actor, const ObjectEntry& creation);
  void dispatch_actor_call_locked(PendingPtr task);
  void start_actor_runner(const std::shared_ptr<void>& context);
  void execute_actor_call(const std::shared_ptr<void>& context, actors::Call& call);
  void reject_actor_call(actors::Call& call, const std::string& why);
  void destroy_actor(const actors::ActorId& id, const std::shared_ptr<void>& context);
  void kill_created_actor_locked(const ObjectId& id, const ObjectEntry& e,
                                 const std::string& reason, bool crash = false);
  void on_kill_actor(int src, Reader& r);
  void on_actor_died(int src, Reader& r);
  void actor_created_locked(const ObjectId& id, const ObjectEntry& e);
  // The actor whose method made the call that ran this task... see
  // internal::tls_current_actor; waiting for a call to it runs its own calls.
  bool help_own_actor(const ObjectId& awaited, const std::function<bool()>& done);
  ObjectValue make_value(const ObjectId& id, std::vector<std::byte> bytes);
  ObjectValue stored_value(
      const ObjectId& id, const Expected<std::shared_ptr<const object_store::StoredObject>>& stored,
      uint64_t size);
  detail::HandlePtr add_put(const ObjectId& id, ObjectValue v,
                            std::vector<detail::HandlePtr> contained = {});
  detail::HandlePtr make_handle_locked(const ObjectId& id);
  [[nodiscard]] Status send(int dst, const Writer& w);
  void wait_for(const std::function<bool()>& done, int64_t timeout_us, bool* timed_out,
                bool lend_slot = true, transport::ProgressEngine::WakeWord* word = nullptr);
  // Pulls object `id` held by loc.holder into `into` (loc.size bytes): asks the
  // holder to pin it (restoring it if spilled), RDMA-reads it, unpins.
  // With `aligned_offset`, `into` has kFetchSlack spare bytes and the object
  // lands at into + *aligned_offset, which has the source's alignment.
  [[nodiscard]] Status fetch(const ObjectId& id, const RemoteLocation& loc, void* into,
                             const std::string& what, size_t* aligned_offset = nullptr);
  static constexpr size_t kFetchSlack = 64;
  void on_fetch_request(int src, Reader& r);
  void on_fetch_reply(Reader& r);
  struct FetchSlot {
    int holder = -1;  // failed at once when it is lost
    std::atomic<bool> done{false};
    bool ok = false;  // then: where the pinned object is, for the RDMA get
    uint64_t address = 0, size = 0;
    std::vector<std::byte> rkey;
    std::string error;
    bool lost = false;  // the holder's copy is gone: its owner makes it again or fails it
  };
  std::unordered_map<uint64_t, std::shared_ptr<FetchSlot>> fetches_;  // by request id (mu_)
  std::map<std::pair<int, uint64_t>, std::shared_ptr<const object_store::StoredObject>>
      pinned_reads_;  // (reader, request id) -> object pinned for its RDMA read (mu_)
  // Refs registered with AddBorrowerAndAck, waiting for each owner's
  // BorrowerCounted, oldest first (mu_): a ref decoded out of another rank's
  // value pins that value (`outer`); one a running task decoded out of an
  // argument its submitter holds keeps the task's result back (`task`).
  struct AwaitedCount {
    ObjectId outer;
    TaskAcks* task = nullptr;
  };
  std::unordered_map<ObjectId, std::deque<AwaitedCount>, ObjectIdHash> awaiting_count_;
  static thread_local TaskAcks* tls_task_acks_;  // of the task running on this thread
  std::atomic<uint64_t> next_fetch_{1};
  struct DeferredFetch {
    int src;
    uint64_t req;
    ObjectId id;
  };
  std::vector<DeferredFetch> deferred_fetches_;  // waiting for pinned reads to end (mu_)
  void serve_fetch(int src, uint64_t req, const ObjectId& id);

  const Config config_;
  transport::Transport& transport_;
  const ClusterLayout layout_;
  transport::ProgressEngine engine_;
  object_store::ObjectStore store_;
  worker::WorkerPool pool_;
  std::thread progress_thread_;

  transport::MessageHandler gcs_handler_;
  Observer observer_;

  // Guards everything below. Recursive: dropping the last ObjectHandle (say,
  // an argument of a finished task) re-enters release() under the lock.
  // Adaptive: the submitting thread and the workers take it on every task.
  mutable AdaptiveRecursiveMutex mu_;
  ObjectTable<EntryPtr> objects_;  // owned and borrowed objects (object_table.hpp)
  PendingMap waiting_;             // by seq: deps unresolved
  PendingMap in_flight_;           // by seq: dispatched
  // Tasks for the global scheduler, sent as one message when a thread next
  // polls the transport or the batch is full (guarded by mu_).
  MessageBatch spill_batch_{MessageKind::kSpillTasks};
  std::vector<ObjectId> spill_ids_;
  static constexpr uint32_t kSpillBatch = 64;
  scheduler::Scheduler scheduler_;
  NodeStats stats_;
  actors::ActorHost actor_host_;
  ActorNames actor_names_;
  // The number of the last call each calling context of this process made
  // to an actor (ActorHost's per-caller order): actor -> the instance the
  // numbers are for, and (calling actor or nil, count) pairs. Usually one
  // context per actor. A restarted instance counts from 1 again. Guarded by mu_.
  struct CallNumbers {
    uint32_t incarnation = 0;
    std::vector<std::pair<ObjectId, uint64_t>> callers;
  };
  std::unordered_map<ObjectId, CallNumbers, ObjectIdHash> call_seqs_;
  uint64_t next_call_seq_locked(const ObjectId& actor, const ObjectId& caller,
                                uint32_t incarnation);
  Timeline timeline_;
  // Which runtime instance made a handle: a handle's entry pointer is only
  // trusted by the runtime that made it (see get()).
  const uint64_t instance_ = next_instance();
  static uint64_t next_instance() noexcept {
    static std::atomic<uint64_t> n{0};
    return ++n;
  }

  // Bottom-up scheduling: the global scheduler's rank (-1: none) and this
  // node's heartbeats to it (see send_heartbeat).
  int global_scheduler_ = -1;
  size_t local_queue_limit(std::optional<uint64_t> mean_ns, bool movable = false) const;
  // Work stealing (work_stealing.cpp, docs/scheduling.md "Stealing").
  // Whether another node could run `task` instead of this one: a plain
  // function task with no node, placement or large argument of its own.
  bool movable_locked(const PendingTask& task) const;
  // Queues `task` (owned here) on this node's pool; a movable one carries
  // its seq as move tag. Returns the ticket for run_inline.
  worker::WorkerPool::Ticket queue_here_locked(PendingTask& task, bool known_short, bool movable);
  // The global scheduler orders: push queued movable tasks to a node.
  void on_steal_order(int src, Reader& r);
  // Tasks another node pushed here (an order it carried out).
  void on_pushed_tasks(int src, Reader& r);
  std::atomic<uint64_t> pushes_received_{0};
  // Work a steal order moves per CPU slot of the idle node, by the tasks'
  // mean run times here (on_steal_order).
  static constexpr double kPushBudgetUs = 2000;
  // A node whose recent tasks ran at least this long on average asks for
  // work before it runs dry (NodeLoad::ask_ahead): a push then brings about
  // two such tasks per slot or fewer, so the node would idle through a steal
  // round trip after each.
  static constexpr uint64_t kAskAheadMinUs = 1000;
  // Moving average (1/8 per task) of every task's own run time here (µs).
  std::atomic<uint64_t> recent_task_us_{0};
  // PendingTask::retries_left of a task submitted with max_retries = -1.
  static constexpr uint32_t kRetryAlways = ~uint32_t{0};
  std::atomic<uint32_t> reported_movable_{0};  // in the last heartbeat sent
  void note_task_time_locked(const detail::RemoteFunctionInfo& function, int64_t us);
  // The function's mean run time here (ns), if it ran here before.
  std::optional<uint64_t> mean_task_ns_locked(const detail::RemoteFunctionInfo* function) const;
  static constexpr double kSpillHopUs = 20, kTaskOverheadUs = 1, kMaxQueuePerSlot = 64;
  // Tasks known to run shorter wake no sleeping worker while one is busy
  // (WorkerPool::submit's short_job).
  static constexpr uint64_t kShortTaskNs = 5000;
  // RemoteFunctionInfo::index -> mean run time here (ns) + 1; 0: not run here yet.
  std::vector<uint64_t> task_ns_;
  std::atomic<uint64_t> received_from_global_{0};
  std::atomic<int64_t> last_heartbeat_us_{0};
  std::mutex heartbeat_mu_;             // one sender at a time (try_lock)
  std::atomic<bool> heartbeat_again_{false};  // a report was asked for while one was being sent
  scheduler::NodeLoad last_heartbeat_;  // what was sent last (heartbeat_mu_)

  std::atomic<uint64_t> next_seq_{1};
  std::atomic<bool> shutdown_{false};
  std::atomic<int> shutdown_code_{0};
  std::atomic<bool> settle_asked_{false};  // a node rank: the driver asked (kSettleRecords)
  std::vector<char> records_settled_;      // the driver: node ranks that answered (mu_)
  // What wait_for_shutdown() sleeps on. Not the objects channel: the main
  // thread of every non-driver node rank would wake (and take a core from a
  // worker) each time an object became ready; perf sched showed that on each
  // 500 us task of a two-node stencil.
  transport::ProgressEngine::WakeWord shutdown_word_;
  std::atomic<bool> stopped_{false};
};

}  // namespace prism::runtime
