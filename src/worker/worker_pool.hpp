// WorkerPool: the node rank's worker threads and its CPU slots.
//
// `slots` jobs run at once. A job that blocks (get() inside a task) lends its
// slot back with lend_slot(); if work is queued and no thread is idle, the pool
// starts one more thread, so nested tasks cannot deadlock a full node (Ray's
// "release resources while blocked"). reclaim_slot() takes the slot back
// without waiting: the node briefly runs one job over its slot count rather
// than making the unblocked task queue behind newer ones.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "transport/progress_engine.hpp"
#include "worker/topology.hpp"

namespace prism::worker {

class WorkerPool {
 public:
  using Job = std::function<void()>;

  struct Options {
    int slots = 1;
    bool pin = false;
    const Topology* topology = nullptr;  // for pinning; may be null
    int first_core = 0;  // worker i is pinned to core first_core + i (mod cores): ranks sharing
                         // a host pass different offsets so their workers do not pile up
  };

  WorkerPool(Options options, transport::ProgressEngine& engine);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Starts `slots` threads.
  void start();
  /// Queues a job. A non-zero `key` lets run_inline() find it. Thread-safe.
  void submit(Job job, uint64_t key = 0);
  /// Runs the queued job `key` on the calling thread if no worker started it
  /// yet ("help while waiting": a get() on a local task that has not started
  /// costs no thread wake-up). Returns whether it ran. Thread-safe.
  bool run_inline(uint64_t key);
  /// Lets running jobs finish, drops queued ones, joins every thread.
  /// Returns the number of jobs dropped.
  size_t stop();

  /// For the calling job's thread: it is about to block / has unblocked.
  void lend_slot();
  void reclaim_slot();

  /// The pool whose worker thread is calling, or nullptr.
  static WorkerPool* current() noexcept;
  /// The calling worker thread's index in its pool, or -1.
  static int current_index() noexcept;

  int slots() const noexcept { return options_.slots; }

 private:
  void thread_main(int index);
  void spawn_locked();
  // Starts a thread when queued work has a free slot but no thread to run it
  // (every thread is blocked in get()): threads = idle + running + blocked.
  void ensure_runner_locked();

  Options options_;
  transport::ProgressEngine& engine_;
  struct Entry {
    Job job;
    uint64_t key = 0;
    bool claimed = false;  // guarded by mu_: taken by a worker or run_inline
  };
  // Takes the first unclaimed job, or nothing. Requires mu_.
  std::shared_ptr<Entry> pop_locked();

  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Entry>> queue_;
  std::unordered_map<uint64_t, std::weak_ptr<Entry>> by_key_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> queued_{0};
  std::atomic<int> active_{0};   // jobs holding a slot
  std::atomic<int> idle_{0};     // threads waiting for a job
  std::atomic<int> blocked_{0};  // jobs that lent their slot (blocked in get)
  std::atomic<bool> stop_{false};
};

}  // namespace prism::worker
