// Actors across real ranks (docs/actors.md): creation and placement, calls in
// their caller's order, handles through tasks, objects and other actors,
// names, kill and handle drop, failures, concurrency, many actors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <prism/prism.hpp>
#include <set>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Destructor runs, per process (read on the actor's node by a task there).
std::atomic<int> g_destroyed{0};

class Counter {
 public:
  explicit Counter(int start) : n_(start) {}
  ~Counter() { g_destroyed.fetch_add(1); }
  int add(int k) { return n_ += k; }
  int value() const { return n_; }
  int node() const { return prism::node_id(); }
  int fail(int code) {
    if (code > 0) throw std::runtime_error("bad code " + std::to_string(code));
    return 0;
  }

 private:
  int n_;
};
PRISM_ACTOR(Counter, &Counter::add, &Counter::value, &Counter::node, &Counter::fail);

// Records, per caller, the numbers it sent: a caller's calls must arrive in order.
class Ledger {
 public:
  Ledger() = default;
  void note(int caller, int i) {
    auto& last = last_[caller];
    if (i != last + 1) ++out_of_order_;
    last = i;
    ++calls_;
  }
  std::vector<int> report() const { return {calls_, out_of_order_}; }

 private:
  std::map<int, int> last_;
  int calls_ = 0, out_of_order_ = 0;
};
PRISM_ACTOR(Ledger, &Ledger::note, &Ledger::report);

class Thrower {
 public:
  explicit Thrower(std::string why) { throw std::runtime_error(why); }
  int ping() { return 1; }
};
PRISM_ACTOR(Thrower, &Thrower::ping);

class NotRegistered {
 public:
  int ping() { return 1; }
};

// A worker actor that uses everything an actor may: tasks, other actors,
// itself, get.
int square(int x) {
  return x * x;
}
PRISM_REMOTE(square);

class Busy {
 public:
  Busy() = default;
  int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return prism::node_id();
  }
  // Tasks from a method, and get().
  int sum_of_squares(int n) {
    std::vector<prism::ObjectRef<int>> refs;
    for (int i = 1; i <= n; ++i) refs.push_back(prism::task(square).remote(i));
    int s = 0;
    for (int v : prism::get(refs)) s += v;
    return s;
  }
  // Calls to another actor, through a handle passed in.
  int ask_counter(prism::ActorHandle<Counter> c, int k) {
    return prism::get(c.call(&Counter::add).remote(k));
  }
  // Calls to itself, waiting for them: one method at a time must not deadlock.
  int twice_via_self(int x) {
    auto self = prism::get_actor<Busy>(name_);
    auto a = self.call(&Busy::plus_one).remote(x);
    auto b = self.call(&Busy::plus_one).remote(prism::get(a));
    return prism::get(b);
  }
  int plus_one(int x) { return x + 1; }
  void set_name(std::string n) { name_ = std::move(n); }

 private:
  std::string name_;
};
PRISM_ACTOR(Busy, &Busy::sleep_ms, &Busy::sum_of_squares, &Busy::ask_counter, &Busy::twice_via_self,
            &Busy::plus_one, &Busy::set_name);

int other_node() {
  return prism::num_nodes() > 1 ? 1 : 0;
}

// ---- tasks that carry handles ----

int destroyed_here() {
  return g_destroyed.load();
}
PRISM_REMOTE(destroyed_here);

// Caller c sends n numbered calls to the ledger.
int send_numbered(prism::ActorHandle<Ledger> ledger, int caller, int n) {
  std::vector<prism::ObjectRef<prism::Unit>> refs;
  for (int i = 1; i <= n; ++i) refs.push_back(ledger.call(&Ledger::note).remote(caller, i));
  prism::get(refs);
  return n;
}
PRISM_REMOTE(send_numbered);

// Hop 2: a task on another node passes the handle to an actor's method (hop 3).
int hop_two(prism::ActorHandle<Counter> c, prism::ActorHandle<Busy> via, int k) {
  return prism::get(via.call(&Busy::ask_counter).remote(c, k));
}
PRISM_REMOTE(hop_two);
// Hop 1: the handle arrives inside an object.
int hop_one(prism::ObjectRef<prism::ActorHandle<Counter>> boxed, prism::ActorHandle<Busy> via,
            int k) {
  auto c = prism::get(boxed);
  return prism::get(prism::task(hop_two).options({.node = 0}).remote(c, via, k));
}
PRISM_REMOTE(hop_one);

// A task that makes an actor and returns its handle.
prism::ActorHandle<Counter> make_counter(int start) {
  return prism::actor<Counter>(start).options({.node = prism::node_id()}).remote();
}
PRISM_REMOTE(make_counter);

int add_through_name(std::string name, int k) {
  auto c = prism::get_actor<Counter>(name);
  return prism::get(c.call(&Counter::add).remote(k));
}
PRISM_REMOTE(add_through_name);

int call_once(prism::ActorHandle<Counter> c) {
  return prism::get(c.call(&Counter::add).remote(1));
}
PRISM_REMOTE(call_once);

// A number field of this process's /proc/self/status ("VmRSS:", "Threads:"), or 0.
long status_field(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return 0;
}

long rss_kib() {
  return status_field("VmRSS:");
}
PRISM_REMOTE(rss_kib);

long thread_count() {
  return status_field("Threads:");
}
PRISM_REMOTE(thread_count);

}  // namespace

TEST(Actors, CallsRunOnTheActorsNodeInTheCallersOrder) {
  for (int n = 0; n < prism::num_nodes(); ++n) {
    auto c = prism::actor<Counter>(100).options({.node = n}).remote();
    EXPECT_EQ(prism::get(c.call(&Counter::node).remote()), n);
    std::vector<prism::ObjectRef<int>> refs;
    for (int i = 0; i < 500; ++i) refs.push_back(c.call(&Counter::add).remote(1));
    const auto got = prism::get(refs);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(got[i], 101 + i) << "node " << n << ", call " << i;
  }
}

TEST(Actors, PlacementAsForTasks) {
  const int nodes = prism::num_nodes();
  std::vector<prism::ActorHandle<Counter>> spread;
  for (int i = 0; i < 2 * nodes; ++i)
    spread.push_back(
        prism::actor<Counter>(i).options({.placement = prism::Placement::kSpread}).remote());
  std::set<int> used;
  for (auto& a : spread) used.insert(prism::get(a.call(&Counter::node).remote()));
  EXPECT_EQ(static_cast<int>(used.size()), nodes) << "spread actors did not use every node";
}

TEST(Actors, ArgumentsAsForTasks) {
  auto c = prism::actor<Counter>(prism::put(5)).options({.node = other_node()}).remote();
  auto five = prism::task(square).remote(2);  // 4, as a ref resolved to int
  EXPECT_EQ(prism::get(c.call(&Counter::add).remote(five)), 9);
  EXPECT_EQ(prism::get(c.call(&Counter::value).remote()), 9);
}

TEST(Actors, FourConcurrentCallersEachKeepTheirOrder) {
  auto ledger = prism::actor<Ledger>().options({.node = other_node()}).remote();
  std::vector<prism::ObjectRef<int>> callers;
  for (int c = 0; c < 4; ++c)  // tasks on every node, all calling at once
    callers.push_back(prism::task(send_numbered)
                          .options({.node = c % prism::num_nodes()})
                          .remote(ledger, c, 300));
  std::thread driver([&] {  // and a thread of the driver, as a fifth caller
    std::vector<prism::ObjectRef<prism::Unit>> refs;
    for (int i = 1; i <= 300; ++i) refs.push_back(ledger.call(&Ledger::note).remote(99, i));
    prism::get(refs);
  });
  for (auto& r : callers) EXPECT_EQ(prism::get(r), 300);
  driver.join();
  const auto report = prism::get(ledger.call(&Ledger::report).remote());
  EXPECT_EQ(report[0], 5 * 300);
  EXPECT_EQ(report[1], 0) << "calls of one caller ran out of order";
}

TEST(Actors, HandlesTravelThroughObjectsTasksAndActors) {
  auto c = prism::actor<Counter>(0).options({.node = other_node()}).remote();
  auto via = prism::actor<Busy>().options({.node = prism::num_nodes() - 1}).remote();
  // driver -> object -> task on node 1 -> task on node 0 -> method of `via` -> c
  auto boxed = prism::put(c);
  EXPECT_EQ(prism::get(prism::task(hop_one).options({.node = other_node()}).remote(boxed, via, 7)),
            7);
  EXPECT_EQ(prism::get(c.call(&Counter::value).remote()), 7);
  // A handle returned from a task.
  auto made = prism::get(prism::task(make_counter).options({.node = other_node()}).remote(40));
  EXPECT_EQ(prism::get(made.call(&Counter::add).remote(2)), 42);
  EXPECT_EQ(prism::get(made.call(&Counter::node).remote()), other_node());
}

// A process that lets go of an actor (a task's argument) and borrows it again
// (the next task's) goes on numbering its calls where it left off.
TEST(Actors, AProcessThatBorrowsAnActorAgainKeepsCalling) {
  auto c = prism::actor<Counter>(0).options({.node = 0}).remote();
  for (int i = 1; i <= 5; ++i) {
    auto r = prism::task(call_once).options({.node = other_node()}).remote(c);
    auto [ready, pending] = prism::wait(std::vector{r}, 1, std::chrono::seconds(10));
    ASSERT_EQ(ready.size(), 1u) << "call " << i << " never ran";
    EXPECT_EQ(prism::get(r), i);
  }
}

TEST(Actors, NamedActorsAreFoundFromTasksAndNamesAreUnique) {
  auto c =
      prism::actor<Counter>(1).options({.name = "shared-counter", .node = other_node()}).remote();
  EXPECT_EQ(prism::get(prism::task(add_through_name)
                           .options({.node = 0})
                           .remote(std::string("shared-counter"), 10)),
            11);
  EXPECT_EQ(prism::get(prism::get_actor<Counter>("shared-counter").call(&Counter::value).remote()),
            11);
  try {
    prism::actor<Counter>(0).options({.name = "shared-counter"}).remote();
    FAIL() << "a second actor took a taken name";
  } catch (const prism::Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
  }
  try {
    prism::get_actor<Counter>("no-such-actor");
    FAIL();
  } catch (const prism::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no actor is named 'no-such-actor'"), std::string::npos)
        << e.what();
  }
  try {
    prism::get_actor<Ledger>("shared-counter");
    FAIL();
  } catch (const prism::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a Counter, not a Ledger"), std::string::npos)
        << e.what();
  }
  prism::kill(c);  // the name is free again once it is dead
  for (int i = 0; i < 200; ++i) {
    try {
      auto again = prism::actor<Counter>(5).options({.name = "shared-counter"}).remote();
      EXPECT_EQ(prism::get(again.call(&Counter::value).remote()), 5);
      prism::kill(again);
      return;
    } catch (const prism::Error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  FAIL() << "the name of a killed actor was not freed";
}

TEST(Actors, KillFailsLaterCallsClearlyAndRunsTheDestructor) {
  const int node = other_node();
  const int before = prism::get(prism::task(destroyed_here).options({.node = node}).remote());
  auto c = prism::actor<Counter>(0).options({.node = node}).remote();
  EXPECT_EQ(prism::get(c.call(&Counter::add).remote(1)), 1);
  prism::kill(c);
  try {
    prism::get(c.call(&Counter::add).remote(1));
    FAIL() << "a call to a killed actor succeeded";
  } catch (const prism::TaskError& e) {
    EXPECT_EQ(e.task_name(), "Counter.add");
    EXPECT_NE(std::string(e.what()).find("was killed by prism::kill"), std::string::npos)
        << e.what();
  }
  bool destroyed = false;
  for (int i = 0; i < 300 && !destroyed; ++i) {
    destroyed = prism::get(prism::task(destroyed_here).options({.node = node}).remote()) > before;
    if (!destroyed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(destroyed) << "the destructor did not run";
}

TEST(Actors, DroppingTheLastHandleDestroysTheActor) {
  const int node = other_node();
  const int before = prism::get(prism::task(destroyed_here).options({.node = node}).remote());
  {
    auto c = prism::actor<Counter>(0).options({.node = node}).remote();
    auto copy = c;
    EXPECT_EQ(prism::get(copy.call(&Counter::add).remote(3)), 3);
  }
  bool destroyed = false;
  for (int i = 0; i < 300 && !destroyed; ++i) {
    destroyed = prism::get(prism::task(destroyed_here).options({.node = node}).remote()) > before;
    if (!destroyed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(destroyed) << "an actor without handles was not destroyed";
}

TEST(Actors, ExceptionsFailOnlyTheirCall) {
  auto c = prism::actor<Counter>(0).options({.node = other_node()}).remote();
  try {
    prism::get(c.call(&Counter::fail).remote(3));
    FAIL();
  } catch (const prism::TaskError& e) {
    EXPECT_EQ(e.task_name(), "Counter.fail");
    EXPECT_NE(e.remote_message().find("bad code 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(prism::get(c.call(&Counter::add).remote(1)), 1) << "the actor survives its exception";
}

TEST(Actors, AThrowingConstructorFailsEveryCallWithItsMessage) {
  auto t =
      prism::actor<Thrower>(std::string("no GPU today")).options({.node = other_node()}).remote();
  for (int i = 0; i < 3; ++i) {
    try {
      prism::get(t.call(&Thrower::ping).remote());
      FAIL();
    } catch (const prism::TaskError& e) {
      EXPECT_NE(std::string(e.what()).find("no GPU today"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("could not be created"), std::string::npos) << e.what();
    }
  }
}

TEST(Actors, BadRequestsFailClearly) {
  EXPECT_THROW(prism::actor<NotRegistered>().remote(), prism::RegistrationError);
  auto c = prism::actor<Counter>(0).remote();
  EXPECT_THROW(prism::actor<Counter>(0).options({.num_gpus = 1000}).remote(),
               prism::InfeasibleError);
  EXPECT_THROW(prism::actor<Counter>(0).options({.node = 999}).remote(), prism::Error);
  EXPECT_THROW(prism::actor<Counter>(0).options({.max_concurrency = 0}).remote(), prism::Error);
  prism::ActorHandle<Counter> none;
  EXPECT_THROW(none.call(&Counter::add), prism::Error);
  EXPECT_THROW(prism::kill(none), prism::Error);
}

TEST(Actors, MethodsSubmitTasksCallActorsAndThemselves) {
  auto b = prism::actor<Busy>().options({.name = "busy-self", .node = other_node()}).remote();
  prism::get(b.call(&Busy::set_name).remote(std::string("busy-self")));
  EXPECT_EQ(prism::get(b.call(&Busy::sum_of_squares).remote(10)), 385);
  auto c = prism::actor<Counter>(1).remote();
  EXPECT_EQ(prism::get(b.call(&Busy::ask_counter).remote(c, 2)), 3);
  EXPECT_EQ(prism::get(b.call(&Busy::twice_via_self).remote(5)), 7);
  prism::kill(b);
}

TEST(Actors, MaxConcurrencyRunsMethodsAtOnce) {
  auto b = prism::actor<Busy>().options({.node = other_node(), .max_concurrency = 4}).remote();
  prism::get(b.call(&Busy::sleep_ms).remote(1));  // constructed
  const auto t0 = Clock::now();
  std::vector<prism::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(b.call(&Busy::sleep_ms).remote(300));
  prism::get(refs);
  EXPECT_LT(ms_since(t0), 900) << "4 calls of 300 ms did not overlap";
  // One at a time (the default): they do not.
  auto one = prism::actor<Busy>().options({.node = other_node()}).remote();
  prism::get(one.call(&Busy::sleep_ms).remote(1));
  const auto t1 = Clock::now();
  std::vector<prism::ObjectRef<int>> serial;
  for (int i = 0; i < 3; ++i) serial.push_back(one.call(&Busy::sleep_ms).remote(100));
  prism::get(serial);
  EXPECT_GE(ms_since(t1), 295);
}

// Resources held for the actor's life (PRISM_NUM_CPUS=2 in ctest): a task
// that needs both CPUs of the actor's node waits until the actor is gone.
TEST(ActorResources, AnActorHoldsItsCpusUntilItDies) {
  const int node = other_node();
  if (prism::nodes().at(node).num_cpus != 2) GTEST_SKIP() << "needs 2 CPUs per node";
  auto c = prism::actor<Counter>(0).options({.num_cpus = 1, .node = node}).remote();
  EXPECT_EQ(prism::get(c.call(&Counter::add).remote(1)), 1);  // it exists and holds 1 CPU
  auto big = prism::task(square).options({.num_cpus = 2, .node = node}).remote(3);
  auto [ready, pending] = prism::wait(std::vector{big}, 1, std::chrono::milliseconds(300));
  EXPECT_TRUE(ready.empty()) << "a 2-CPU task ran beside an actor holding one of 2 CPUs";
  prism::kill(c);
  EXPECT_EQ(prism::get(big), 9);
}

// PRISM_NUM_GPUS=1 in ctest: a second actor that needs the node's GPU is
// placed once the first is killed, and a third once the second's last handle
// is gone.
TEST(ActorResources, AKilledOrDroppedActorReleasesItsGpu) {
  const int node = other_node();
  if (prism::nodes().at(node).num_gpus != 1) GTEST_SKIP() << "needs 1 declared GPU per node";
  auto first = prism::actor<Counter>(1).options({.num_gpus = 1, .node = node}).remote();
  EXPECT_EQ(prism::get(first.call(&Counter::value).remote()), 1);
  auto second = prism::actor<Counter>(2).options({.num_gpus = 1, .node = node}).remote();
  auto probe = second.call(&Counter::value).remote();
  auto [ready, pending] = prism::wait(std::vector{probe}, 1, std::chrono::milliseconds(300));
  EXPECT_TRUE(ready.empty()) << "two actors hold one GPU";
  prism::kill(first);
  EXPECT_EQ(prism::get(probe), 2);
  auto third = prism::actor<Counter>(3).options({.num_gpus = 1, .node = node}).remote();
  auto probe3 = third.call(&Counter::value).remote();
  second = {};  // the last handle: the actor ends, its GPU goes back
  EXPECT_EQ(prism::get(probe3), 3);
}

// Many actors alive at once across the node ranks, with what each costs.
TEST(ActorsAtScale, TenThousandActorsAliveAtOnce) {
  const int n = 10000, nodes = prism::num_nodes();
  std::vector<long> rss0;
  for (int i = 0; i < nodes; ++i)
    rss0.push_back(prism::get(prism::task(rss_kib).options({.node = i}).remote()));
  const auto t0 = Clock::now();
  std::vector<prism::ActorHandle<Counter>> actors;
  actors.reserve(n);
  for (int i = 0; i < n; ++i)
    actors.push_back(prism::actor<Counter>(i).options({.node = i % nodes}).remote());
  std::vector<prism::ObjectRef<int>> refs;
  refs.reserve(n);
  for (auto& a : actors) refs.push_back(a.call(&Counter::add).remote(1));
  const auto values = prism::get(refs);
  const double ms = ms_since(t0);
  for (int i = 0; i < n; ++i) ASSERT_EQ(values[i], i + 1);
  long grown = 0;
  for (int i = 0; i < nodes; ++i)
    grown += prism::get(prism::task(rss_kib).options({.node = i}).remote()) - rss0[i];
  std::printf(
      "[ actors ] %d actors alive on %d node ranks, created and called once in %.0f ms; "
      "memory grew %.2f KiB per actor (RSS, all ranks)\n",
      n, nodes, ms, static_cast<double>(grown) / n);

  // Their deaths: each destructor runs as a method would, on a CPU slot. A
  // burst of them must not start a thread each while the slots are busy (it
  // once left ~1,000 idle threads per node rank and cut creations/s by 3x).
  std::vector<long> threads0;
  for (int i = 0; i < nodes; ++i)
    threads0.push_back(prism::get(prism::task(thread_count).options({.node = i}).remote()));
  actors.clear();
  std::vector<long> peak = threads0;
  for (const auto until = Clock::now() + std::chrono::milliseconds(1500); Clock::now() < until;)
    for (int i = 0; i < nodes; ++i)
      peak[i] =
          std::max(peak[i], prism::get(prism::task(thread_count).options({.node = i}).remote()));
  for (int i = 0; i < nodes; ++i) {
    std::printf("[ actors ] node %d: %ld threads before its actors ended, at most %ld after\n", i,
                threads0[i], peak[i]);
    EXPECT_LE(peak[i], threads0[i] + 32)
        << "node " << i << ": " << threads0[i] << " threads before " << n / nodes
        << " actors ended, " << peak[i] << " while they ended";
  }
}
