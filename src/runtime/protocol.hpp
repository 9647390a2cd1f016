// The runtime's own messages between ranks, in the compact fixed layout of
// common/codec.hpp. Every message starts with one MessageKind byte; kinds
// 0x40..0x5F belong to the GCS (src/gcs) and are routed there.
//
// Data flow of one task (see docs/architecture.md):
//   owner --SubmitTask--> executor --TaskResult--> owner
// A large result stays in the executor's store; TaskResult then carries its
// location (holder rank, size). A reader asks the holder to pin it, gets the
// address and rkey in the reply, and pulls it with one RDMA get.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/codec.hpp"
#include "common/ids.hpp"
#include "common/small_bytes.hpp"
#include "common/status.hpp"
#include "scheduler/global_scheduler.hpp"
#include "scheduler/resource_ledger.hpp"

namespace prism::detail {
struct RemoteFunctionInfo;  // prism/remote.hpp
struct ActorMethodInfo;     // prism/actor.hpp
}  // namespace prism::detail

namespace prism::runtime {

enum class MessageKind : uint8_t {
  kSubmitTask = 0x01,
  kTaskResult = 0x02,           // executor -> owner: the task's return value
  kObjectStatusRequest = 0x03,  // borrower -> owner: tell me when this object is ready
  kObjectStatusReply = 0x04,    // owner -> borrower
  kFreeObject = 0x05,           // owner -> holder: drop your copy
  kShutdown = 0x06,             // driver -> everyone
  kAddBorrower = 0x07,          // borrower -> owner: I hold a ref (received from `sender`)
  kRemoveBorrower = 0x08,       // borrower -> owner: I dropped my `count` registrations
  kTransitDone = 0x09,          // owner -> sender: the receiver of your ref is counted
  kFetchRequest = 0x0A,         // reader -> holder: pin (restore if spilled) and locate
  kFetchReply = 0x0B,           // holder -> reader: address + rkey, or an error
  kFetchDone = 0x0C,            // reader -> holder: RDMA read finished, unpin
  kSpillTask = 0x0D,            // submitter -> global scheduler: place this task for me
  kNodeLoad = 0x0E,             // node -> global scheduler: heartbeat with the node's load
  kSpillTasks = 0x0F,           // several SpillTask bodies in one message (MessageBatch)
  kSubmitTasks = 0x10,          // several SubmitTask bodies in one message (MessageBatch)
  kAddBorrowerAndAck = 0x11,    // borrower -> owner: AddBorrower, then answer BorrowerCounted
  kBorrowerCounted = 0x12,      // owner -> borrower: your AddBorrowerAndAck is counted
  kKillActor = 0x13,            // anyone -> the actor's node: end it (reason, restartable)
  kActorDied = 0x14,  // the actor's node -> its owner: it is gone (reason, instance, restartable)
  kForwardObject = 0x15,  // owner -> a task's executor: send its result to `dst` too
  kForwardFailed = 0x16,  // executor -> owner: that task was done already: you send it
  kGroupReserve = 0x17,   // group creator -> node: reserve these members' resources (all or none)
  kGroupReserveReply = 0x18,  // node -> creator: reserved or not, and how many more would fit
  kGroupRelease = 0x19,       // creator -> node: drop these reservations (the round failed)
  kGroupBroken = 0x1A,        // a member's node -> the group's other nodes: it broke (reason)
  kAlive = 0x1B,              // heartbeat between the driver's rank and the node ranks
  kNodeLost = 0x1C,           // driver's rank -> the others: node rank N is gone (reason)
  kStealOrder = 0x1D,         // global scheduler -> busy node: push queued tasks to node N
  kPushedTasks = 0x1E,        // busy node -> idle node: the tasks an order moved (MessageBatch)
  kForwardedObject = 0x1F,    // producer -> a held task's node: its argument (ForwardObject)
  kActorCheckpoint = 0x20,  // an actor's node -> its owner: its state (instance, calls, HDF5 image)
  kObjectLost = 0x21,       // holder -> owner: my copy of the object is gone (reason)
  kSettleRecords = 0x22,    // driver's rank -> node ranks: the job ends: settle your GCS records
  kRecordsSettled = 0x23,   // node rank -> driver's rank: settled (or gave up waiting)
  kGcsFirst = 0x40,
  kGcsLast = 0x5F,
};

/// Which rank's store holds an object, and its size. (The address and rkey
/// come from the holder when a reader pins it: a spilled and restored object
/// moves.)
struct RemoteLocation {
  uint32_t holder = 0;  // world rank whose store holds it
  uint64_t size = 0;
};

/// The state of a finished object as it travels: its bytes, where they are,
/// or why there are none.
struct ObjectValue {
  enum class Kind : uint8_t { kInline = 0, kRemote = 1, kError = 2 };
  Kind kind = Kind::kInline;
  SmallBytes bytes;             // kInline
  RemoteLocation location;      // kRemote
  std::string error;            // kError: the full message, e.g. "task 'f' failed: ..."
  bool task_exception = false;  // kError: the task's own code threw (retry_exceptions)
  bool lost_input = false;      // kError: an argument's holder was lost: its owner rebuilds it and
                                // the task's owner runs the task again (docs/fault-tolerance.md)
  bool actor_gone = false;  // kError: an actor call whose instance died before it ran (or ended):
                            // the caller sends it again to the restarted actor (max_task_retries)
};

/// An argument on the wire.
struct WireArg {
  // kValueWithRefs: a value with refs serialized inside, which the submitter
  // pinned for the trip (the executor's borrows release the pins).
  // kPendingRef: the value of object `ref`, not ready when the task was sent:
  // the executor holds the task until it has it (from the object's owner, or
  // forwarded by the node that produces it: docs/scheduling.md).
  enum class Kind : uint8_t {
    kValue = 0,
    kRef = 1,
    kRemoteValue = 2,
    kValueWithRefs = 3,
    kPendingRef = 4
  };
  Kind kind = Kind::kValue;
  std::vector<std::byte> value;  // kValue, kValueWithRefs
  // kValueWithRefs: the refs inside `value`, so that an executor failing
  // before it decodes the value can still release the submitter's pins.
  std::vector<ObjectId> contained;
  ObjectId ref;             // kRef: the reference itself; kRemoteValue: the object to pull
  RemoteLocation location;  // kRemoteValue: its holder and size; kPendingRef: holder =
                            // the node producing it, if its owner knows (else kNoNode)
  static constexpr uint32_t kNoNode = UINT32_MAX;
};

/// What a task spec asks its executor to do.
enum class TaskKind : uint8_t {
  kFunction = 0,       // run a registered function (PRISM_REMOTE)
  kActorCreation = 1,  // construct an actor (`function` names the constructor signature)
  kActorCall = 2,      // run a method (`function` names it) on the actor `actor`
};

struct TaskSpec {
  ObjectId id;           // of the return object; id.owner_rank is the owner
  std::string function;  // registered name
  // This process's registry entry for `function` (not sent): set by the
  // submitter, looked up once by a remote executor. Per-function state
  // (mean run time) is indexed by it instead of hashing the name per task.
  const detail::RemoteFunctionInfo* fn = nullptr;
  // kActorCall: this process's registry entry for the method (not sent).
  const detail::ActorMethodInfo* method = nullptr;
  std::string name;  // display name
  std::vector<WireArg> args;
  scheduler::ResourceDemand resources;  // held on the executor while it runs
  // Lineage, kept on the owner (not sent): every object the task reads,
  // whether it receives the ref or its value, and the task that submitted it.
  std::vector<ObjectId> arg_ids;
  ObjectId parent;  // nil when the driver submitted it

  TaskKind kind = TaskKind::kFunction;
  // kActorCall: the actor, who called (a rank, and the actor whose method
  // made the call there, nil if none) and the call's number in that
  // caller's calls to the actor (src/actor/actor_host.hpp); `skip`: it
  // failed at its caller and only takes its turn.
  ObjectId actor;
  int32_t caller_rank = -1;
  ObjectId caller_actor;
  uint64_t call_seq = 0;
  bool skip = false;
  // kActorCall: the instance it was sent to (the actor's creation run: 0,
  // then one more per restart); a call to an instance that is gone is
  // rejected with ObjectValue::actor_gone.
  uint32_t actor_incarnation = 0;
  // kActorCreation: what the actor holds for its life (`resources` is what
  // the constructor runs with), how many methods run at once, its name.
  scheduler::ResourceDemand held;
  uint32_t max_concurrency = 1;
  std::string actor_name;
  // kActorCreation: its callers' retries (ActorOptions::max_task_retries,
  // -1: always), how often it saves a checkpoint (calls; 0: never), and the
  // checkpoint a restart loads (an HDF5 file image; empty: none yet).
  int32_t max_task_retries = 0;
  uint32_t checkpoint_interval = 0;
  std::vector<std::byte> checkpoint;
  // A group member (docs/mpi-interop.md): an actor group's member
  // (kActorCreation) or an MPI task's rank (kFunction). It runs on resources
  // reserved for it on its node (`resources` is then empty); its group's id,
  // its index and every member's node.
  ObjectId group;
  uint32_t group_index = 0;
  std::vector<int32_t> group_nodes;
  std::string group_label;  // "actor group of 4 Worker (group:0.7)", for errors
  // Which run of the task this is (0: the first); a retry sends it again
  // with the next number, and its owner takes only that run's result.
  uint32_t attempt = 0;
};

/// An actor's creation object's value: where the actor lives, which
/// instance it is (0, then one more per restart), and how often its callers
/// send a call again when the instance they sent it to dies.
struct ActorLocation {
  int32_t node = -1;
  uint32_t incarnation = 0;
  int32_t max_task_retries = 0;  // -1: always
};
std::vector<std::byte> encode_actor_location(const ActorLocation& l);
/// The location an actor's creation object holds; nullopt for an error
/// (the actor could not be created, or is dead) or a malformed value.
std::optional<ActorLocation> actor_location(const ObjectValue& v);

/// What an actor's owner learns about it (the GCS actor table's row).
struct ActorEvent {
  ObjectId id;
  std::string class_name;  // set with the first event (pending)
  std::string name;        // the job-wide name, if any (first event)
  int32_t node = -1;
  enum class State : uint8_t { kPending, kAlive, kRestarting, kDead } state = State::kPending;
  int32_t restarts = -1;  // times it was restarted (-1: unchanged)
};

void encode_task(const TaskSpec& t, Writer& w);
[[nodiscard]] Status decode_task(Reader& r, TaskSpec& t);

/// SpillTask: the placement facts the global scheduler needs, then the task
/// exactly as SubmitTask carries it (forwarded without decoding).
/// Several messages of one kind in one: the kind, a u32 count, then each
/// body (what follows the kind byte of the single message) with its u32
/// length. Spilled tasks travel this way: one message (and one wake-up of
/// the receiver) per batch instead of per task.
class MessageBatch {
 public:
  explicit MessageBatch(MessageKind kind) : kind_(kind) {}
  /// Starts a body: encode it into the returned writer, then end().
  Writer& begin();
  void end();
  uint32_t count() const noexcept { return count_; }
  /// The message; the batch is empty again afterwards.
  Writer take();

 private:
  MessageKind kind_;
  Writer w_;
  uint32_t count_ = 0;
  size_t body_at_ = 0;
};
/// Calls f(body) for each body of a batch message (after its kind byte);
/// a malformed batch (count or lengths beyond the message) is refused whole.
[[nodiscard]] Status for_each_batched(Reader& r,
                                      const std::function<void(std::span<const std::byte>)>& f);

void encode_spill_header(const scheduler::TaskRequest& r, Writer& w);
[[nodiscard]] Status decode_spill_header(Reader& r, scheduler::TaskRequest& req);
void encode_node_load(const scheduler::NodeLoad& l, Writer& w);
[[nodiscard]] Status decode_node_load(Reader& r, scheduler::NodeLoad& l);
void encode_steal_order(const scheduler::StealOrder& o, Writer& w);  // the thief and the count
[[nodiscard]] Status decode_steal_order(Reader& r, scheduler::StealOrder& o);

/// TaskResult (executor -> owner, or the global scheduler's error for a task
/// it could not place): the object's id, its value, and the refs serialized
/// inside the value (pinned by the sender until the owner borrows them).
void encode_task_result(const ObjectId& id, const ObjectValue& v,
                        std::span<const ObjectId> contained, Writer& w, uint32_t attempt = 0);
/// Reads what encode_task_result wrote after the kind byte.
[[nodiscard]] Status decode_task_result(Reader& r, ObjectId& id, ObjectValue& v,
                                        std::vector<ObjectId>& contained,
                                        uint32_t* attempt = nullptr);

void encode_object_value(const ObjectValue& v, Writer& w);
[[nodiscard]] Status decode_object_value(Reader& r, ObjectValue& v);

void encode_resource_demand(const scheduler::ResourceDemand& d, Writer& w);
[[nodiscard]] Status decode_resource_demand(Reader& r, scheduler::ResourceDemand& d);

void encode_object_id(const ObjectId& id, Writer& w);
ObjectId decode_object_id(Reader& r);

/// KillActor (anyone who kills an actor -> the rank it lives on). `crash`: end
/// it as a crash would, so its owner restarts it while max_restarts allows.
struct KillActorMsg {
  ObjectId actor;
  std::string reason;
  bool crash = false;
};
/// ActorDied (the actor's rank -> its owner): instance `incarnation` ended.
struct ActorDiedMsg {
  ObjectId actor;
  std::string reason;
  uint32_t incarnation = 0;
  bool restartable = false;
};
/// ActorCheckpoint (the actor's rank -> its owner): its state after `calls`
/// calls of instance `incarnation`, an HDF5 file image.
struct ActorCheckpointMsg {
  ObjectId actor;
  uint32_t incarnation = 0;
  uint64_t calls = 0;
  std::span<const std::byte> image;  // points into the message (or the sender's buffer)
};
/// ObjectLost (the rank that held a copy -> the object's owner): it is gone.
struct ObjectLostMsg {
  ObjectId object;
  std::string why;
};
/// encode_message writes the kind byte and the fields; decode_message reads
/// the rest of the message after the kind byte, all of it, and refuses flag
/// bytes other than 0 and 1.
void encode_message(const KillActorMsg& m, Writer& w);
[[nodiscard]] Status decode_message(Reader& r, KillActorMsg& m);
void encode_message(const ActorDiedMsg& m, Writer& w);
[[nodiscard]] Status decode_message(Reader& r, ActorDiedMsg& m);
void encode_message(const ActorCheckpointMsg& m, Writer& w);
[[nodiscard]] Status decode_message(Reader& r, ActorCheckpointMsg& m);
void encode_message(const ObjectLostMsg& m, Writer& w);
[[nodiscard]] Status decode_message(Reader& r, ObjectLostMsg& m);

}  // namespace prism::runtime
