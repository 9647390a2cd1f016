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
// hears them within ~100 us.
inline bool poll_until(const std::function<bool()>& done, const std::atomic<bool>& broken) {
  using Clock = std::chrono::steady_clock;
  const auto spin_until = Clock::now() + std::chrono::milliseconds(5);
  auto nap = std::chrono::microseconds(0);
  for (int round = 0;; ++round) {
    if (done()) return true;
    if (broken.load(std::memory_order_acquire)) return false;
    if ((round & 63) != 63 || Clock::now() < spin_until) {
      std::this_thread::yield();
    } else {
      nap = std::min(std::chrono::microseconds(100), nap + std::chrono::microseconds(10));
      std::this_thread::sleep_for(nap);
    }
  }
}

}  // namespace prism::groups
