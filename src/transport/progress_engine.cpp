#include "transport/progress_engine.hpp"

#include "common/futex.hpp"

namespace prism::transport {

void ProgressEngine::notify(Channel channel, uint32_t needed) noexcept {
  auto& c = channels_[channel];
  c.wake.epoch.fetch_add(1, std::memory_order_acq_rel);
  if (c.wake.sleepers.load(std::memory_order_acquire) == 0) return;
  const uint32_t spinning = c.spinners.load(std::memory_order_acquire);
  if (needed == UINT32_MAX)
    futex_wake_all(c.wake.epoch);
  else if (needed == 1 && spinning == 0) {
    if (c.wake_pending.exchange(1, std::memory_order_acq_rel) == 0) futex_wake(c.wake.epoch, 1);
  } else if (needed > spinning) {
    futex_wake(c.wake.epoch, static_cast<int>(needed - spinning));
  }
}

void ProgressEngine::notify(WakeWord& word) noexcept {
  word.epoch.fetch_add(1, std::memory_order_acq_rel);
  if (word.sleepers.load(std::memory_order_acquire) != 0) futex_wake_all(word.epoch);
}

void ProgressEngine::notify_all() noexcept {
  for (int c = 0; c < kNumChannels; ++c) notify(static_cast<Channel>(c));
}

// A slot in this rank's spinner count and, when set, the host's.
bool ProgressEngine::acquire_spin_slot() noexcept {
  uint32_t s = spinners_.load(std::memory_order_acquire);
  bool mine = false;
  while (s < max_spinners_ && !mine)
    mine = spinners_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel);
  if (!mine) return false;
  if (host_.busy) {
    uint32_t h = host_.busy->load(std::memory_order_acquire);
    bool ok = false;
    while (h < host_.limit && !ok)
      ok = host_.busy->compare_exchange_weak(h, h + 1, std::memory_order_acq_rel);
    if (!ok) {
      spinners_.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
  }
  return true;
}

void ProgressEngine::release_host_slot() noexcept {
  if (host_.busy) host_.busy->fetch_sub(1, std::memory_order_acq_rel);
}

void ProgressEngine::adapt_spin(int channel, Clock::duration waited, bool slept) noexcept {
  auto& c = channels_[channel];
  const int64_t cur = c.spin_ns.load(std::memory_order_relaxed);
  const int64_t w = std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count();
  const int64_t lo = std::chrono::duration_cast<std::chrono::nanoseconds>(spin_).count();
  const int64_t hi = std::chrono::duration_cast<std::chrono::nanoseconds>(max_spin_).count();
  int64_t next = cur;
  if (slept && w <= hi)
    next = std::min(hi, w + w / 4);  // just missed: spin a bit longer
  else if (slept)
    next = std::max(lo, cur / 2);  // long wait: back towards sleeping
  if (next != cur) c.spin_ns.store(next, std::memory_order_relaxed);
}

bool ProgressEngine::wait_until(const std::function<bool()>& done, Clock::time_point deadline,
                                Channel channel, WakeWord* word) {
  if (done()) return true;
  const auto started = Clock::now();
  bool finished = false, timed_out = false;
  // Phase 1: spin, helping with progress, if a spinner slot is free.
  const bool spinning = acquire_spin_slot();
  auto& ch = channels_[channel];
  if (spinning) ch.spinners.fetch_add(1, std::memory_order_acq_rel);
  const auto spin = std::chrono::nanoseconds(ch.spin_ns.load(std::memory_order_relaxed));
  auto spin_end = started + spin;
  for (unsigned i = 0; spinning; ++i) {
    if (done()) {
      finished = true;
      break;
    }
    if (poll_once() > 0) spin_end = Clock::now() + spin;  // work is flowing: keep spinning
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
  if (spinning) {
    ch.spinners.fetch_sub(1, std::memory_order_acq_rel);
    release_host_slot();
  }
  if (spinning) spinners_.fetch_sub(1, std::memory_order_acq_rel);
  if (finished) return true;
  // Going to sleep: if no thread of the rank polls any more, hand polling
  // back to the progress thread now. A waiter that got what it waited for
  // does not: it is about to work (busy: the progress thread rests for it),
  // and waking the progress thread would put a third runnable thread on the
  // critical path of an oversubscribed host.
  if (!timed_out) end_rest_if_last();
  if (timed_out) return done();
  // Phase 2: sleep until notified (the progress thread keeps polling).
  WakeWord& sleep_on = word ? *word : ch.wake;
  auto& epoch = sleep_on.epoch;
  auto& sleepers = sleep_on.sleepers;
  while (true) {
    const uint32_t e = epoch.load(std::memory_order_acquire);
    if (done()) {
      // Leaving: clear a wake that may have been meant for us, or that found
      // no one in the kernel while we were between checks (else the next
      // notify would skip a real sleeper until its safety re-check).
      if (!word) ch.wake_pending.store(0, std::memory_order_release);
      adapt_spin(channel, Clock::now() - started, true);
      return true;
    }
    if (stopping()) return done();
    auto now = Clock::now();
    if (now >= deadline) return false;
    sleepers.fetch_add(1, std::memory_order_acq_rel);
    if (epoch.load(std::memory_order_acquire) == e && !done()) {
      int64_t ns =
          deadline == Clock::time_point::max()
              ? 100'000'000  // re-check now and then: a lost wake-up costs 100 ms, never a hang
              : std::min<int64_t>(
                    100'000'000,
                    std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count());
      futex_wait(epoch, e, ns);
      if (!word) ch.wake_pending.store(0, std::memory_order_release);  // (see Slot)
    }
    sleepers.fetch_sub(1, std::memory_order_acq_rel);
  }
}

// Per kRestUs window: did messages stream in (kStreamPerRest or more), and
// did another thread poll meanwhile? Rest unless they streamed and none did.
bool ProgressEngine::may_rest(Clock::time_point now) noexcept {
  if (now - window_start_ >= std::chrono::microseconds(kRestUs)) {
    const uint64_t count = received_.load(std::memory_order_relaxed);
    streaming_ = count - window_start_count_ >= kStreamPerRest;
    waiters_kept_up_ = waiter_polled_.exchange(false, std::memory_order_relaxed);
    window_start_count_ = count;
    window_start_ = now;
  }
  return !streaming_ || waiters_kept_up_;
}

void ProgressEngine::end_rest_if_last() noexcept {
  if (resting_.load(std::memory_order_seq_cst) && spinners_.load(std::memory_order_seq_cst) == 0 &&
      busy_here_.load(std::memory_order_seq_cst) == 0)
    transport_.wake();
}

void ProgressEngine::run() {
  // Spin after dispatching only where cores are to spare: on an
  // oversubscribed host (max_spinners == 1) the waiters do the spinning.
  const bool may_spin = max_spinners_ > 1;
  auto last_dispatch = Clock::time_point{};
  while (!stopping()) {
    const uint32_t s = spinners_.load(std::memory_order_acquire);
    if (s != 0) {  // a waiter is polling for us: stay out of its way
      rest();
      continue;
    }
    const int n = poll();
    if (n > 0) {
      last_dispatch = Clock::now();
      continue;
    }
    if (n < 0) {  // another thread holds the poll role for a moment
      cpu_relax();
      continue;
    }
    if (may_spin && Clock::now() - last_dispatch < spin_) {
      cpu_relax();
      continue;
    }
    if (busy_here_.load(std::memory_order_acquire) > 0 && may_rest(Clock::now())) {
      rest();  // a worker looks when its job ends
      continue;
    }
    transport_.wait_for_events(-1);
  }
}

// Sleeps while another thread of this rank polls now (a spinner) or will
// when its job ends (a busy worker): until kRestUs pass, or the last of them
// goes to sleep (end_rest_if_last), or wake(). The transport's events do not
// end the rest: a message that arrives meanwhile is taken by that thread, and
// waking this one for it would only take the core from it.
void ProgressEngine::rest() {
  resting_.store(true, std::memory_order_seq_cst);
  if (spinners_.load(std::memory_order_seq_cst) != 0 ||
      busy_here_.load(std::memory_order_seq_cst) != 0)
    transport_.wait_for_wake(kRestUs);
  resting_.store(false, std::memory_order_seq_cst);
}

void ProgressEngine::stop() {
  stop_.store(true, std::memory_order_release);
  transport_.wake();
  notify_all();
}

}  // namespace prism::transport
