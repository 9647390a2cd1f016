// How a group's node ranks wait for each other without holding a core.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace prism::groups {

// Polls `done` until it is true or `broken` turns true. MPI progresses only
// inside MPI calls, and a blocking MPI collective would spin all along: for
// the first few milliseconds this spins too (yielding the core to whoever
// needs it), then naps briefly between polls, so that a member waiting long
// for the others does not hold a core (an idle rank must sleep), and still
// hears them within ~100 us. After 100 ms of waiting (a member far behind
// the others, say) the naps grow to 1 ms: a tenth of the wake-ups, for at
// most 1% more time.
inline bool poll_until(const std::function<bool()>& done, const std::atomic<bool>& broken) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::microseconds;
  const auto start = Clock::now();
  const auto spin_until = start + std::chrono::milliseconds(5);
  const auto long_wait = start + std::chrono::milliseconds(100);
  auto nap = microseconds(0);
  bool spinning = true;
  for (int round = 0;; ++round) {
    if (done()) return true;
    if (broken.load(std::memory_order_acquire)) return false;
    if (spinning && ((round & 63) != 63 || Clock::now() < spin_until)) {
      std::this_thread::yield();
      continue;
    }
    spinning = false;  // from now on a nap between polls, none spinning
    const auto cap = Clock::now() < long_wait ? microseconds(100) : microseconds(1000);
    nap = std::min(cap, nap + microseconds(10));
    std::this_thread::sleep_for(nap);
  }
}

}  // namespace prism::groups
