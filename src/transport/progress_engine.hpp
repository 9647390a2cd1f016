// ProgressEngine: who drives the transport, and how idle threads wait.
//
// Policy (measured on this 2-vCPU VM: a futex wake costs ~7-13 us, a spinning
// waiter sees a change in ~0.3 us, nanosleep(0) ~94 us):
//  * A thread that waits for something (a driver in get(), an idle worker)
//    first spins for `spin_us`, polling the transport itself whenever nobody
//    else is polling. Incoming work therefore reaches it with no thread
//    hand-off at all while work is flowing. At most `max_spinners` waiters
//    spin at once: on an oversubscribed host a spinner steals the core the
//    thread doing the work needs (measured: 3 ranks on 2 cores, a 2 ms spin
//    made a task round trip 1 ms).
//  * Then (or at once, when enough others spin) it sleeps on the futex of its
//    channel until notify(channel) is called. Channels keep an object
//    becoming ready from waking idle workers, and queued work from waking a
//    driver blocked in get().
//  * The rank's dedicated progress thread (run()) polls only while no waiter
//    is spinning. When there is nothing to dispatch it sleeps: it rests
//    (Transport::wait_for_wake: arriving messages do not wake it) while
//    another thread of the rank polls or will poll soon -- a spinning
//    waiter, or a worker running a job, which spins and polls when it runs
//    out of jobs -- for kRestUs at most, or until the last such thread goes
//    to sleep, and not while messages stream in that no other thread looks
//    for (workers in back-to-back or long jobs); otherwise it arms the
//    transport's event fd and sleeps in epoll (after spinning `spin_us`
//    only on hosts with cores to spare). An idle rank uses no CPU. Resting
//    matters where a node rank's workers and its progress thread share
//    cores: a wake-up per arriving message took the core from the worker
//    that was about to take the message itself (docs/scheduling.md).
// Anything that changes state a waiter may wait for must call notify(); the
// engine itself notifies after every poll that dispatched messages.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>

#include "transport/transport.hpp"

namespace prism::transport {

/// Busy threads on the whole host — running tasks plus spinning waiters —
/// shared by its ranks (a word in shared memory). A waiter spins only while
/// fewer than `limit` (the cores) are busy: a spin must never take the core
/// of a running task, however many ranks are oversubscribed onto the host.
struct HostSpinBudget {
  std::atomic<uint32_t>* busy = nullptr;  // null: no host-wide limit
  uint32_t limit = 0;
};

class ProgressEngine {
 public:
  using Clock = std::chrono::steady_clock;

  /// What a waiter waits for; notify() wakes only that channel's sleepers.
  enum Channel : int { kObjects = 0, kWork = 1, kNumChannels = 2 };

  using HostSpinBudget = transport::HostSpinBudget;

  /// A private wake-up word for the waiters of one thing (say, one object):
  /// notify(word) wakes only them. With hundreds of tasks blocked in get() on
  /// different objects, a channel-wide wake-up per completed object would
  /// wake every one of them (measured: nested fib across 2 nodes ran at
  /// ~600 tasks/s with 1000 blocked threads woken per result).
  struct WakeWord {
    std::atomic<uint32_t> epoch{0};  // futex word
    std::atomic<uint32_t> sleepers{0};
  };

  ProgressEngine(Transport& transport, uint32_t spin_us, uint32_t max_spinners = 1,
                 HostSpinBudget host = {})
      : host_(host),
        transport_(transport),
        spin_(std::chrono::microseconds(spin_us)),
        max_spin_(std::chrono::microseconds(spin_us) * kMaxSpinFactor),
        max_spinners_(max_spinners) {
    for (auto& c : channels_) c.spin_ns.store(std::chrono::nanoseconds(spin_).count());
  }

  /// The dedicated progress loop; returns after stop(). Call from one thread.
  void run();
  /// Makes run() return and wakes every waiter. Thread-safe.
  void stop();
  bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }

  /// Blocks until `done()` is true or `deadline` passes; returns done().
  /// `done` is re-evaluated after every notify(); it must be cheap and must
  /// not block. Thread-safe. Example:
  ///   engine.wait_until([&] { return ready.load(); });
  /// With `word`, the sleeping phase waits on it instead of the channel:
  /// only notify(*word) wakes it (the channel still governs spinning).
  bool wait_until(const std::function<bool()>& done,
                  Clock::time_point deadline = Clock::time_point::max(), Channel channel = kObjects,
                  WakeWord* word = nullptr);

  /// Wakes the channel's sleeping waiters so they re-check their condition.
  /// `needed`: how many waiters the change can satisfy (e.g. 1 for one queued
  /// job); waiters spinning on the channel count first, so a job that a
  /// spinning worker will take wakes nobody. Thread-safe; cheap when nobody
  /// sleeps (one atomic add and two loads).
  void notify(Channel channel = kObjects, uint32_t needed = UINT32_MAX) noexcept;
  void notify_all() noexcept;
  /// Wakes the waiters sleeping on `word`. Thread-safe; cheap when none sleep.
  static void notify(WakeWord& word) noexcept;

  /// A task starts / stops running on this host (see HostSpinBudget). A
  /// thread running one also looks at the transport when it ends, so while
  /// any does, the progress thread rests (run()).
  void enter_busy() noexcept {
    busy_here_.fetch_add(1, std::memory_order_acq_rel);
    if (host_.busy) host_.busy->fetch_add(1, std::memory_order_acq_rel);
  }
  void leave_busy() noexcept {
    if (host_.busy) host_.busy->fetch_sub(1, std::memory_order_acq_rel);
    busy_here_.fetch_sub(1, std::memory_order_acq_rel);
  }

  /// Polls once if nobody else is. Handlers notify what they changed.
  /// Runs the deferred work first if it was requested.
  int poll_once() {
    const int n = poll();
    // A thread other than the progress thread looked (a waiter, a worker
    // between jobs): the rest policy's sign that messages are taken soon.
    if (n >= 0 && !waiter_polled_.load(std::memory_order_relaxed))
      waiter_polled_.store(true, std::memory_order_relaxed);
    return n;
  }

  /// Work that may wait until some thread next polls (the owner's batched
  /// messages): set once, before run(). Thread-safe to request: the next
  /// poll by any thread runs it, and a sleeping progress thread is woken.
  void set_deferred_work(std::function<void()> work) { deferred_work_ = std::move(work); }
  void request_deferred_work() {
    deferred_requested_.store(true, std::memory_order_release);
    transport_.wake();
  }

  Transport& transport() noexcept { return transport_; }

 private:
  // The longest a message waits while every thread that would take it is
  // in one long job: the resting progress thread looks this often.
  static constexpr int64_t kRestUs = 1000;
  // No rest while messages stream in (this many or more in a rest's
  // length) and no other thread of the rank looked at the transport in that
  // time: a worker going from job to job, or in one long job, would not take
  // them soon enough, and they would back up (measured: async tasks over two
  // node ranks lost 16-43% when the progress thread rested regardless). A
  // stream the workers do take -- the results of a task graph's small
  // steps, each worker polling as its step ends -- lets it rest: waking for
  // each of those messages took the core from the worker about to take it
  // (docs/scheduling.md).
  static constexpr uint64_t kStreamPerRest = 16;
  bool may_rest(Clock::time_point now) noexcept;
  // The progress thread's own poll: unlike poll_once(), not a sign that
  // some other thread looks at the transport.
  int poll() {
    if (deferred_requested_.load(std::memory_order_acquire) &&
        deferred_requested_.exchange(false, std::memory_order_acq_rel))
      deferred_work_();
    const int n = transport_.try_poll();
    if (n > 0) received_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    return n;
  }
  // A thread about to sleep: if it was the last one that polls, the resting
  // progress thread goes back to sleeping on the transport's events.
  void end_rest_if_last() noexcept;
  void rest();
  // Adaptive spinning: a wait that ended soon after its waiter fell asleep
  // means the spin was too short for this rank's round trip (falling asleep
  // makes the round trip itself slower: ~4 wake-ups of 10-25 us here), so the
  // channel's next spins grow, up to spin_us * kMaxSpinFactor; long waits
  // shrink them back to spin_us, so idle ranks return to sleeping at once.
  static constexpr int kMaxSpinFactor = 20;
  void adapt_spin(int channel, Clock::duration waited, bool slept) noexcept;
  bool acquire_spin_slot() noexcept;
  void release_host_slot() noexcept;

  HostSpinBudget host_;
  std::function<void()> deferred_work_ = [] {};
  std::atomic<bool> deferred_requested_{false};

  Transport& transport_;
  const Clock::duration spin_;
  const Clock::duration max_spin_;
  const uint32_t max_spinners_;
  struct alignas(64) Slot {
    WakeWord wake;  // the channel's sleepers; notify() bumps it
    std::atomic<uint32_t> spinners{0};
    std::atomic<int64_t> spin_ns{0};  // current adaptive spin budget
    // A single wake (notify with `needed` 1) is on its way: a sleeper was
    // woken and has not run yet. On an oversubscribed host that takes a
    // while, and waking again meanwhile would only be a wasted syscall per
    // notify. The woken sleeper clears it; waiters that take work and see
    // more must wake the next one themselves (WorkerPool does).
    std::atomic<uint32_t> wake_pending{0};
  };
  Slot channels_[kNumChannels];
  alignas(64) std::atomic<uint32_t> spinners_{0};  // waiters spinning (polling) now
  std::atomic<int> busy_here_{0};                  // this rank's threads running a job (enter_busy)
  std::atomic<bool> resting_{false};               // run() sleeps in wait_for_wake()
  std::atomic<uint64_t> received_{0};              // messages dispatched here, by any thread
  uint64_t window_start_count_ = 0;                // run() only: the stream-rate window
  Clock::time_point window_start_{};
  bool streaming_ = false;
  bool waiters_kept_up_ = false;            // run() only: a waiter polled in the last window
  std::atomic<bool> waiter_polled_{false};  // set by poll_once(), taken by may_rest()
  std::atomic<bool> stop_{false};
};

}  // namespace prism::transport
