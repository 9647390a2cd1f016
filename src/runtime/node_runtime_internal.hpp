// Private to the NodeRuntime's source files (node_runtime.cpp, ownership.cpp,
// object_access.cpp, fetch.cpp, task_submission.cpp, task_execution.cpp,
// actor_calls.cpp): the records behind the class's opaque declarations and
// the thread-locals they share. Not part of any other component's interface.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/node_runtime.hpp"

namespace prism::runtime {
namespace internal {

extern thread_local NodeRuntime* tls_runtime;
extern thread_local ObjectId tls_current_task;  // the task running on this thread (lineage)
extern thread_local uint32_t tls_current_attempt;  // its run number (prism::attempt())
// Time inside the running task that is not its own work (us): waits in get()
// and tasks it ran inline meanwhile. A function's mean run time is its own
// work, so a task that mostly waits for its children counts as short.
extern thread_local int64_t tls_not_own_us;
// On an actor's runner, where calls run back to back: the end of one call is
// the start of the next (the runner's loop between them, well under a
// microsecond, counts as the next call's), which saves one of the two clock
// reads per call — ~25 ns each on this VM's kvm-clock, a tenth of what an
// empty call costs the worker. execute() hides it from what it runs nested.
struct RunnerClock {
  int64_t last_end_us = 0;
};
extern thread_local RunnerClock* tls_runner_clock;
// While a task runs: the (ref, sender) pairs its decoding borrowed (see
// release_unborrowed_locked).
extern thread_local std::vector<std::pair<ObjectId, int>>* tls_borrow_log;
// The actor whose method runs on this thread (nil: none): the calls it makes
// are ordered as its own (ActorHost's CallerId), and waiting for one of
// them to its own actor runs them here.
extern thread_local ObjectId tls_current_actor;
// The group member running on this thread (an actor group member's method
// or constructor, an MPI task's rank): whom prism::collective speaks for.
struct GroupMember {
  groups::LocalGroup* group = nullptr;
  uint32_t index = 0;
};
extern thread_local GroupMember tls_group_member;
struct MemberScope {  // sets tls_group_member while it lives
  GroupMember saved = tls_group_member;
  MemberScope(groups::LocalGroup* g, uint32_t index) { tls_group_member = {g, index}; }
  ~MemberScope() { tls_group_member = saved; }
  MemberScope(const MemberScope&) = delete;
  MemberScope& operator=(const MemberScope&) = delete;
};

inline ObjectId to_id(const detail::ObjectIdPod& p) {
  return {p.owner_rank, p.index, p.seq};
}
inline detail::ObjectIdPod to_pod(const ObjectId& id) {
  return {id.owner_rank, id.index, id.seq};
}

}  // namespace internal

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

// How an owned object was made, kept to make it again (lineage
// reconstruction, docs/fault-tolerance.md): the creating task as it was
// last sent, and its argument objects, kept alive as long as the object.
struct NodeRuntime::Lineage {
  TaskSpec spec;
  scheduler::TaskRequest request;
  std::vector<detail::HandlePtr> arg_refs;
  uint32_t max_retries = 0;
  uint32_t rebuilds_left = 0;  // the same budget as the task's retries
  bool retry_exceptions = false;
  // An actor's: which instance saved spec.checkpoint, after how many calls.
  uint32_t checkpoint_incarnation = 0;
  uint64_t checkpoint_calls = 0;
};

// One object this process knows about: owned (we created it) or borrowed.
struct NodeRuntime::ObjectEntry {
  bool owned = false;
  std::atomic<bool> ready{false};  // read without mu_ by waiters
  // Valid once ready, then immutable: get() hands out views of inline bytes
  // kept alive by the entry itself (no separate allocation per value).
  ObjectValue value;
  std::shared_ptr<const FetchedCopy> fetched;  // a copy pulled from the holder
  std::string task_name;                       // the creating task, for error messages
  int handles = 0;                             // live ObjectHandles in this process
  int in_transit = 0;                      // refs sent to other ranks, not yet counted by the owner
  int registrations = 0;                   // borrowed: AddBorrower messages sent to the owner
  std::unordered_map<int, int> borrowers;  // owned: rank -> registrations
  bool shared = false;            // a ref escaped inside a value: kept for the job (see docs)
  bool status_requested = false;  // borrowed: asked the owner
  std::vector<int> subscribers;   // owned: ranks to tell when ready
  std::vector<std::pair<uint64_t, size_t>> dependents;  // (waiting task seq, arg index)
  transport::ProgressEngine::WakeWord wake;             // get()s sleeping until it is ready
  std::vector<detail::HandlePtr> contained;             // owned: refs serialized inside the value
  bool actor = false;  // an actor's creation object: its value is the node the actor lives on
  bool kill_requested = false;  // prism::kill before the actor existed: killed once it does
  // An actor's: instances below this one are known to be gone here (their
  // calls go again to a later one; the owner answers only with a later one).
  uint32_t actor_min_incarnation = 0;
  std::shared_ptr<Lineage> lineage;  // owned, held on another node rank: how to make it again
};

// An actor living on this node: its instance and what it holds.
struct NodeRuntime::LocalActor {
  ObjectId id;
  std::string class_name;  // "Counter"
  std::string name;        // its job-wide name ("": none)
  std::string track;       // its row in the timeline
  void* instance = nullptr;
  detail::Destroyer destroy = nullptr;
  scheduler::ResourceDemand held;  // kept from the creation job for the actor's life
  scheduler::ResourceGrant grant;
  scheduler::ResourceDemand runner;  // what each of its running methods takes
  std::shared_ptr<groups::LocalGroup> group;  // an actor group's member: its group here
  uint32_t group_index = 0;
  uint32_t incarnation = 0;  // 0, then one more per restart
  // Checkpoints: the class's hook, every how many calls, calls done so far.
  detail::CheckpointSaver save = nullptr;
  uint32_t checkpoint_interval = 0;
  std::atomic<uint64_t> calls_done{0};
};

// A submitted task not finished yet.
struct NodeRuntime::PendingTask {
  TaskSpec spec;
  scheduler::TaskRequest request;
  std::vector<detail::HandlePtr> arg_refs;  // keep argument objects alive until done
  detail::HandlePtr actor;  // a call's actor: alive at least until the call is done
  std::vector<ObjectId> value_refs;         // refs inside argument values, pinned for the trip
  size_t unresolved = 0;
  int node = -1;
  bool report_when_done = false;      // Observer::task_done, not dispatched + finished
  worker::WorkerPool::Ticket queued;  // queued here: a get() may run it inline
  std::string arg_error;              // set when an argument's task failed: this one never runs
  uint32_t retries_left = 0;          // runs left after a lost or (retry_exceptions) failed one
  uint32_t max_retries = 0;           // as submitted (a rebuild gets them all again)
  std::vector<int> forwards;          // nodes its executor was asked to forward the result to
  bool retry_exceptions = false;
  bool actor_dep_pending = false;  // a call waiting to learn where its actor lives
  bool actor_retries_set = false;  // retries_left holds the actor's max_task_retries
};

}  // namespace prism::runtime
