#include <gtest/gtest.h>

#include <atomic>

#include "transport/loopback_transport.hpp"
#include "transport/progress_engine.hpp"
#include "worker/worker_pool.hpp"

using namespace prism;
using Clock = transport::ProgressEngine::Clock;

namespace {
struct PoolFixture : ::testing::Test {
  transport::LoopbackFabric fabric{1};
  transport::ProgressEngine engine{fabric.at(0), 10};
  PoolFixture() {
    fabric.at(0).set_handler([](int, std::span<const std::byte>) {});
  }
};
}  // namespace

TEST_F(PoolFixture, RunsJobsOnSlots) {
  worker::WorkerPool pool({.slots = 2}, engine);
  pool.start();
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) pool.submit([&] { ++done; });
  EXPECT_TRUE(
      engine.wait_until([&] { return done == 100; }, Clock::now() + std::chrono::seconds(10)));
  pool.stop();
}

// Regression: a job that blocks (lends its slot) BEFORE the job it waits for
// is queued. The pool must start a thread for the late job, or it deadlocks.
TEST_F(PoolFixture, JobQueuedAfterEveryThreadBlockedStillRuns) {
  worker::WorkerPool pool({.slots = 1}, engine);
  pool.start();
  std::atomic<bool> blocked{false}, released{false}, finished{false};
  pool.submit([&] {
    pool.lend_slot();
    blocked = true;
    engine.notify();
    engine.wait_until([&] { return released.load(); }, Clock::now() + std::chrono::seconds(10));
    pool.reclaim_slot();
    finished = true;
    engine.notify();
  });
  ASSERT_TRUE(
      engine.wait_until([&] { return blocked.load(); }, Clock::now() + std::chrono::seconds(10)));
  pool.submit([&] {
    released = true;
    engine.notify();
  });
  EXPECT_TRUE(
      engine.wait_until([&] { return finished.load(); }, Clock::now() + std::chrono::seconds(10)));
  EXPECT_TRUE(released.load()) << "the late job never ran: deadlock";
  pool.stop();
}
