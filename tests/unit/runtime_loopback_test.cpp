// A whole Prism "cluster" in one process: two node runtimes over the
// in-process loopback fabric. Exercises the runtime's protocols without MPI.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include <prism/prism.hpp>

#include "runtime/node_runtime.hpp"
#include "transport/loopback_transport.hpp"

using namespace prism;

namespace {
int where_am_i() {
  return prism::node_id();
}
PRISM_REMOTE(where_am_i);

std::vector<double> make_big(int n) {
  return std::vector<double>(static_cast<size_t>(n), 1.5);
}
PRISM_REMOTE(make_big);

double sum(std::vector<double> v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
PRISM_REMOTE(sum);

int fails(int) {
  throw std::runtime_error("deliberate failure");
}
PRISM_REMOTE(fails);

// An actor that remembers what it was given, in order.
class Log {
 public:
  void add(int x) { v_.push_back(x); }
  std::vector<int> all() const { return v_; }

 private:
  std::vector<int> v_;
};
PRISM_ACTOR(Log, &Log::add, &Log::all);

// One started node runtime per entry of `nodes` on ranks 0.. of `fabric`,
// whose last rank stands for the (absent) GCS rank.
std::vector<std::unique_ptr<runtime::NodeRuntime>> start_nodes(
    const Config& cfg, transport::LoopbackFabric& fabric,
    const std::vector<scheduler::NodeResources>& nodes) {
  std::vector<std::unique_ptr<runtime::NodeRuntime>> rts;
  for (int r = 0; r < static_cast<int>(nodes.size()); ++r) {
    auto layout = runtime::make_layout(fabric.size(), r, 1);
    rts.push_back(
        std::make_unique<runtime::NodeRuntime>(cfg, fabric.at(r), *layout, nodes, nullptr));
    rts.back()->start();
  }
  return rts;
}

// A cluster of node runtimes on a fabric of kRanks (the last one is the
// absent GCS rank); SetUp of each fixture starts the nodes.
template <int kRanks>
class LoopbackFixture : public ::testing::Test {
 protected:
  LoopbackFixture() {
    cfg.spin_us = 20;
    cfg.pin_workers = false;
    cfg.global_scheduler = false;  // no GCS rank in this cluster: submitters balance themselves
  }
  void TearDown() override {
    fabric.release_held();
    for (auto& rt : rts) rt->stop();
  }
  Config cfg;
  transport::LoopbackFabric fabric{kRanks};
  std::vector<std::unique_ptr<runtime::NodeRuntime>> rts;
};

class LoopbackCluster : public LoopbackFixture<3> {
 protected:
  void SetUp() override {
    cfg.inline_threshold = 1024;
    rts = start_nodes(cfg, fabric, {{0, 1, 0, 0, {}}, {1, 2, 0, 0, {}}});
  }
};
}  // namespace

TEST_F(LoopbackCluster, TaskRunsOnTheChosenNode) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  EXPECT_EQ(get(task(where_am_i).options({.node = 1}).remote()), 1);
  EXPECT_EQ(get(task(where_am_i).options({.node = 0}).remote()), 0);
}

TEST_F(LoopbackCluster, LargeResultStaysWithProducerAndIsPulled) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto big = task(make_big).options({.node = 1}).remote(10000);  // 80 KB > inline threshold
  EXPECT_EQ(get(big).size(), 10000u);
  EXPECT_EQ(rts[1]->store().stats().objects, 1u);  // held by the producer
  // Passed on by reference: the consumer pulls it.
  EXPECT_DOUBLE_EQ(get(task(sum).options({.node = 0}).remote(big)), 15000.0);
}

// A value argument above the inline threshold goes into the submitter's
// store and the executor pulls it, instead of riding inside the task message.
TEST_F(LoopbackCluster, ALargeValueArgumentTravelsAsAnObject) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  const std::vector<double> v(10000, 2.0);  // 80 KB > the 1 KiB inline threshold
  const auto fetched = rts[1]->stats().bytes_fetched;
  EXPECT_DOUBLE_EQ(get(task(sum).options({.node = 1}).remote(v)), 20000.0);
  EXPECT_GE(rts[1]->stats().bytes_fetched - fetched, 80000u) << "the value was not pulled";
}

TEST_F(LoopbackCluster, ExceptionsAndFailedArguments) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto bad = task(fails).options({.node = 1}).remote(1);
  try {
    (void)get(bad);
    FAIL();
  } catch (const TaskError& e) {
    EXPECT_EQ(e.task_name(), "fails");
    EXPECT_NE(e.remote_message().find("deliberate failure"), std::string::npos);
  }
  auto dependent = task(fails).remote(bad);  // never runs: its argument failed
  EXPECT_THROW((void)get(dependent), TaskError);
}

TEST_F(LoopbackCluster, SpreadUsesEveryNode) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 8; ++i)
    refs.push_back(task(where_am_i).options({.placement = Placement::kSpread}).remote());
  std::set<int> nodes;
  for (int n : get(refs)) nodes.insert(n);
  EXPECT_EQ(nodes.size(), 2u);
}

namespace {
int quick() {
  return prism::node_id();
}
PRISM_REMOTE(quick);
int snooze() {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return prism::node_id();
}
PRISM_REMOTE(snooze);

// Submits n tasks of f at once; how many ran on node 0.
template <class F>
int ran_on_node0(F f, int n) {
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < n; ++i) refs.push_back(task(f).remote());
  int here = 0;
  for (int where : get(refs)) here += where == 0;
  return here;
}
}  // namespace

// "The local queue is short" is measured in time: tasks known to be tiny
// queue several deep on the submitter's node (1 slot here) instead of
// spilling; tasks known to take milliseconds spill once the slot is taken.
TEST_F(LoopbackCluster, ShortTasksQueueLocallyLongOnesSpill) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  for (int i = 0; i < 8; ++i) {  // learn both run times on node 0
    (void)get(task(quick).options({.node = 0}).remote());
    (void)get(task(snooze).options({.node = 0}).remote());
  }
  EXPECT_LT(ran_on_node0(snooze, 6), 6);
  // Tiny tasks queue more than one deep: 20 us of queued work per slot
  // (kSpillHopUs) over 1 us of overhead plus their mean. How deep depends on
  // the machine: all four stay where a trivial task measures under ~4 us,
  // but on a VM whose every syscall is slow (2026-12-07: 13 of 20 runs) it
  // measured 5-9 us and two or three stayed. A preempted run can inflate the
  // mean for a while: the best of five rounds counts.
  int best = 0;
  for (int round = 0; round < 5 && best < 4; ++round) best = std::max(best, ran_on_node0(quick, 4));
  EXPECT_GE(best, 2);
}

// A burst from the driver's node (1 slot) also runs on node 1: the global
// scheduler moves queued tasks to the idle node. Tiny tasks may all run where
// they were submitted when its worker keeps up with the submitter (under
// TSan's slowdown, once in CI on 2026-12-07, none of 500 moved); 12 tasks of
// 5 ms keep the driver's node busy for 60 ms, far longer than a steal takes.
TEST_F(LoopbackCluster, ManyTasksBothNodes) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  std::vector<ObjectRef<int>> refs;
  for (int i = 0; i < 500; ++i) refs.push_back(task(where_am_i).remote());
  for (int n : get(refs)) EXPECT_TRUE(n == 0 || n == 1) << n;
  EXPECT_LT(ran_on_node0(snooze, 12), 12) << "the driver's node kept every task";
}

namespace {
int waits_for_snooze() {  // its own work is tiny; it waits ~5 ms for its child
  return prism::get(prism::task(snooze).options({.node = 1}).remote());
}
PRISM_REMOTE(waits_for_snooze);
}  // namespace

// A function's mean run time (which decides how deep its tasks queue locally
// and whether they wake workers) is its own work: time blocked in get() and
// tasks run inline meanwhile do not count.
TEST_F(LoopbackCluster, MeanRunTimeExcludesWaitingForChildren) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(get(task(waits_for_snooze).options({.node = 0}).remote()), 1);
  const auto waiter = rts[0]->mean_task_ns("waits_for_snooze");
  const auto sleeper = rts[1]->mean_task_ns("snooze");
  ASSERT_TRUE(waiter.has_value());
  ASSERT_TRUE(sleeper.has_value());
  EXPECT_GE(*sleeper, 4'000'000u) << "snooze sleeps 5 ms";
  EXPECT_LT(*waiter, 1'000'000u) << "the 5 ms waiting for snooze counted as its own work";
}

// ---- three node ranks: a ref decoded out of a value that another rank owns ----

namespace {
ObjectRef<int> make_x() {  // X, owned by the rank that runs this
  return prism::put(42);
}
PRISM_REMOTE(make_x);
// V, owned by the rank that runs this, holding X made on node 1.
ObjectRef<std::vector<ObjectRef<int>>> wrap_x() {
  auto x = prism::get(prism::task(make_x).options({.node = 1}).remote());
  return prism::put(std::vector<ObjectRef<int>>{x});
}
PRISM_REMOTE(wrap_x);

// Keeps the first ref of an argument value (decoded out of it) beyond the task.
ObjectRef<int> keep_first(std::vector<ObjectRef<int>> refs) {
  return refs.at(0);
}
PRISM_REMOTE(keep_first);

int nap_then(int ms, int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return x;
}
PRISM_REMOTE(nap_then);

int plus_one(int x) {
  return x + 1;
}
PRISM_REMOTE(plus_one);

ObjectId id_of(const detail::HandlePtr& h) {
  return {h->id().owner_rank, h->id().index, h->id().seq};
}

class ThreeNodeCluster : public LoopbackFixture<4> {
 protected:
  void SetUp() override {
    rts = start_nodes(cfg, fabric, {{0, 1, 0, 0, {}}, {1, 1, 0, 0, {}}, {2, 1, 0, 0, {}}});
  }
  template <class F>
  static bool eventually(F done) {
    for (int i = 0; i < 500 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
  }
};
}  // namespace

// Node 0 decodes X (owned by node 1) out of V (owned by node 2), then lets go
// of V. Node 2 then drops V and with it its own ref to X; that RemoveBorrower
// (node 2 -> node 1) must not beat node 0's AddBorrower (node 0 -> node 1,
// held back here as a slow channel) and free X under node 0's ref.
TEST_F(ThreeNodeCluster, RefDecodedOutOfAThirdRanksValueSurvivesThatValueBeingDropped) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto v = get(task(wrap_x).options({.node = 2}).remote());
  const ObjectId v_id = id_of(v.handle());
  ASSERT_EQ(v_id.owner_rank, 2u);
  fabric.hold(0, 1);
  auto inner = get(v);  // registers node 0 as X's borrower: held back
  ASSERT_EQ(inner.size(), 1u);
  const ObjectId x_id = id_of(inner[0].handle());
  ASSERT_EQ(x_id.owner_rank, 1u);
  v = ObjectRef<std::vector<ObjectRef<int>>>();                 // node 0 lets go of V
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // node 2 would free V by now
  EXPECT_TRUE(rts[1]->has_object(x_id)) << "X was freed while node 0 holds a ref to it";
  EXPECT_TRUE(rts[2]->has_object(v_id)) << "V is kept until node 1 has counted node 0";
  EXPECT_GT(fabric.release_held(), 0u);
  EXPECT_EQ(get(inner[0]), 42);
  // Once node 1 has counted node 0, V goes; X goes with node 0's last ref.
  EXPECT_TRUE(eventually([&] { return !rts[2]->has_object(v_id); }));
  EXPECT_TRUE(rts[1]->has_object(x_id));
  inner.clear();
  EXPECT_TRUE(eventually([&] { return !rts[1]->has_object(x_id) && !rts[0]->has_object(x_id); }));
}

// The same race through a task argument: node 0 runs a task whose argument is
// V (owned by node 2, holding X of node 1) and which keeps X beyond it. Once
// the result is in, node 0 drops the argument, node 2 drops V and its ref to
// X; node 0's AddBorrower for X (held back) must have been counted by then,
// so the task's result waits for node 1's answer.
TEST_F(ThreeNodeCluster, RefDecodedOutOfATaskArgumentSurvivesTheArgumentBeingDropped) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto v = get(task(wrap_x).options({.node = 2}).remote());
  const ObjectId x_id = id_of(get(v).at(0).handle());
  ASSERT_TRUE(eventually([&] { return !rts[0]->has_object(x_id); }));  // that decode is settled
  fabric.hold(0, 1);
  auto kept = task(keep_first).options({.node = 0}).remote(v);
  v = ObjectRef<std::vector<ObjectRef<int>>>();  // only the task's argument holds V now
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(rts[1]->has_object(x_id)) << "X was freed while node 0's task kept a ref to it";
  EXPECT_GT(fabric.release_held(), 0u);
  auto x = get(kept);
  EXPECT_EQ(get(x), 42);
  kept = ObjectRef<ObjectRef<int>>();
  x = ObjectRef<int>();
  EXPECT_TRUE(eventually([&] { return !rts[1]->has_object(x_id) && !rts[0]->has_object(x_id); }));
}

// ---- actors over the loopback fabric ----

// One caller's calls run in the order they were made even when the first has
// to wait for its argument and the second reaches the actor first.
TEST_F(LoopbackCluster, ActorCallsKeepTheirOrderWhenTheFirstWaitsForItsArgument) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto log = actor<Log>().options({.node = 1}).remote();
  EXPECT_TRUE(get(log.call(&Log::all).remote()).empty());  // constructed; its node known
  fabric.hold(1, 0);                                       // node 1's results to node 0 wait
  auto slow = task(where_am_i).options({.node = 1}).remote();
  auto first = log.call(&Log::add).remote(slow);  // waits at the caller for `slow`
  auto second = log.call(&Log::add).remote(7);    // reaches node 1 first: the actor holds it
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rts[1]->stats().actor_calls, 1u) << "the second call ran before the first";
  EXPECT_GT(fabric.release_held(), 0u);
  get(first);
  get(second);
  EXPECT_EQ(get(log.call(&Log::all).remote()), (std::vector<int>{1, 7}));
}

// The actor lives on node 1 and is owned by node 0: when node 0's last handle
// goes, node 1 destroys it and releases what it held.
TEST_F(LoopbackCluster, AnActorEndsWithItsLastHandle) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  {
    auto log = actor<Log>().options({.node = 1}).remote();
    get(log.call(&Log::add).remote(1));
    EXPECT_EQ(rts[1]->stats().actors_alive, 1u);
  }
  for (int i = 0; i < 500 && rts[1]->stats().actors_alive > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(rts[1]->stats().actors_alive, 0u);
  EXPECT_EQ(rts[1]->stats().actors_hosted, 1u);
}

// ---- tasks sent ahead of their arguments (docs/scheduling.md) ----

// A task pinned to node 2 whose argument is produced on node 1 gets it from
// node 1 directly: it finishes although node 1's results to the owner (node
// 0) are held back.
TEST_F(ThreeNodeCluster, AResultGoesStraightFromItsProducerToTheTaskThatNeedsIt) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  fabric.hold(1, 0);
  auto a = task(nap_then).options({.node = 1}).remote(200, 41);  // still running when b is sent
  auto b = task(plus_one).options({.node = 2}).remote(a);
  auto [ready, pending] = wait(std::vector{b}, 1, std::chrono::seconds(5));
  EXPECT_EQ(ready.size(), 1u) << "node 2's task waited for the owner, not for its producer";
  EXPECT_GT(fabric.release_held(), 0u);
  EXPECT_EQ(get(b), 42);
  EXPECT_EQ(get(a), 41);
}

// The producer finished before the owner's forward request came: the owner
// sends the result itself once it has it.
TEST_F(ThreeNodeCluster, AForwardAskedTooLateFallsBackToTheOwner) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  fabric.hold(1, 0);
  auto a = task(plus_one).options({.node = 1}).remote(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // done on node 1, result held
  auto b = task(plus_one).options({.node = 2}).remote(a);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(fabric.release_held(), 0u);
  auto [ready, pending] = wait(std::vector{b}, 1, std::chrono::seconds(5));
  ASSERT_EQ(ready.size(), 1u) << "the task held on node 2 never got its argument";
  EXPECT_EQ(get(b), 3);
}

// The producer's forward and the owner's task reach the consumer's node on
// different paths: the value may come first. It must wait there for its
// task (it was dropped, and the task stayed held forever).
TEST_F(ThreeNodeCluster, AForwardedValueThatOvertakesItsTaskWaitsForIt) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  fabric.hold(0, 2);                                             // the task for node 2 waits
  auto a = task(nap_then).options({.node = 1}).remote(100, 41);  // still running when b is sent
  auto b = task(plus_one).options({.node = 2}).remote(a);
  EXPECT_EQ(get(a), 41);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the forward reached node 2
  EXPECT_GT(fabric.release_held(), 0u);
  auto [ready, pending] = wait(std::vector{b}, 1, std::chrono::seconds(5));
  ASSERT_EQ(ready.size(), 1u) << "the task never got the value that arrived before it";
  EXPECT_EQ(get(b), 42);
}

// Both on node 1: the second takes the first's result as it finishes.
TEST_F(ThreeNodeCluster, ATaskHeldOnItsProducersNodeTakesTheResultThere) {
  runtime::NodeRuntime::Scope scope(rts[0].get());
  auto a = task(nap_then).options({.node = 1}).remote(100, 5);
  auto b = task(plus_one).options({.node = 1}).remote(a);
  auto c = task(plus_one).options({.node = 2}).remote(b);
  EXPECT_EQ(get(c), 7);
  // A failed producer fails its held consumers without running them.
  auto bad = task(fails).options({.node = 1}).remote(0);
  auto after = task(plus_one).options({.node = 2}).remote(bad);
  try {
    (void)get(after);
    FAIL() << "a task whose argument failed ran";
  } catch (const TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("deliberate failure"), std::string::npos) << e.what();
  }
}
