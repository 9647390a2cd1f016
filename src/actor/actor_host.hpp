// ActorHost: the actors living on one node rank — their mailboxes, the order
// their calls run in, how many run at once, and their deaths.
//
// An actor arrives constructed (add). Calls arrive in any order (enqueue):
// each carries its caller and its number in that caller's sequence, and a
// call waits until every earlier call of its caller has started, so one
// caller's calls run in the order it made them whatever the order they
// arrived in (a call whose argument was late, another route through the
// network). Calls of different callers interleave. When an actor has ready
// calls and fewer than max_concurrency runners, the host asks for one more
// (Hooks::start_runner); a runner (run) takes ready calls one by one until
// there are none, then ends. An idle actor costs no thread.
//
// kill() ends an actor: its queued calls and every later one are rejected
// with the reason, a method running now finishes, then Hooks::destroy runs
// once, on the last runner's thread or the caller's. The id is remembered
// (a tombstone), so a late call is rejected with the reason too.
//
// A restarted actor comes back under the same id with the next incarnation
// (0 for the first instance); a call made for another incarnation than the
// one living here is rejected, so no call meant for a dead instance runs on
// its successor out of its caller's order.
//
// What a call is (the runtime's task spec), how it runs and where runners
// come from is the runtime's business (the hooks): the host can be driven by
// hand in a test. Thread-safe; hooks run without the host's lock held.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/block_pool.hpp"
#include "common/ids.hpp"

namespace prism::actors {

/// An actor is named by the id of its creation object.
using ActorId = ObjectId;

/// Who made a call: a rank, and the actor whose method made it there (nil:
/// the rank's driver, tasks and other threads, which share one order).
struct CallerId {
  int32_t rank = -1;
  ObjectId actor;
  friend bool operator==(const CallerId&, const CallerId&) = default;
};
struct CallerIdHash {
  size_t operator()(const CallerId& c) const noexcept {
    return ObjectIdHash{}(c.actor) * 31 + static_cast<size_t>(c.rank);
  }
};

/// One call to an actor.
struct Call {
  CallerId caller;
  uint64_t seq = 0;   ///< its place in the caller's calls to this actor: 1, 2, ...
  bool skip = false;  ///< failed at its caller before it was sent: it only takes its turn
  uint32_t incarnation = 0;       ///< the instance it was made for
  std::shared_ptr<void> payload;  ///< the runtime's (its task spec); the host only holds it
};

/// An actor as the host keeps it.
struct HostedActor {
  std::string name;               ///< e.g. "Counter", for reasons and stats
  int max_concurrency = 1;        ///< runners at once
  uint32_t incarnation = 0;       ///< 0, then one more per restart
  std::shared_ptr<void> context;  ///< the runtime's (instance, resources); passed to hooks
};

class ActorHost {
 public:
  struct Hooks {
    /// Start one more runner: have some thread call run(id, context) soon.
    std::function<void(const ActorId& id, const std::shared_ptr<void>& context)> start_runner;
    /// Run `call` on the actor (on the runner's thread).
    std::function<void(const ActorId& id, const std::shared_ptr<void>& context, Call& call)>
        execute;
    /// `call` will never run: fail it with `why`.
    std::function<void(Call& call, const std::string& why)> reject;
    /// Nothing runs on the actor any more and none will: destroy it.
    std::function<void(const ActorId& id, const std::shared_ptr<void>& context)> destroy;
  };

  explicit ActorHost(Hooks hooks);
  ~ActorHost();
  ActorHost(const ActorHost&) = delete;
  ActorHost& operator=(const ActorHost&) = delete;

  /// A constructed actor joins the host. False (nothing added) if the id is
  /// already here, or died here in this incarnation or a later one.
  bool add(const ActorId& id, HostedActor actor);
  /// Queues a call; it runs in its caller's order. A call to an actor that
  /// is dead or not here is rejected at once.
  void enqueue(const ActorId& id, Call call);
  /// A runner: runs ready calls of `id` until there are none.
  void run(const ActorId& id);
  /// For a method of `id` that waits for a call it made to its own actor:
  /// runs, on the calling thread, the next ready call of `caller` if there
  /// is one (returns whether one ran), so that waiting cannot deadlock an
  /// actor that runs one method at a time.
  bool run_from(const ActorId& id, const CallerId& caller);
  /// Whether a call of `caller` to `id` is ready (cheap; for waiters).
  bool has_ready_from(const ActorId& id, const CallerId& caller) const;
  /// Ends the actor (see above); its calls are rejected with "actor <name>
  /// (actor:<id>) <reason>", e.g. reason "was killed by prism::kill".
  /// False if it is not here or dead already.
  bool kill(const ActorId& id, std::string reason);
  /// Kills every actor (shutdown); destroys those that run nothing now.
  void kill_all(const std::string& reason);
  /// Kills the living actors whose id `which` picks (called without the
  /// host's lock); returns how many.
  size_t kill_where(const std::function<bool(const ActorId&)>& which, const std::string& reason);

  /// Why `id` died, if it died here.
  std::optional<std::string> death(const ActorId& id) const;
  bool alive(const ActorId& id) const;
  size_t num_alive() const;
  /// Calls run on actors of this host so far.
  uint64_t calls_run() const;

 private:
  struct Caller {
    uint64_t next = 1;               // the seq that runs next
    std::map<uint64_t, Call> early;  // arrived before their turn
  };
  struct Actor {
    HostedActor info;
    std::unordered_map<CallerId, Caller, CallerIdHash> callers;
    PooledDeque<Call> ready;  // in their callers' order
    int running = 0;         // runners (and run_from calls) on it now
    bool dead = false;
    bool destroyed = false;
  };
  using ActorPtr = std::shared_ptr<Actor>;

  // Moves `call` (and the calls of its caller it unblocks) to ready. Requires mu_.
  void admit_locked(Actor& a, Call call);
  // Whether another runner should start (and counts it). Requires mu_.
  bool want_runner_locked(Actor& a);
  // Marks dead and takes the calls to reject. Requires mu_.
  std::vector<Call> bury_locked(const ActorId& id, Actor& a, const std::string& reason);
  void reject_all(std::vector<Call>& calls, const std::string& why);
  std::string tombstones_at(const ActorId& id) const;
  // The last runner left a dead actor: destroy it (once).
  void finish_if_dead(const ActorId& id, const ActorPtr& a);

  Hooks hooks_;
  mutable std::mutex mu_;
  std::unordered_map<ActorId, ActorPtr, ObjectIdHash> actors_;
  struct Tombstone {
    std::string why;
    uint32_t incarnation = 0;
  };
  std::unordered_map<ActorId, Tombstone, ObjectIdHash> tombstones_;  // id -> why it died
  uint64_t calls_run_ = 0;
};

}  // namespace prism::actors
