#include "transport/progress_engine.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace prism::transport {
namespace {

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// Plain futex calls: std::atomic::wait has no timeout.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeout_ns) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp,
          nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace

void ProgressEngine::notify(Channel channel) noexcept {
  auto& c = channels_[channel];
  c.epoch.fetch_add(1, std::memory_order_acq_rel);
  if (c.sleepers.load(std::memory_order_acquire) != 0) futex_wake_all(c.epoch);
}

void ProgressEngine::notify_all() noexcept {
  for (int c = 0; c < kNumChannels; ++c) notify(static_cast<Channel>(c));
}

bool ProgressEngine::wait_until(const std::function<bool()>& done, Clock::time_point deadline,
                                Channel channel) {
  if (done()) return true;
  bool finished = false, timed_out = false;
  // Phase 1: spin, helping with progress, if a spinner slot is free.
  uint32_t s = spinners_.load(std::memory_order_acquire);
  bool spinning = false;
  while (s < max_spinners_ && !spinning)
    spinning = spinners_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel);
  auto spin_end = Clock::now() + spin_;
  for (unsigned i = 0; spinning; ++i) {
    if (done()) {
      finished = true;
      break;
    }
    if (poll_once() > 0) spin_end = Clock::now() + spin_;  // work is flowing: keep spinning
    if ((i & 15) == 15) {
      auto now = Clock::now();
      if (now >= deadline) {
        timed_out = true;
        break;
      }
      if (now >= spin_end || stopping()) break;
    }
    cpu_relax();
  }
  if (spinning && spinners_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    futex_wake_all(spinners_);  // hand polling back to the progress thread
  }
  if (finished) return true;
  if (timed_out) return done();
  // Phase 2: sleep until notified (the progress thread keeps polling).
  auto& ch = channels_[channel];
  while (true) {
    const uint32_t e = ch.epoch.load(std::memory_order_acquire);
    if (done()) return true;
    if (stopping()) return done();
    auto now = Clock::now();
    if (now >= deadline) return false;
    ch.sleepers.fetch_add(1, std::memory_order_acq_rel);
    if (ch.epoch.load(std::memory_order_acquire) == e && !done()) {
      int64_t ns = deadline == Clock::time_point::max()
                       ? 100'000'000  // re-check now and then: a lost wake-up costs 100 ms, never a hang
                       : std::min<int64_t>(100'000'000,
                                           std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               deadline - now).count());
      futex_wait(ch.epoch, e, ns);
    }
    ch.sleepers.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ProgressEngine::run() {
  auto last_activity = Clock::now();
  while (!stopping()) {
    const uint32_t s = spinners_.load(std::memory_order_acquire);
    if (s != 0) {  // a waiter is polling for us: stay out of its way
      futex_wait(spinners_, s, 50'000'000);
      last_activity = Clock::now();
      continue;
    }
    int n = poll_once();
    if (n != 0) {  // dispatched something, or another thread is polling
      last_activity = Clock::now();
      continue;
    }
    if (Clock::now() - last_activity < spin_) {
      cpu_relax();
      continue;
    }
    transport_.wait_for_events(-1);
    last_activity = Clock::now();
  }
}

void ProgressEngine::stop() {
  stop_.store(true, std::memory_order_release);
  transport_.wake();
  futex_wake_all(spinners_);
  notify_all();
}

}  // namespace prism::transport
