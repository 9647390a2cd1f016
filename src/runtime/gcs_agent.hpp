// GcsAgent: a node rank's link to the Global Control Store.
//
// It owns the rank's one gcs::GcsClient and drives it from its own thread
// (the agent thread), which sleeps on a condition variable until there is
// something to do: a batch to write, a reply to process, a request deadline,
// a heartbeat. Everything else talks to it through thread-safe methods that
// only enqueue:
//
//  * Recording (the NodeRuntime observer, see attach_gcs_agent): task
//    dispatched / finished, object sealed / freed. The callbacks append a small
//    event under a mutex and return; they never wait for the GCS. The agent
//    thread drains the events every `flush_interval_us` while work flows and
//    coalesces them per key before writing: a task row that says only
//    "running" waits `coalesce_us` for the finish, so a short task costs one
//    row write; an object sealed and freed within one round costs nothing.
//    At most one write per key is in flight (so writes to a key apply in order
//    even across retries and failover), and at most `max_in_flight` in all;
//    what waits keeps coalescing. Ready rows go out as gcs::OpKind::kBatch
//    writes, one per shard and up to 64 rows, in one bundled transport message
//    per GCS rank (runtime/gcs_wire.hpp). So the GCS can fall behind, but it
//    never makes a task wait.
//  * Node table: the node's row (resources from scheduler::NodeResources) is
//    written at start() and re-written with its load every
//    `heartbeat_interval_us`.
//  * Queries and subscriptions (lookup_object_locations, subscribe_*): their
//    callbacks run on the agent thread and must not block.
//
// What is recorded (docs/gcs.md): the owner of a task (the rank that submitted
// it) writes its task row: function, state running with the node it was sent
// to, the ids of arguments passed by reference; then finished/failed with the
// node that ran it. The rank that seals an object in its store adds itself to
// the object's locations (with size and owner) and removes itself when the
// copy is freed. Objects small enough to travel inline are not stored, so they
// have no object row; their lineage is in the task table.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/block_pool.hpp"
#include "common/config.hpp"
#include "common/ids.hpp"
#include "gcs/gcs.hpp"
#include "prism/remote.hpp"
#include "runtime/gcs_wire.hpp"
#include "runtime/object_table.hpp"
#include "runtime/protocol.hpp"
#include "scheduler/scheduler.hpp"
#include "transport/transport.hpp"

namespace prism::runtime {

class NodeRuntime;

struct GcsAgentOptions {
  /// While events flow, the agent wakes this often to write them in one
  /// batch; the first event after a quiet spell wakes it at once, and so does
  /// a backlog of `early_flush_events`. Why 10 ms: every round costs a wake-up
  /// of this thread and of the GCS rank and a reply, which at 1 ms cost a
  /// dependent task graph of 0.5 ms tasks ~5% on a 2-core VM (docs/benchmarks.md,
  /// "Dependent task graphs"); the rows wait, no task does.
  uint64_t flush_interval_us = 10'000;
  /// Events that wake the agent before its flush timer: a burst of short
  /// tasks goes out in full batches without piling up for the interval.
  size_t early_flush_events = 1024;
  /// A task row that says only "running on node N" waits this long for the
  /// task to finish, so that a short task costs one row write, not two. Tasks
  /// that run longer show up as running after this delay, with the round
  /// after it (within flush_interval_us). 0: write at once.
  uint64_t coalesce_us = 5000;
  /// Node table row refresh (load, last_heartbeat_us).
  uint64_t heartbeat_interval_us = 500'000;
  /// Row updates in flight at once (in batches of up to 64); more wait (and
  /// coalesce) in the agent.
  size_t max_in_flight = 4096;
  /// Retries: every 200 ms, backing off only to 400 ms (a failover costs the
  /// client ~1 failure timeout plus one retry interval), for ~60 s.
  gcs::GcsClientOptions client = {.request_timeout_us = 200'000,
                                  .max_backoff_us = 400'000,
                                  .max_attempts = 150,
                                  .incarnation = 0};
};

/// What the node's heartbeat reports, from NodeRuntime::stats().
struct NodeLoadSample {
  double slots = 0;            // worker slots
  uint64_t busy_us = 0;        // cumulative worker time in tasks
  uint64_t tasks_waiting = 0;  // tasks this rank submitted that have not finished
};

struct GcsAgentStats {
  uint64_t events = 0;          // observer events enqueued
  uint64_t writes_issued = 0;   // GCS write requests sent for them (batches)
  uint64_t ops_written = 0;     // row updates in those batches (after coalescing)
  uint64_t writes_failed = 0;   // row updates that failed for good
  uint64_t heartbeats = 0;
  uint64_t rounds = 0;          // agent thread wake-ups
  size_t in_flight = 0;
  size_t backlog = 0;           // keys waiting for a write
};

/// Thread-safe unless a method says otherwise. Example (run.cpp):
///   GcsAgent agent(config, transport, gcs_layout, rank, resources);
///   attach_gcs_agent(rt, agent);   // before rt.start()
///   rt.start(); agent.start();
///   ...
///   agent.stop(); rt.stop();
class GcsAgent {
 public:
  using Bytes = std::vector<std::byte>;
  using LookupCallback = std::function<void(Expected<gcs::ObjectRecord>)>;
  /// A subscribed object's row changed (nullopt: the row was removed).
  using ObjectCallback =
      std::function<void(const ObjectId&, const std::optional<gcs::ObjectRecord>&)>;
  /// A node was declared dead (its row says alive=false, or was removed).
  using NodeDeathCallback = std::function<void(int node_rank)>;
  using DoneCallback = std::function<void(Status)>;

  GcsAgent(const Config& config, transport::Transport& transport, gcs::GcsLayout layout,
           int my_rank, scheduler::NodeResources resources, GcsAgentOptions options = {});
  ~GcsAgent();  // stop()s
  GcsAgent(const GcsAgent&) = delete;
  GcsAgent& operator=(const GcsAgent&) = delete;

  /// Starts the agent thread and registers the node. Idempotent.
  void start();
  /// Stops the agent thread; what was not written yet is dropped. Idempotent.
  /// Call before the transport goes away (and before shutdown reaches the GCS
  /// ranks where possible: see drain()).
  void stop();
  /// Blocks until every event recorded so far is committed in the GCS, or
  /// `timeout_us` passes; returns whether it was. Not from the agent thread.
  bool drain(uint64_t timeout_us);

  // ---- routing (the rank's transport handler) ----

  /// A message of the GCS client kinds (0x50..0x5F, bundles included) for
  /// this rank. Copies it; never blocks. Runs on the polling thread.
  void deliver(int src, std::span<const std::byte> msg);

  // ---- recording (NodeRuntime observer; hot path: enqueue only) ----

  void on_task_dispatched(const TaskSpec& spec, int node);
  void on_task_finished(const ObjectId& id, bool failed, int executor);
  /// A task reported only when it finished (NodeRuntime::Observer::task_done).
  void on_task_done(const TaskSpec& spec, bool failed, int executor);
  void on_object_sealed(const ObjectId& id, uint64_t size);
  void on_object_freed(const ObjectId& id);

  // ---- actors (gcs_agent_actors.cpp) ----

  /// An actor this rank owns changed (NodeRuntime::Observer::actor_changed):
  /// its row is written like lineage (coalesced, asynchronously, covered by
  /// drain()); a dead named actor's name row is removed.
  void on_actor_changed(const ActorEvent& e);
  /// Claims `name` for `actor` of class `class_key` (an insert of its name
  /// row). Blocks for the answer, at most `timeout_us`: kAlreadyExists,
  /// naming the holder, if the name is taken. Not from the agent thread.
  Status claim_actor_name(const std::string& name, const ObjectId& actor,
                          const std::string& class_key, uint64_t timeout_us = 10'000'000);
  /// The actor named `name` and its class key (kNotFound: none). Blocks
  /// like claim_actor_name.
  Expected<std::pair<ObjectId, std::string>> find_actor_name(const std::string& name,
                                                             uint64_t timeout_us = 10'000'000);

  /// Where the heartbeat gets the node's load. Set before start().
  void set_load_source(std::function<NodeLoadSample()> source);

  // ---- queries and subscriptions (callbacks on the agent thread) ----

  /// The object's row as the GCS tail has it (kNotFound: no row).
  void lookup_object_locations(const ObjectId& id, LookupCallback done);
  /// Calls `on_change` with the current row (if any) and after every change.
  void subscribe_object_locations(const ObjectId& id, ObjectCallback on_change,
                                  DoneCallback done = {});
  void unsubscribe_object_locations(const ObjectId& id, DoneCallback done = {});
  /// Node rank `rank` was lost: its row in the node table says alive=false
  /// from now on (written asynchronously: read, then put).
  void on_node_lost(int rank);
  /// Calls `on_death` whenever a node is declared dead. Callbacks add up.
  void subscribe_node_deaths(NodeDeathCallback on_death, DoneCallback done = {});
  /// Calls `done` once every event recorded before this call is committed
  /// (or failed for good).
  void flush(DoneCallback done);

  // ---- tests and tools ----

  /// Runs `fn` on the agent thread with the client (for reads, scans and
  /// hand-made requests). `fn` must not block.
  void post(std::function<void(gcs::GcsClient&)> fn);
  /// Sends raw bytes to `rank` from the agent thread (forged requests).
  void send_raw(int rank, Bytes msg);
  /// Sees every GCS message that arrives for this rank, on the agent thread,
  /// before the client does. Empty function: none.
  void set_message_tap(std::function<void(int src, std::span<const std::byte>)> tap);

  GcsAgentStats stats() const;
  const gcs::GcsLayout& layout() const noexcept { return layout_; }
  int rank() const noexcept { return rank_; }
  /// Whether attach_gcs_agent() records tasks and objects (config gcs-lineage).
  bool records_lineage() const noexcept { return config_.gcs_lineage; }

 private:
  struct Event {
    enum class Kind : uint8_t { kDispatched, kFinished, kDone, kSealed, kFreed };
    Kind kind = Kind::kDispatched;
    bool failed = false;
    int32_t node = -1;
    ObjectId id;
    uint64_t size = 0;
    // The task's function, or the actor method a call runs: its registry
    // entry (lives for the process), so the producer copies no string; or,
    // without one, its name.
    const detail::RemoteFunctionInfo* fn = nullptr;
    const detail::ActorMethodInfo* method = nullptr;
    std::string function;
    const std::string& function_name() const;
    std::vector<ObjectId> args;
    ObjectId parent;
    // kDone: the tasks from `id` on that this event stands for. A task done
    // right after the previous one, with the same row, extends its event
    // instead of queueing its own (see on_task_done).
    uint32_t run = 1;
  };
  // A key whose row this rank writes. `gen` is the flush generation in which
  // it last became unclean (dirty or in flight); flushes wait on it.
  // Entries live in unordered_maps (stable addresses): the backlog and the
  // write callbacks hold pointers; an entry is erased only when clean.
  struct TaskEntry {
    ObjectId id;
    gcs::TaskRecord rec;
    bool known = false;        // rec came from a dispatch event (a full row)
    bool row_written = false;  // the GCS has a row for it
    bool dirty = false, in_flight = false, final = false;
    bool deferred = false;  // dirty, waiting in deferred_ (not in the backlog)
    uint64_t gen = 0;
  };
  struct ObjectEntry {
    ObjectId id;
    bool want = false;     // this rank should be listed
    bool written = false;  // what the GCS has (as far as we know)
    uint64_t size = 0;
    bool in_flight = false;
    uint64_t gen = 0;
  };

  void enqueue(Event e);
  // Actor rows this rank writes (agent thread): the row as it should be, and
  // whether the GCS has it.
  struct ActorRow {
    gcs::ActorRecord rec;
    bool dirty = false, in_flight = false, dead = false;
    uint64_t gen = 0;
  };
  void apply_actor(const ActorEvent& e);
  void issue_actor_writes();
  void actor_written(const ObjectId& id, const Status& st);
  static Event task_event(Event::Kind kind, const TaskSpec& spec, int node);
  void run();
  void round(std::vector<Event>& events, std::vector<std::function<void(gcs::GcsClient&)>>& cmds,
             Bytes& inbox_bytes, std::vector<std::pair<int, std::pair<size_t, size_t>>>& inbox);
  void apply(Event& e);
  TaskEntry& task_entry(const ObjectId& id);  // created on first use
  void mark_task(TaskEntry& t);
  void release_deferred(uint64_t now, bool all);
  void mark_object(ObjectEntry& o);
  // One op of a batch, and the entry it completes (neither: rows of done
  // tasks, counted unclean under `gen`).
  struct Pending {
    gcs::WriteOp op;
    TaskEntry* task = nullptr;
    ObjectEntry* object = nullptr;
    bool put_or_add = false;  // task: a full-row put; object: add (else remove)
    uint32_t run = 1;         // task put: the tasks from `task` on that it covers
    uint64_t gen = 0;         // done rows
  };
  // The final row of a task reported once (on_task_done): written as soon as
  // it arrives, without an entry, in runs.
  struct DoneRow {
    ObjectId id;
    gcs::TaskRecord rec;  // rec.run stays 1 until written (rows compare whole)
    uint32_t run = 1;     // tasks from `id` on
    uint64_t gen = 0;
  };
  void issue_done_rows(const std::function<void(gcs::WriteOp, uint32_t run, uint64_t gen)>& add);
  static constexpr size_t kBatchOps = 64;  // ops per batched write (~6 KB)
  void issue_writes();
  void task_written(TaskEntry& t, bool put, const Status& st);
  void object_written(ObjectEntry& o, bool add, const Status& st);
  void unclean(uint64_t gen, size_t n = 1);
  void clean(uint64_t gen, size_t n = 1);
  void fire_flushes();
  void heartbeat(uint64_t now);
  uint64_t next_wake(uint64_t now) const;

  const Config config_;
  transport::Transport& transport_;
  const gcs::GcsLayout layout_;
  const int rank_;
  const scheduler::NodeResources resources_;
  const GcsAgentOptions opt_;

  // ---- shared with producers, guarded by mu_ ----
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::vector<ActorEvent> actor_events_;
  std::vector<std::function<void(gcs::GcsClient&)>> commands_;
  Bytes inbox_bytes_;
  std::vector<std::pair<int, std::pair<size_t, size_t>>> inbox_;  // src, (offset, length)
  bool idle_ = true;    // the agent sleeps until woken (no flush timer armed)
  // When post() last queued a command (mu_): for a while after it, replies
  // wake the agent at once, as a command (a query, a flush) may have a
  // caller waiting for its answer; recording's acknowledgements otherwise
  // wait for the flush timer.
  uint64_t last_post_us_ = 0;
  bool urgent_ = false; // process at once
  bool stop_ = false;
  uint64_t events_total_ = 0;
  std::function<NodeLoadSample()> load_source_;
  std::function<void(int, std::span<const std::byte>)> tap_;
  GcsAgentStats shared_stats_;  // published by the agent thread after each round

  // ---- agent thread only ----
  GcsOutbox outbox_;
  gcs::GcsClient client_;
  std::thread thread_;
  std::atomic<bool> started_{false};
  // The tasks this rank submitted, by id: a seq-indexed window (their ids
  // are dense), entries pooled; addresses are stable for the backlog.
  ObjectTable<PooledPtr<TaskEntry>> tasks_;
  std::unordered_map<ObjectId, ObjectEntry, ObjectIdHash> objects_;
  std::unordered_map<ObjectId, ActorRow, ObjectIdHash> actor_rows_;
  std::deque<ObjectId> actor_backlog_;  // dirty rows, not in flight
  PooledDeque<TaskEntry*> task_backlog_;     // dirty, not in flight
  std::vector<DoneRow> done_rows_;           // not yet sent
  std::deque<std::pair<uint64_t, ObjectId>> deferred_;  // (due, task): dispatched only
  uint64_t last_round_us_ = 0;
  PooledDeque<ObjectEntry*> object_backlog_;  // want != written, not in flight
  size_t in_flight_ = 0;
  uint64_t gen_ = 1;                       // current flush generation
  std::map<uint64_t, size_t> unclean_;     // generation -> unclean keys
  std::vector<std::pair<uint64_t, DoneCallback>> flushes_;
  uint64_t last_event_us_ = 0;
  uint64_t last_tick_us_ = 0;    // the client's clock (it advances only in tick())
  uint64_t client_deadline_ = 0; // when the client next needs a tick (cached)
  uint64_t next_heartbeat_us_ = 0;
  bool heartbeat_in_flight_ = false;
  bool node_registered_ = false;
  NodeLoadSample last_load_;
  uint64_t last_load_us_ = 0;
  std::vector<NodeDeathCallback> death_subs_;
  std::set<int> dead_nodes_;
  GcsAgentStats stats_;
};

/// Wires `agent` into `rt`: GCS messages arriving at the rank go to the agent,
/// and (unless config gcs-lineage=false) the task and object lifecycle is
/// recorded through it; the heartbeat reads rt.stats(). Call before
/// rt.start(); `agent` must outlive `rt`. Also makes `agent` the process's
/// current_gcs_agent().
void attach_gcs_agent(NodeRuntime& rt, GcsAgent& agent);

/// The agent attached on this rank, or nullptr (GCS ranks, outside
/// prism::run). Internal: for tests, benchmarks and tools.
GcsAgent* current_gcs_agent() noexcept;

}  // namespace prism::runtime
