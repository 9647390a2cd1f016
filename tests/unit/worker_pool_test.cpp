#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "transport/loopback_transport.hpp"
#include "transport/progress_engine.hpp"
#include "worker/worker_pool.hpp"

using namespace prism;
using Clock = transport::ProgressEngine::Clock;

namespace {
worker::WorkerPool::Options node(double cpus, double gpus = 0, uint64_t memory = 0,
                                 std::map<std::string, double> custom = {}) {
  worker::WorkerPool::Options o;
  o.resources = {0, cpus, gpus, memory, std::move(custom)};
  return o;
}
auto in_10s() {
  return Clock::now() + std::chrono::seconds(10);
}
// Tracks how many jobs of a kind run at once, and the peak.
struct Concurrency {
  std::atomic<int> now{0}, peak{0};
  void enter() {
    const int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { --now; }
};
struct PoolFixture : ::testing::Test {
  transport::LoopbackFabric fabric{1};
  transport::ProgressEngine engine{fabric.at(0), 10};
  PoolFixture() {
    fabric.at(0).set_handler([](int, std::span<const std::byte>) {});
  }
};
}  // namespace

TEST_F(PoolFixture, RunsJobsOnSlots) {
  worker::WorkerPool pool(node(2), engine);
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
  worker::WorkerPool pool(node(1), engine);
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

// Threads started for blocked jobs' lent slots go away once idle, and the
// pool starts (reusing their places) as many again for the next such burst.
TEST_F(PoolFixture, ExtraThreadsRetireWhenIdleAndComeBackWhenNeeded) {
  auto o = node(1);
  o.retire_idle = std::chrono::milliseconds(50);
  worker::WorkerPool pool(o, engine);
  pool.start();
  EXPECT_EQ(pool.threads(), 1u);
  for (int burst = 0; burst < 2; ++burst) {
    std::atomic<int> blocked{0}, finished{0};
    std::atomic<bool> release{false};
    constexpr int kJobs = 8;
    for (int i = 0; i < kJobs; ++i)
      pool.submit([&] {
        pool.lend_slot();
        ++blocked;
        engine.notify();
        engine.wait_until([&] { return release.load(); }, in_10s());
        pool.reclaim_slot();
        ++finished;
        engine.notify();
      });
    ASSERT_TRUE(engine.wait_until([&] { return blocked == kJobs; }, in_10s()))
        << "burst " << burst << ": " << blocked << " of " << kJobs << " jobs started";
    EXPECT_GE(pool.threads(), static_cast<size_t>(kJobs));
    release = true;
    engine.notify_all();
    ASSERT_TRUE(engine.wait_until([&] { return finished == kJobs; }, in_10s()));
    // Polled: a retiring thread does not notify anyone.
    const auto deadline = in_10s();
    while (pool.threads() > 1 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(pool.threads(), 1u) << "burst " << burst << ": idle extra threads stayed";
  }
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) pool.submit([&] { ++done; });
  EXPECT_TRUE(engine.wait_until([&] { return done == 50; }, in_10s()));
  pool.stop();
}

// Executor-side holding: a 2-CPU job takes both slots of a 2-CPU node, so no
// 1-CPU job runs beside it; two 1-CPU jobs do run together.
TEST_F(PoolFixture, MultiCpuJobHoldsItsCpus) {
  worker::WorkerPool pool(node(2), engine);
  pool.start();
  Concurrency cpus;  // CPUs in use, counted by the jobs themselves
  std::atomic<int> done{0}, overlap_with_big{0};
  std::atomic<bool> big_running{false};
  for (int i = 0; i < 20; ++i) {
    if (i % 5 == 0) {
      scheduler::ResourceDemand two;
      two.num_cpus = 2;
      pool.submit(
          [&] {
            big_running = true;
            cpus.enter();
            cpus.enter();
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            cpus.leave();
            cpus.leave();
            big_running = false;
            ++done;
          },
          two);
    } else {
      pool.submit([&] {
        if (big_running) ++overlap_with_big;
        cpus.enter();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        cpus.leave();
        ++done;
      });
    }
  }
  ASSERT_TRUE(engine.wait_until([&] { return done == 20; }, in_10s()));
  EXPECT_EQ(overlap_with_big.load(), 0);
  EXPECT_LE(cpus.peak.load(), 2);
  pool.stop();
}

TEST_F(PoolFixture, CustomResourceAndMemoryAreHeld) {
  worker::WorkerPool pool(node(4, 0, 1000, {{"fpga", 1}}), engine);
  pool.start();
  Concurrency fpga, mem;
  std::atomic<int> done{0};
  scheduler::ResourceDemand on_fpga, big_mem;
  on_fpga.custom["fpga"] = 1;
  big_mem.memory = 600;  // two never fit in 1000
  for (int i = 0; i < 6; ++i) {
    pool.submit(
        [&] {
          fpga.enter();
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          fpga.leave();
          ++done;
        },
        on_fpga);
    pool.submit(
        [&] {
          mem.enter();
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          mem.leave();
          ++done;
        },
        big_mem);
  }
  ASSERT_TRUE(engine.wait_until([&] { return done == 12; }, in_10s()));
  EXPECT_EQ(fpga.peak.load(), 1);
  EXPECT_EQ(mem.peak.load(), 1);
  pool.stop();
}

TEST_F(PoolFixture, GpuJobsSeeTheirGrant) {
  worker::WorkerPool pool(node(4, 2), engine);
  pool.start();
  std::mutex mu;
  std::vector<std::vector<int>> seen;
  std::atomic<int> done{0};
  scheduler::ResourceDemand one_gpu;
  one_gpu.num_gpus = 1;
  for (int i = 0; i < 4; ++i)
    pool.submit(
        [&] {
          {
            std::lock_guard lk(mu);
            seen.push_back(worker::WorkerPool::current_gpu_ids());
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          ++done;
        },
        one_gpu);
  pool.submit([&] {
    std::lock_guard lk(mu);
    seen.push_back(worker::WorkerPool::current_gpu_ids());  // a CPU job: none
    ++done;
  });
  ASSERT_TRUE(engine.wait_until([&] { return done == 5; }, in_10s()));
  int with_gpu = 0;
  for (const auto& ids : seen) {
    if (ids.empty()) continue;
    ++with_gpu;
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_TRUE(ids[0] == 0 || ids[0] == 1);
  }
  EXPECT_EQ(with_gpu, 4);
  pool.stop();
}

// A 2-CPU job behind a stream of 1-CPU jobs on a 2-CPU node: without a
// reservation it would wait until the stream ends.
TEST_F(PoolFixture, BigJobIsNotStarvedBySmallOnes) {
  worker::WorkerPool pool(node(2), engine);
  pool.start();
  std::atomic<int> small_done{0};
  std::atomic<int> small_done_when_big_ran{-1};
  auto small = [&] {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    ++small_done;
  };
  pool.submit(small);
  scheduler::ResourceDemand two;
  two.num_cpus = 2;
  pool.submit([&] { small_done_when_big_ran = small_done.load(); }, two);
  for (int i = 0; i < 400; ++i) pool.submit(small);
  ASSERT_TRUE(engine.wait_until([&] { return small_done == 401; }, in_10s()));
  ASSERT_GE(small_done_when_big_ran.load(), 0) << "the 2-CPU job never ran";
  EXPECT_LT(small_done_when_big_ran.load(), 100);
  pool.stop();
}

// Fractional CPUs: four 0.5-CPU jobs run at once on 2 CPUs (the pool starts
// threads beyond its slot count for them).
TEST_F(PoolFixture, FractionalCpusShareSlots) {
  worker::WorkerPool pool(node(2), engine);
  pool.start();
  Concurrency c;
  std::atomic<int> done{0};
  std::atomic<bool> go{false};
  scheduler::ResourceDemand half;
  half.num_cpus = 0.5;
  for (int i = 0; i < 4; ++i)
    pool.submit(
        [&] {
          c.enter();
          engine.wait_until([&] { return go.load() || c.now.load() == 4; }, in_10s());
          go = true;
          engine.notify_all();
          c.leave();
          ++done;
        },
        half);
  ASSERT_TRUE(engine.wait_until([&] { return done == 4; }, in_10s()));
  EXPECT_EQ(c.peak.load(), 4);
  pool.stop();
}

// A burst of jobs that can only finish together (each waits for all the
// others to start) needs every thread awake at once. notify() sends one wake
// at a time (wake_pending), so the woken threads must wake each other in turn;
// without that the burst would sit behind the first thread forever. Short and
// ordinary jobs alike.
TEST_F(PoolFixture, BurstWakesEveryThread) {
  constexpr int kThreads = 4;
  worker::WorkerPool pool(node(kThreads), engine);
  pool.start();
  for (bool short_job : {false, true}) {
    auto fastest = Clock::duration::max();
    for (int round = 0; round < 3; ++round) {  // the fastest of three: CI hosts stall
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // every thread asleep
      std::atomic<int> started{0}, done{0};
      const auto t0 = Clock::now();
      for (int i = 0; i < kThreads; ++i)
        pool.submit(
            [&] {
              ++started;
              const auto give_up = Clock::now() + std::chrono::seconds(10);
              while (started.load() < kThreads && Clock::now() < give_up) std::this_thread::yield();
              if (started.load() == kThreads) ++done;
              engine.notify();  // the test's wait below
            },
            {}, short_job);
      EXPECT_TRUE(engine.wait_until([&] { return done + 0 == kThreads; },
                                    Clock::now() + std::chrono::seconds(10)))
          << "short_job=" << short_job << ": " << started << " of " << kThreads << " started";
      fastest = std::min(fastest, Clock::now() - t0);
    }
    // Woken in turn, not by the engine's 100 ms safety re-check (which
    // comes ~95 ms after the burst here).
    EXPECT_LT(fastest, std::chrono::milliseconds(50)) << "short_job=" << short_job;
  }
  pool.stop();
}

// A short job must not wait behind a long one while another thread sleeps:
// only threads running short jobs count as "about to look at the queue".
TEST_F(PoolFixture, ShortJobDoesNotWaitBehindALongOne) {
  worker::WorkerPool pool(node(2), engine);
  pool.start();
  auto fastest = Clock::duration::max();
  for (int round = 0; round < 3; ++round) {  // the fastest of three: CI hosts stall
    std::atomic<bool> long_running{false}, release{false}, short_ran{false};
    pool.submit([&] {
      long_running = true;
      engine.notify();
      const auto give_up = Clock::now() + std::chrono::seconds(10);
      while (!release && Clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      engine.notify();  // the test waits for the pool to be idle
    });
    ASSERT_TRUE(engine.wait_until([&] { return long_running.load(); }, in_10s()));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the other thread sleeps
    const auto t0 = Clock::now();
    pool.submit(
        [&] {
          short_ran = true;
          engine.notify();
        },
        {}, /*short_job=*/true);
    EXPECT_TRUE(engine.wait_until([&] { return short_ran.load(); }, in_10s()));
    fastest = std::min(fastest, Clock::now() - t0);
    release = true;
    EXPECT_TRUE(engine.wait_until([&] { return pool.idle(); }, in_10s()));
  }
  // Woken at once, not by the sleeping thread's 100 ms safety re-check.
  EXPECT_LT(fastest, std::chrono::milliseconds(50));
  pool.stop();
}

// A queued job's ticket lets a waiting thread run it itself, once: not after
// a worker took it, and not a second time.
TEST_F(PoolFixture, TicketRunsAQueuedJobInlineOnce) {
  worker::WorkerPool pool(node(1), engine);
  pool.start();
  std::atomic<bool> release{false}, blocker_running{false};
  pool.submit([&] {
    blocker_running = true;
    while (!release.load()) std::this_thread::yield();
  });
  ASSERT_TRUE(engine.wait_until([&] { return blocker_running.load(); }, in_10s()));
  // The only worker is busy: this job stays queued. The test thread (not a
  // worker) needs a free CPU in the ledger to run it, so none yet.
  std::atomic<int> runs{0};
  std::thread::id ran_on;
  auto ticket = pool.submit([&] {
    ran_on = std::this_thread::get_id();  // before the count publishes it
    ++runs;
  });
  EXPECT_FALSE(pool.run_inline(ticket)) << "no free CPU for a non-worker thread";
  release = true;
  ASSERT_TRUE(engine.wait_until([&] { return runs.load() == 1; }, in_10s()));
  EXPECT_FALSE(pool.run_inline(ticket)) << "a worker ran it already";
  EXPECT_EQ(runs.load(), 1);
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(engine.wait_until([&] { return pool.idle(); }, in_10s()));

  pool.stop();

  // A pool whose threads are not started yet: the CPU is free and no worker
  // can take the job first, so the caller runs it, on its own thread.
  worker::WorkerPool idle_pool(node(1), engine);
  runs = 0;
  auto queued = idle_pool.submit([&] {
    ++runs;
    ran_on = std::this_thread::get_id();
  });
  EXPECT_TRUE(idle_pool.run_inline(queued));
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_FALSE(idle_pool.run_inline(queued)) << "ran once";
  EXPECT_TRUE(idle_pool.idle());
}

// Jobs run inline stay queued until a pop passes them; once they are most of
// the queue they are dropped in one pass (a recursion run inline by waiting
// parents would otherwise make every scan of the queue longer). Every job
// still runs exactly once.
TEST_F(PoolFixture, JobsRunInlineLeaveTheQueueOnceTheyAreMostOfIt) {
  worker::WorkerPool pool(node(1), engine);  // not started: jobs wait until start()
  constexpr int kJobs = 200, kInline = 150;
  std::vector<std::atomic<int>> runs(kJobs);
  std::vector<worker::WorkerPool::Ticket> tickets;
  for (int i = 0; i < kJobs; ++i) tickets.push_back(pool.submit([&runs, i] { ++runs[i]; }));
  for (int i = 0; i < kInline; ++i) ASSERT_TRUE(pool.run_inline(tickets[i]));
  EXPECT_LT(pool.queue_entries(), static_cast<size_t>(kJobs - 64))
      << "the jobs run inline were dropped from the queue";
  EXPECT_GE(pool.queue_entries(), static_cast<size_t>(kJobs - kInline));
  pool.start();
  EXPECT_TRUE(engine.wait_until([&] { return pool.idle(); }, in_10s()));
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(runs[i].load(), 1) << "job " << i;
  EXPECT_EQ(pool.queue_entries(), 0u);
  pool.stop();
}

// Work stealing takes queued jobs that carry a move tag, oldest first, and
// never one a worker or run_inline already claimed; the rest still run.
TEST_F(PoolFixture, TakeMovableHandsBackTheOldestTaggedJobsOnly) {
  worker::WorkerPool pool(node(1), engine);  // not started: everything stays queued
  std::atomic<int> runs{0};
  std::vector<worker::WorkerPool::Ticket> tickets;
  for (uint64_t i = 0; i < 6; ++i) {
    // Jobs 1 and 4 must stay here; job 3 asks for 2 CPUs (never movable).
    const bool stays = i == 1 || i == 4;
    scheduler::ResourceDemand d;
    if (i == 3) d.num_cpus = 2;
    tickets.push_back(pool.submit([&] { ++runs; }, d, false, nullptr,
                                  stays ? worker::WorkerPool::kStays : 100 + i));
  }
  EXPECT_EQ(pool.load().queued, 6u);
  EXPECT_EQ(pool.load().movable, 3u);        // 0, 2, 5
  EXPECT_TRUE(pool.run_inline(tickets[0]));  // claimed: not movable any more
  EXPECT_EQ(pool.load().movable, 2u);
  // A budget callback ends the taking early (the runtime's run-time budget).
  int offered = 0;
  EXPECT_EQ(pool.take_movable(5, [&](uint64_t) { return offered++ < 1; }),
            std::vector<uint64_t>{102});
  EXPECT_EQ(offered, 2);
  EXPECT_EQ(pool.take_movable(5), std::vector<uint64_t>{105});
  EXPECT_TRUE(pool.take_movable(5).empty());
  EXPECT_EQ(pool.load().movable, 0u);
  EXPECT_EQ(pool.load().queued, 3u);  // jobs 1, 3 and 4 (job 3 needs 2 CPUs of 1: never runs)
  EXPECT_FALSE(pool.run_inline(tickets[2])) << "taken away";
  pool.start();
  EXPECT_TRUE(engine.wait_until([&] { return runs.load() == 3; }, in_10s()));
  pool.stop();
}

// A job made ready by a finishing job runs on the thread that finished,
// without waking a sleeping one (the dependency chain of docs/scheduling.md,
// "A worker takes what its result made ready"). The finishing thread lingers
// 2 ms after the submit: without the scope the woken thread would take the
// job meanwhile, as the control half shows.
TEST_F(PoolFixture, AFinishingWorkerRunsTheJobItMadeReadyItself) {
  auto chain = [&](bool scoped) {
    worker::WorkerPool pool(node(2), engine);
    pool.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both threads asleep
    constexpr int kJobs = 20;
    std::mutex mu;
    std::map<std::thread::id, int> ran_on;
    std::atomic<int> done{0};
    std::function<void(int)> step = [&](int i) {
      {
        std::lock_guard lk(mu);
        ++ran_on[std::this_thread::get_id()];
      }
      if (i + 1 < kJobs) {
        std::optional<worker::WorkerPool::FinishingScope> finishing;
        if (scoped) finishing.emplace(pool);
        pool.submit([&, i] { step(i + 1); });
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ++done;
    };
    pool.submit([&] { step(0); });
    EXPECT_TRUE(engine.wait_until([&] { return done == kJobs; }, in_10s()));
    pool.stop();
    int most = 0;
    for (const auto& [id, n] : ran_on) most = std::max(most, n);
    return most;
  };
  EXPECT_GE(chain(true), 18) << "jobs made ready by a finishing worker went to other threads";
  EXPECT_LE(chain(false), 15) << "control: without the scope a woken thread takes them";
}
