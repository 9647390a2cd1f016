// ActorHost alone, driven by hand: the order calls run in, early arrivals,
// concurrency, kill and tombstones, self-calls run while a method waits.
#include "actor/actor_host.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

namespace prism::actors {
namespace {

// The host's hooks, recording what they were asked; runners run when the
// test says so (run_pending), on the test's thread.
struct Harness {
  std::deque<ActorId> runners;  // start_runner requests not run yet
  std::vector<int> ran;         // payload values of executed calls, in order
  std::vector<std::pair<int, std::string>> rejected;
  std::vector<ActorId> destroyed;
  std::function<void(Call&)> on_execute;  // extra behaviour inside a method
  ActorHost host{{
      .start_runner = [this](const ActorId& id,
                             const std::shared_ptr<void>&) { runners.push_back(id); },
      .execute =
          [this](const ActorId&, const std::shared_ptr<void>&, Call& c) {
            ran.push_back(*static_cast<int*>(c.payload.get()));
            if (on_execute) on_execute(c);
          },
      .reject =
          [this](Call& c, const std::string& why) {
            rejected.emplace_back(*static_cast<int*>(c.payload.get()), why);
          },
      .destroy = [this](const ActorId& id,
                        const std::shared_ptr<void>&) { destroyed.push_back(id); },
  }};
  void run_pending() {
    while (!runners.empty()) {
      const ActorId id = runners.front();
      runners.pop_front();
      host.run(id);
    }
  }
};

const ActorId kA{0, 0, 1}, kB{0, 0, 2};
const CallerId kDriver{0, {}}, kOther{1, {}}, kSelfA{0, kA};

Call call(CallerId who, uint64_t seq, int value, bool skip = false, uint32_t incarnation = 0) {
  return Call{who, seq, skip, incarnation, std::make_shared<int>(value)};
}

TEST(ActorHost, OneCallersCallsRunInTheirOrderWhateverTheArrivalOrder) {
  Harness h;
  ASSERT_TRUE(h.host.add(kA, {"A", 1, 0, nullptr}));
  h.host.enqueue(kA, call(kDriver, 3, 3));
  h.host.enqueue(kA, call(kDriver, 2, 2));
  EXPECT_TRUE(h.runners.empty()) << "nothing is ready before call 1";
  h.host.enqueue(kA, call(kOther, 1, 100));  // another caller: not held back
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.host.enqueue(kA, call(kDriver, 4, 4, /*skip=*/true));  // failed at its caller: only its turn
  h.host.enqueue(kA, call(kDriver, 5, 5));
  ASSERT_EQ(h.runners.size(), 1u) << "one method at a time: one runner";
  h.run_pending();
  EXPECT_EQ(h.ran, (std::vector<int>{100, 1, 2, 3, 5}));
  EXPECT_EQ(h.host.calls_run(), 5u);
}

TEST(ActorHost, AnIdleActorHasNoRunnerAndWakesOnTheNextCall) {
  Harness h;
  h.host.add(kA, {"A", 1, 0, nullptr});
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.run_pending();
  EXPECT_TRUE(h.runners.empty());
  h.host.enqueue(kA, call(kDriver, 2, 2));
  EXPECT_EQ(h.runners.size(), 1u);
  h.run_pending();
  EXPECT_EQ(h.ran, (std::vector<int>{1, 2}));
}

TEST(ActorHost, MaxConcurrencyStartsThatManyRunners) {
  Harness h;
  h.host.add(kA, {"A", 3, 0, nullptr});
  for (int i = 1; i <= 5; ++i) h.host.enqueue(kA, call(kDriver, static_cast<uint64_t>(i), i));
  EXPECT_EQ(h.runners.size(), 3u);
  h.run_pending();  // the first runner takes them all; the others find none
  EXPECT_EQ(h.ran.size(), 5u);
}

TEST(ActorHost, KillRejectsQueuedAndLaterCallsAndDestroysOnce) {
  Harness h;
  h.host.add(kA, {"A", 1, 0, nullptr});
  h.host.add(kB, {"B", 1, 0, nullptr});
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.host.enqueue(kA, call(kDriver, 3, 3));  // early, waiting for 2
  EXPECT_TRUE(h.host.kill(kA, "was killed"));
  EXPECT_FALSE(h.host.kill(kA, "again"));
  h.run_pending();  // its runner finds it dead
  EXPECT_TRUE(h.ran.empty());
  EXPECT_EQ(h.rejected.size(), 2u);
  h.host.enqueue(kA, call(kDriver, 2, 2));  // after the kill: the tombstone answers
  ASSERT_EQ(h.rejected.size(), 3u);
  EXPECT_EQ(h.rejected.back().second, "actor A (actor:0.1) was killed");
  EXPECT_EQ(h.destroyed, (std::vector<ActorId>{kA}));
  EXPECT_FALSE(h.host.alive(kA));
  EXPECT_TRUE(h.host.alive(kB));
  EXPECT_EQ(h.host.death(kA), "actor A (actor:0.1) was killed");
  EXPECT_EQ(h.host.num_alive(), 1u);
  EXPECT_FALSE(h.host.add(kA, {"A", 1, 0, nullptr})) << "a dead id stays dead";
  h.host.enqueue(ActorId{5, 0, 9}, call(kDriver, 1, 9));
  ASSERT_EQ(h.rejected.size(), 4u);
  EXPECT_NE(h.rejected.back().second.find("does not live on this node"), std::string::npos);
}

// What the runtime does when a rank is lost: the actors that rank owned die
// here, the others live on.
TEST(ActorHost, KillWhereKillsOnlyTheActorsItPicks) {
  Harness h;
  const ActorId of_rank3{3, 0, 7}, spared_of_rank3{3, 0, 8};
  h.host.add(kA, {"A", 1, 0, nullptr});
  h.host.add(of_rank3, {"C", 1, 0, nullptr});
  h.host.add(spared_of_rank3, {"N", 1, 0, nullptr});  // the predicate spares it
  h.host.enqueue(of_rank3, call(kDriver, 2, 2));  // early: rejected with the reason
  const size_t n = h.host.kill_where(
      [&](const ActorId& id) { return id.owner_rank == 3 && id != spared_of_rank3; },
      "was ended: its owner was lost");
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(h.host.alive(kA));
  EXPECT_TRUE(h.host.alive(spared_of_rank3));
  EXPECT_FALSE(h.host.alive(of_rank3));
  ASSERT_EQ(h.rejected.size(), 1u);
  EXPECT_EQ(h.rejected[0].second, "actor C (actor:3.7) was ended: its owner was lost");
  EXPECT_EQ(h.destroyed, (std::vector<ActorId>{of_rank3}));
  EXPECT_EQ(h.host.kill_where([](const ActorId&) { return true; }, "x"), 2u);
  EXPECT_EQ(h.host.num_alive(), 0u);
}

TEST(ActorHost, AMethodRunningWhenKilledFinishesThenTheActorIsDestroyed) {
  Harness h;
  h.host.add(kA, {"A", 1, 0, nullptr});
  h.on_execute = [&](Call&) {
    if (h.ran.size() == 1) {
      EXPECT_TRUE(h.host.kill(kA, "killed"));
      EXPECT_TRUE(h.destroyed.empty()) << "destroyed while its method runs";
    }
  };
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.host.enqueue(kA, call(kDriver, 2, 2));
  h.run_pending();
  EXPECT_EQ(h.ran, (std::vector<int>{1}));
  EXPECT_EQ(h.rejected.size(), 1u);
  EXPECT_EQ(h.destroyed.size(), 1u);
}

// A method of A that waits for a call it made to A itself runs that call
// (and the self-calls before it) on its own thread; other callers wait.
TEST(ActorHost, ASelfCallRunsInsideTheWaitingMethod) {
  Harness h;
  h.host.add(kA, {"A", 1, 0, nullptr});
  h.on_execute = [&](Call& c) {
    if (*static_cast<int*>(c.payload.get()) != 1) return;
    h.host.enqueue(kA, call(kOther, 1, 100));  // another caller, queued first
    h.host.enqueue(kA, call(kSelfA, 1, 10));
    h.host.enqueue(kA, call(kSelfA, 2, 11));
    EXPECT_TRUE(h.host.has_ready_from(kA, kSelfA));
    while (h.host.run_from(kA, kSelfA)) {
    }
    EXPECT_FALSE(h.host.has_ready_from(kA, kSelfA));
  };
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.run_pending();
  EXPECT_EQ(h.ran, (std::vector<int>{1, 10, 11, 100}));
}

TEST(ActorHost, ConcurrentCallersKeepTheirOwnOrder) {
  std::mutex mu;
  std::vector<std::pair<int, int>> ran;  // (caller, seq)
  std::deque<ActorId> runners;
  ActorHost host({
      .start_runner =
          [&](const ActorId& id, const std::shared_ptr<void>&) {
            std::lock_guard lk(mu);
            runners.push_back(id);
          },
      .execute =
          [&](const ActorId&, const std::shared_ptr<void>&, Call& c) {
            std::lock_guard lk(mu);
            ran.emplace_back(c.caller.rank, static_cast<int>(c.seq));
          },
      .reject = [](Call&, const std::string&) { FAIL(); },
      .destroy = [](const ActorId&, const std::shared_ptr<void>&) {},
  });
  host.add(kA, {"A", 1, 0, nullptr});
  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop) {
      std::optional<ActorId> id;
      {
        std::lock_guard lk(mu);
        if (!runners.empty()) {
          id = runners.front();
          runners.pop_front();
        }
      }
      if (id) host.run(*id);
    }
  });
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int s = 1; s <= 2000; ++s)
        host.enqueue(kA, Call{{c, {}}, static_cast<uint64_t>(s), false, 0, nullptr});
    });
  for (auto& t : callers) t.join();
  while (host.calls_run() < 8000) std::this_thread::yield();
  stop = true;
  runner.join();
  std::vector<int> last(4, 0);
  for (auto [c, s] : ran) {
    EXPECT_EQ(s, last[c] + 1) << "caller " << c;
    last[c] = s;
  }
  EXPECT_EQ(ran.size(), 8000u);
}

TEST(ActorHost, ARestartedActorTakesOnlyCallsMadeForItsInstance) {
  Harness h;
  ASSERT_TRUE(h.host.add(kA, {"A", 1, 0, nullptr}));
  h.host.enqueue(kA, call(kDriver, 1, 1));
  h.run_pending();
  EXPECT_TRUE(h.host.kill(kA, "crashed"));
  EXPECT_FALSE(h.host.add(kA, {"A", 1, 0, nullptr})) << "the dead instance stays dead";
  ASSERT_TRUE(h.host.add(kA, {"A", 1, 1, nullptr})) << "its next instance may live here";
  h.host.enqueue(kA, call(kDriver, 2, 2));  // numbered for instance 0: refused
  ASSERT_EQ(h.rejected.size(), 1u);
  EXPECT_NE(h.rejected[0].second.find("instance 0 is gone"), std::string::npos)
      << h.rejected[0].second;
  h.host.enqueue(kA, call(kDriver, 1, 3, false, 1));  // the new instance counts from 1
  h.run_pending();
  EXPECT_EQ(h.ran, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace prism::actors
