// FailureDetector with a fake clock, and Heartbeats between two instances in
// one process (docs/fault-tolerance.md).
#include "membership/liveness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace prism::membership {
namespace {

TEST(FailureDetector, ARankSilentForLongerThanTheTimeoutIsLostOnce) {
  FailureDetector d({1, 2}, /*timeout_us=*/1000, /*now_us=*/0);
  for (int64_t t = 100; t <= 900; t += 100) {
    d.heard(1, t);
    d.heard(2, t);
    EXPECT_TRUE(d.tick(t).empty());
  }
  for (int64_t t = 1000; t <= 2000; t += 100) {
    d.heard(1, t);  // 2 goes silent at 900
    const auto lost = d.tick(t);
    if (t <= 1900)
      EXPECT_TRUE(lost.empty()) << t;
    else
      EXPECT_EQ(lost, std::vector<int>{2}) << t;
  }
  EXPECT_TRUE(d.tick(2100).empty());  // reported once
}

TEST(FailureDetector, AStallOfTheWatcherIsNotTakenForDeaths) {
  FailureDetector d({1}, 1000, 0);
  EXPECT_TRUE(d.tick(400).empty());
  // This process slept 5 timeouts (descheduled): nobody was heard, but that
  // says nothing about them; their clocks restart.
  EXPECT_TRUE(d.tick(5400).empty());
  EXPECT_TRUE(d.tick(5800).empty());
  EXPECT_TRUE(d.tick(6300).empty());
  EXPECT_EQ(d.tick(6500), std::vector<int>{1});  // then silence counts again
}

TEST(FailureDetector, LateHeartbeatsNeverMoveTheClockBack) {
  FailureDetector d({3}, 1000, 0);
  d.heard(3, 900);
  d.heard(3, 500);  // delivered out of order
  EXPECT_TRUE(d.tick(400).empty());
  EXPECT_TRUE(d.tick(800).empty());
  EXPECT_TRUE(d.tick(1200).empty());
  EXPECT_TRUE(d.tick(1600).empty());
  EXPECT_TRUE(d.tick(1850).empty());
  EXPECT_EQ(d.tick(1950), std::vector<int>{3});
}

TEST(Heartbeats, TwoPeersHearEachOtherUntilOneStops) {
  using namespace std::chrono_literals;
  std::atomic<Heartbeats*> a_ptr{nullptr}, b_ptr{nullptr};
  std::atomic<int> a_lost{-1}, b_lost{-1};
  const Heartbeats::Options oa{{1}, {1}, 5'000, 100'000};
  const Heartbeats::Options ob{{0}, {0}, 5'000, 100'000};
  Heartbeats a(
      oa,
      [&](int) {
        if (auto* b = b_ptr.load()) b->heard(0);
      },
      [&](int r) { a_lost = r; });
  Heartbeats b(
      ob,
      [&](int) {
        if (auto* p = a_ptr.load()) p->heard(1);
      },
      [&](int r) { b_lost = r; });
  a_ptr = &a;
  b_ptr = &b;
  a.start();
  b.start();
  std::this_thread::sleep_for(300ms);  // three timeouts of mutual heartbeats
  EXPECT_EQ(a_lost.load(), -1);
  EXPECT_EQ(b_lost.load(), -1);
  b.stop();  // b goes silent
  for (int i = 0; i < 200 && a_lost.load() < 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(a_lost.load(), 1);
  a.stop();
}

}  // namespace
}  // namespace prism::membership
