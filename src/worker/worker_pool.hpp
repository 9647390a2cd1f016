// WorkerPool: the node rank's worker threads and the resources they hold.
//
// A queued job starts when the node's ResourceLedger can grant everything it
// asked for (CPUs, GPUs, memory, custom resources); it holds them until it
// returns. Plain one-CPU jobs take a fast path. Jobs start first-fit in queue
// order, except that a job passed over many times reserves what it lacks:
// later jobs that would compete for it wait behind it, so a 4-CPU or GPU task
// is not starved by a stream of small ones.
//
// A job that blocks (get() inside a task) lends its CPUs back with
// lend_slot(); when queued work then fits and no thread is free, the pool
// starts one more thread, so nested tasks cannot deadlock a full node (Ray's
// "release resources while blocked"). reclaim_slot() takes the CPUs back
// without waiting: the node briefly runs over its CPU count rather than making
// the unblocked task queue behind newer ones. GPUs, memory and custom
// resources stay held while a task blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/adaptive_mutex.hpp"
#include "common/block_pool.hpp"
#include "scheduler/resource_ledger.hpp"
#include "transport/progress_engine.hpp"
#include "worker/topology.hpp"

namespace prism::worker {

class WorkerPool {
 public:
  using Job = std::function<void()>;

  struct Options {
    scheduler::NodeResources resources;  // what the ledger hands out (num_cpus: CPU slots)
    bool pin = false;
    const Topology* topology = nullptr;  // for pinning; may be null
    int first_core = 0;  // worker i is pinned to core first_core + i (mod cores): ranks sharing
                         // a host pass different offsets so their workers do not pile up
    std::function<void()> after_job;  // runs on the worker once a job's resources are released
    // A thread beyond the CPU slots (started for a blocked job's lent slot or
    // a job that needs no CPU) that finds no work for this long exits, so a
    // burst of such jobs does not leave the node with a thousand idle threads.
    std::chrono::milliseconds retire_idle{2000};
  };

  /// A snapshot of the pool's load, for heartbeats.
  struct Load {
    uint32_t queued = 0;   // waiting for resources
    uint32_t running = 0;  // holding resources (not blocked in get)
    uint32_t movable = 0;  // of `queued`, jobs submitted with a move tag
  };
  /// submit()'s `move_tag` for a job that must run here.
  static constexpr uint64_t kStays = ~uint64_t{0};

  WorkerPool(Options options, transport::ProgressEngine& engine);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Starts one thread per CPU slot.
  void start();
  struct Entry;
  /// Names a queued job for run_inline(). Keeps nothing alive.
  using Ticket = std::weak_ptr<Entry>;

  /// Queues a job that will hold `demand` while it runs. The ticket lets
  /// run_inline() find it. `short_job`: the caller expects it to take
  /// microseconds, so while every queued job has a thread running a short
  /// job that will look for it next, no sleeping thread is woken (a futex
  /// wake per job cost ~15% of the submitter's time with empty tasks). A
  /// thread running a long job, or blocked, does not count. Thread-safe.
  /// `keep`: what the job points at, owned by the queue entry (freed after
  /// the job ran, or with the entry if it never runs).
  /// `move_tag`: a plain one-CPU job that another node could run instead
  /// carries a tag (the caller's name for it); take_movable() hands back
  /// the tags of such jobs it removes from the queue.
  Ticket submit(Job job, scheduler::ResourceDemand demand = {}, bool short_job = false,
                std::shared_ptr<void> keep = nullptr, uint64_t move_tag = kStays);
  /// Removes up to `n` queued, unclaimed jobs that carry a move tag, oldest
  /// first, and returns their tags: they will not run here (work stealing,
  /// docs/scheduling.md). `take`, if given, sees each candidate's tag first
  /// and ends the taking by returning false. Thread-safe (`take` runs under
  /// the pool's lock).
  std::vector<uint64_t> take_movable(size_t n, const std::function<bool(uint64_t)>& take = nullptr);
  /// Runs the queued plain-CPU job `ticket` on the calling thread if no worker
  /// started it yet ("help while waiting": a get() on a local task that has
  /// not started costs no thread wake-up). A worker lends its own CPU to it;
  /// another thread (the driver) needs a free CPU in the ledger. Returns
  /// whether it ran. Thread-safe.
  bool run_inline(const Ticket& ticket);
  /// Lets running jobs finish, drops queued ones, joins every thread.
  /// Returns the number of jobs dropped.
  size_t stop();

  /// On a worker, in its outermost job, once the job's own work is done: the
  /// first job submitted from this thread until the scope ends wakes no
  /// sleeping thread, because this thread looks at the queue next. A task
  /// made ready by the result being delivered then runs on the thread that
  /// delivered it, with no futex wake and no second thread's wake-up on the
  /// critical path of a dependency chain. Does nothing on other threads, in
  /// a job run inline, or where the thread will not go back to the queue
  /// (the caller's to know: an actor's runner keeps taking calls).
  class FinishingScope {
   public:
    explicit FinishingScope(WorkerPool& pool);
    ~FinishingScope();
    FinishingScope(const FinishingScope&) = delete;
    FinishingScope& operator=(const FinishingScope&) = delete;

   private:
    bool active_ = false;
  };

  /// For the calling job's thread: it is about to block / has unblocked.
  void lend_slot();
  void reclaim_slot();

  /// For the calling job: when it returns, `part` of what it holds stays
  /// held (with every GPU it was granted, if `part` has GPUs) instead of
  /// going back to the ledger: an actor's creation keeps its resources for
  /// the actor's life. Returns the kept grant. The job must have been
  /// granted at least `part`; a thread outside a job gets an empty grant.
  scheduler::ResourceGrant keep_after_job(const scheduler::ResourceDemand& part);
  /// Returns what keep_after_job kept (the actor died). Thread-safe.
  void release_kept(const scheduler::ResourceDemand& part, const scheduler::ResourceGrant& grant);

  /// Takes `demand` from the ledger now, for no job (a group member's
  /// reservation, docs/mpi-interop.md), if all of it is free; give it back
  /// with release_kept. Thread-safe.
  std::optional<scheduler::ResourceGrant> try_reserve(const scheduler::ResourceDemand& demand);
  /// How many reservations of `each` would succeed now (at most `limit`).
  int room_for(const scheduler::ResourceDemand& each, int limit) const;

  /// While it lives, the calling thread's job sees `ids` as its GPUs
  /// (current_gpu_ids): an actor's methods see the GPUs the actor holds.
  class GpuScope {
   public:
    explicit GpuScope(const std::vector<int>& ids);
    ~GpuScope();
    GpuScope(const GpuScope&) = delete;
    GpuScope& operator=(const GpuScope&) = delete;

   private:
    std::vector<int> outer_;
  };

  /// Whether a job asking for `demand` should queue here rather than go
  /// elsewhere: fewer than `max_queued` jobs wait, and — unless it is a
  /// plain one-CPU job — its resources are free now.
  bool has_room(const scheduler::ResourceDemand& demand, size_t max_queued) const;
  Load load() const;  // cheap: no lock
  /// Entries in the queue, jobs already run inline included (for tests).
  size_t queue_entries() const;
  /// Nothing queued or running (cheap: no lock).
  bool idle() const noexcept { return queued_.load() == 0 && running_.load() == 0; }

  /// The pool whose worker thread is calling, or nullptr.
  static WorkerPool* current() noexcept;
  /// The calling worker thread's index in its pool, or -1.
  static int current_index() noexcept;
  /// GPU ids granted to the job running on the calling thread (empty if none).
  static const std::vector<int>& current_gpu_ids() noexcept;

  int slots() const noexcept { return slots_; }
  /// Threads alive now: the slots' threads plus extra ones not yet retired.
  size_t threads() const;

 private:
  // A job passed over this often reserves what it lacks (see above).
  static constexpr uint32_t kStarving = 16;
  // How deep into the queue a free thread looks for a job that fits.
  static constexpr size_t kScanDepth = 32;
  // How deep ensure_runner_locked looks for a job worth a new thread.
  static constexpr size_t kSpawnScanDepth = 8;
  // Jobs run inline are dropped from the queue in one pass once there are
  // this many and they are most of it.
  static constexpr size_t kCompactAt = 64;

  void thread_main(int index);
  // Starts a thread, in the place of a retired one if there is one. Requires mu_.
  void spawn_locked();
  // Takes the first queued job that fits and grants its resources. Requires mu_.
  std::shared_ptr<Entry> pop_locked();
  // Starts a thread when a queued job fits but every thread is taken (running
  // or blocked in get). Requires mu_.
  void ensure_runner_locked();
  bool head_fits_locked() const;
  // Counters below change only under mu_ (others read them without it): a
  // plain load and store, not a locked read-modify-write, per change.
  template <class T>
  static void add_locked(std::atomic<T>& counter, int delta) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + static_cast<T>(delta),
                  std::memory_order_release);
  }
  static bool plain_one_cpu(const scheduler::ResourceDemand& d) noexcept {
    return d.is_plain_cpu() && d.num_cpus == 1;
  }
  // A job's resources go back to the ledger. Requires mu_.
  void finish_locked(const Entry& e);

  Options options_;
  int slots_;
  transport::ProgressEngine& engine_;

  mutable AdaptiveMutex mu_;          // taken by submitters and workers on every job
  scheduler::ResourceLedger ledger_;  // guarded by mu_
  PooledDeque<std::shared_ptr<Entry>> queue_;
  std::vector<std::thread> threads_;  // by index; a retired one stays until reused or stop()
  std::vector<int> retired_;          // guarded by mu_: indexes of threads that exited
  size_t live_ = 0;                   // guarded by mu_: threads not retired
  std::atomic<size_t> running_{0};  // jobs taken by pool threads, blocked ones included
                                    // (changed under mu_ only, read without it)
  std::atomic<size_t> queued_{0};   // unclaimed jobs in queue_
  size_t unusual_queued_ = 0;       // guarded by mu_: unclaimed jobs that are not plain one-CPU
  size_t claimed_queued_ = 0;       // guarded by mu_: jobs run inline, still in queue_
  std::atomic<uint32_t> movable_queued_{0};  // unclaimed jobs with a move tag (changed under mu_)
  std::atomic<uint32_t> blocked_{0};         // jobs that lent their CPUs (blocked in get)
  std::atomic<uint32_t> running_short_{0};   // pool threads running a short job, not blocked
                                             // (these two: changed under mu_ only)
  std::atomic<uint64_t> generation_{0};      // bumped when a job arrives or resources free up
  std::atomic<bool> stop_{false};
};

// A queued job (public only as the target of a Ticket).
struct WorkerPool::Entry {
  Job job;
  std::shared_ptr<void> keep;  // submit()'s `keep`
  scheduler::ResourceDemand demand;
  scheduler::ResourceGrant grant;
  uint32_t passed_over = 0;    // times it did not fit while a later job started
  bool claimed = false;        // guarded by the pool's lock: taken by a worker or run_inline
  bool short_job = false;      // submit()'s hint
  uint64_t move_tag = kStays;  // submit()'s
  bool keeps = false;          // keep_after_job: `kept` stays held when the job returns
  scheduler::ResourceDemand kept;
};

}  // namespace prism::worker
