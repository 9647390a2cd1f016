#include "common/adaptive_mutex.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using namespace prism;
using namespace std::chrono_literals;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

template <class Mutex>
void count_under_contention() {
  Mutex m;
  uint64_t counter = 0;  // plain: only the lock protects it
  constexpr int kThreads = 4, kEach = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        std::lock_guard lk(m);
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, uint64_t{kThreads} * kEach);
}

}  // namespace

TEST(AdaptiveMutex, ExcludesUnderContention) {
  count_under_contention<AdaptiveMutex>();
  count_under_contention<AdaptiveRecursiveMutex>();
}

// The spin is bounded: a thread whose lock stays taken for long sleeps in the
// kernel instead of burning its core (idle ranks must sleep), and is woken by
// the unlock.
TEST(AdaptiveMutex, AWaiterSleepsPastItsSpinAndTheUnlockWakesIt) {
  AdaptiveMutex m;
  m.lock();
  std::promise<double> cpu_used;
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    const double before = thread_cpu_seconds();
    m.lock();
    got = true;
    cpu_used.set_value(thread_cpu_seconds() - before);
    m.unlock();
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(got.load());
  m.unlock();
  auto f = cpu_used.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "the unlock did not wake the waiter";
  EXPECT_LT(f.get(), 0.05) << "the waiter spun while the lock was held for 200 ms";
  waiter.join();
}

TEST(AdaptiveMutex, RecursiveMutexIsReentrantAndHeldUntilTheLastUnlock) {
  AdaptiveRecursiveMutex m;
  m.lock();
  ASSERT_TRUE(m.try_lock());
  m.lock();
  auto other_try = [&] {
    return std::async(std::launch::async,
                      [&] {
                        if (!m.try_lock()) return false;
                        m.unlock();
                        return true;
                      })
        .get();
  };
  EXPECT_FALSE(other_try());
  m.unlock();
  m.unlock();
  EXPECT_FALSE(other_try());
  m.unlock();
  EXPECT_TRUE(other_try());
}
