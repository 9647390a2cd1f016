// Mutexes that spin for a bounded time before they sleep in the kernel.
//
// Why: the node runtime's lock and the worker pool's lock guard sections of a
// few hundred nanoseconds that the submitting thread and a worker take at the
// same time, call after call. With std::mutex the loser sleeps in futex(2)
// and the winner pays a futex wake-up on unlock: perf put ~20% of a 1:1 async
// actor-call run in those two syscalls and the context switches they cause.
// Spinning for about as long as such a section lasts keeps both threads on
// their cores. The spin is bounded (like glibc's PTHREAD_MUTEX_ADAPTIVE_NP),
// so a thread whose lock holder was descheduled on an oversubscribed host
// still goes to sleep instead of burning the core the holder needs.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "common/futex.hpp"

namespace prism {

class AdaptiveMutex {
 public:
  bool try_lock() noexcept {
    uint32_t expected = kFree;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void lock() noexcept {
    if (try_lock()) return;
    for (int i = 0; i < kSpins; ++i) {
      cpu_relax();
      if (state_.load(std::memory_order_relaxed) == kFree && try_lock()) return;
    }
    // Drepper's futex mutex ("Futexes Are Tricky", mutex 2): a sleeper marks
    // the word kContended so that the unlock that frees it wakes someone.
    while (state_.exchange(kContended, std::memory_order_acquire) != kFree)
      futex_wait(state_, kContended);
  }

  void unlock() noexcept {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) futex_wake(state_, 1);
  }

 private:
  static constexpr uint32_t kFree = 0, kLocked = 1, kContended = 2;
  // ~100 pause instructions: a few microseconds at most, longer than the
  // sections this lock guards and far shorter than a sleep and wake-up.
  static constexpr int kSpins = 100;
  std::atomic<uint32_t> state_{kFree};
};

// The same, re-entrant by the thread that holds it.
class AdaptiveRecursiveMutex {
 public:
  bool try_lock() noexcept {
    if (owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
      ++depth_;
      return true;
    }
    if (!mutex_.try_lock()) return false;
    take();
    return true;
  }

  void lock() noexcept {
    // Only this thread ever stores its own id here, so a relaxed load that
    // sees it is this thread's own earlier store.
    if (owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
      ++depth_;
      return;
    }
    mutex_.lock();
    take();
  }

  void unlock() noexcept {
    if (--depth_ > 0) return;
    owner_.store(std::thread::id{}, std::memory_order_relaxed);
    mutex_.unlock();
  }

  /// Whether the calling thread holds it (the same reasoning as in lock()).
  bool held_by_this_thread() const noexcept {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  void take() noexcept {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    depth_ = 1;
  }

  AdaptiveMutex mutex_;
  std::atomic<std::thread::id> owner_{};
  uint32_t depth_ = 0;  // guarded by mutex_
};

}  // namespace prism
