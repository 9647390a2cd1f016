// Objects and futures across ranks: put/get, refs as arguments, large objects
// over RDMA, wait, nested tasks.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <prism/prism.hpp>
#include <thread>

namespace {

double total(std::vector<double> v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
PRISM_REMOTE(total);

std::vector<double> ramp(int n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}
PRISM_REMOTE(ramp);

std::string ref_id(prism::ObjectRef<int> r) {
  return r.id();
}
PRISM_REMOTE(ref_id);

int deref_plus(prism::ObjectRef<int> r, int k) {
  return prism::get(r) + k;
}
PRISM_REMOTE(deref_plus);

int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
PRISM_REMOTE(sleepy);

long fib(int n) {
  if (n < 2) return n;
  auto a = prism::task(fib).remote(n - 1);
  auto b = prism::task(fib).remote(n - 2);
  return prism::get(a) + prism::get(b);
}
PRISM_REMOTE(fib);

prism::ObjectRef<int> make_ref(int v) {
  return prism::put(v);
}
PRISM_REMOTE(make_ref);

int fails_always(int) {
  throw std::logic_error("upstream broke");
}
PRISM_REMOTE(fails_always);

int plus_one(int x) {
  return x + 1;
}
PRISM_REMOTE(plus_one);

int slow_plus_one(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  return x + 1;
}
PRISM_REMOTE(slow_plus_one);

}  // namespace

TEST(Objects, PutGetSmallAndLarge) {
  auto small = prism::put(41);
  EXPECT_EQ(prism::get(small), 41);
  std::vector<double> big(1 << 20, 2.0);  // 8 MiB: held in the store, not inline
  auto ref = prism::put(big);
  EXPECT_EQ(prism::get(ref), big);
}

TEST(Objects, RefAsValueArgumentOnAnotherNode) {
  auto data = prism::put(std::vector<double>(1 << 18, 1.0));  // 2 MiB, pulled with RDMA
  auto s = prism::task(total).options({.node = prism::num_nodes() - 1}).remote(data);
  EXPECT_DOUBLE_EQ(prism::get(s), double(1 << 18));
}

TEST(Objects, LargeResultFlowsBetweenNodes) {
  const int last = prism::num_nodes() - 1;
  auto v = prism::task(ramp).options({.node = last}).remote(1 << 20);  // made on `last`
  auto s = prism::task(total).options({.node = 1 % prism::num_nodes()}).remote(v);
  const double n = 1 << 20;
  EXPECT_DOUBLE_EQ(prism::get(s), n * (n - 1) / 2);
  auto local = prism::get(v);  // the driver pulls it too
  EXPECT_EQ(local.size(), size_t(1) << 20);
  EXPECT_EQ(local.back(), n - 1);
}

TEST(Objects, RefParameterReceivesTheRefItself) {
  auto r = prism::put(5);
  EXPECT_EQ(prism::get(prism::task(ref_id).options({.node = 1}).remote(r)), r.id());
  EXPECT_EQ(prism::get(prism::task(deref_plus).options({.node = 1}).remote(r, 10)), 15);
}

TEST(Objects, RefsInsideReturnedValues) {
  auto outer = prism::task(make_ref).options({.node = prism::num_nodes() - 1}).remote(77);
  prism::ObjectRef<int> inner = prism::get(outer);
  EXPECT_EQ(prism::get(inner), 77);
}

TEST(Objects, ChainedTasksWaitForTheirArguments) {
  auto a = prism::task(sleepy).options({.node = 1}).remote(50);
  auto b = prism::task(plus_one).remote(a);  // submitted before `a` is ready
  auto c = prism::task(plus_one).options({.node = 0}).remote(b);
  EXPECT_EQ(prism::get(c), 52);
}

TEST(Objects, FailedArgumentFailsTheDependent) {
  auto bad = prism::task(fails_always).remote(1);
  auto dep = prism::task(plus_one).remote(bad);
  try {
    (void)prism::get(dep);
    FAIL();
  } catch (const prism::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("upstream broke"), std::string::npos) << e.what();
  }
}

TEST(Objects, WrongTypeOnGetIsAClearError) {
  // Deliberately reinterpret a ref: the fingerprint catches it.
  auto r = prism::put(std::string("text"));
  prism::ObjectRef<double> wrong(r.handle());
  EXPECT_THROW((void)prism::get(wrong), prism::SerializationError);
}

TEST(Wait, ReturnsReadyAndPendingInOrder) {
  std::vector<prism::ObjectRef<int>> refs = {
      prism::task(sleepy).options({.node = 1}).remote(2000),
      prism::task(sleepy).options({.node = 0}).remote(0),
      prism::put(3),
  };
  auto [ready, pending] = prism::wait(refs, 2, std::chrono::seconds(10));
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0], refs[1]);
  EXPECT_EQ(ready[1], refs[2]);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0], refs[0]);
}

TEST(Wait, TimeoutReturnsWhatIsReady) {
  std::vector<prism::ObjectRef<int>> refs = {prism::put(1),
                                             prism::task(sleepy).options({.node = 1}).remote(1500)};
  auto t0 = std::chrono::steady_clock::now();
  auto [ready, pending] = prism::wait(refs, 2, std::chrono::milliseconds(100));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ready.size(), 1u);
  EXPECT_EQ(pending.size(), 1u);
  EXPECT_GE(waited, std::chrono::milliseconds(100));
  EXPECT_LT(waited, std::chrono::milliseconds(1400));
  EXPECT_THROW((void)prism::wait(refs, 3), prism::Error);
}

TEST(Nested, RecursionDeeperThanTheWorkerCount) {
  // With PRISM_NUM_CPUS=1 every level blocks in get(): only slot lending
  // lets the recursion finish.
  EXPECT_EQ(prism::get(prism::task(fib).remote(10)), 55);
}

namespace {
prism::MemoryStats stats_here() {
  return prism::memory_stats();
}
PRISM_REMOTE(stats_here);

double sum_ref(prism::ObjectRef<std::vector<double>> r) {
  double s = 0;
  for (double x : prism::get(r)) s += x;
  return s;
}
PRISM_REMOTE(sum_ref);

std::vector<prism::MemoryStats> all_nodes_stats() {
  std::vector<prism::ObjectRef<prism::MemoryStats>> refs;
  for (int n = 0; n < prism::num_nodes(); ++n)
    refs.push_back(prism::task(stats_here).options({.node = n}).remote());
  return prism::get(refs);
}

// Objects are freed asynchronously (messages); give them a moment.
bool settles(const std::function<bool()>& ok) {
  for (int i = 0; i < 200; ++i) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ok();
}

// Every node's store holds what it held in `before` again (in time).
bool stores_settle_at(const std::vector<prism::MemoryStats>& before) {
  return settles([&] {
    auto now = all_nodes_stats();
    for (size_t n = 0; n < now.size(); ++n)
      if (now[n].objects_in_store != before[n].objects_in_store ||
          now[n].bytes_in_store != before[n].bytes_in_store)
        return false;
    return true;
  });
}
}  // namespace

// Regression: the last handle of a task's argument dies when the task's
// bookkeeping is dropped under the runtime's lock; that used to deadlock.
TEST(RefCount, TemporaryArgumentsAreReleasedWithoutDeadlock) {
  for (int node : {0, 1}) {
    prism::ObjectRef<int> result;
    {
      auto arg = prism::put(5);
      result = prism::task(slow_plus_one).options({.node = node}).remote(arg);
    }  // the caller's handle dies first: the task's record holds the last one
    EXPECT_EQ(prism::get(result), 6);
  }
}

TEST(RefCount, LargeObjectsAreFreedEverywhereWhenDropped) {
  const auto before = all_nodes_stats();
  const int last = prism::num_nodes() - 1;
  {
    auto made = prism::task(ramp).options({.node = last}).remote(1 << 18);  // held on `last`
    auto mine = prism::put(std::vector<double>(1 << 18, 1.0));              // held here
    EXPECT_DOUBLE_EQ(
        prism::get(prism::task(sum_ref).options({.node = 1 % prism::num_nodes()}).remote(mine)),
        double(1 << 18));  // a borrower on another node
    EXPECT_EQ(prism::get(made).size(), size_t(1) << 18);
    EXPECT_EQ(all_nodes_stats()[last].objects_in_store, before[last].objects_in_store + 1);
  }
  EXPECT_TRUE(settles([&] {
    auto now = all_nodes_stats();
    for (size_t n = 0; n < now.size(); ++n) {
      if (now[n].objects_in_store != before[n].objects_in_store ||
          now[n].bytes_in_store != before[n].bytes_in_store)
        return false;
    }
    return true;
  })) << "store memory did not return to its baseline";
}

TEST(Objects, ViewIsZeroCopyOnTheHolder) {
  auto ref = prism::put(std::vector<int>(100000, 7));  // in this node's store
  auto v1 = prism::get_view(ref);
  auto v2 = prism::get_view(ref);
  EXPECT_EQ(v1.size(), 100000u);
  EXPECT_EQ(v1[99999], 7);
  EXPECT_EQ(v1.data(), v2.data());  // both point into the store: no copy
  auto small = prism::get_view(prism::put(3.5));
  EXPECT_EQ(small[0], 3.5);
}

TEST(Churn, SmallAndLargeObjectsReturnToBaseline) {
  const auto before = prism::memory_stats();
  for (int round = 0; round < 100; ++round) {  // 1M small objects, 10k at a time
    std::vector<prism::ObjectRef<int>> refs;
    refs.reserve(10000);
    for (int i = 0; i < 10000; ++i) refs.push_back(prism::put(i));
    ASSERT_EQ(prism::get(refs[9999]), 9999);
  }
  for (int i = 0; i < 10000; ++i) {  // 10k large objects (128 KiB, above the inline threshold)
    auto r = prism::put(std::vector<char>(128 * 1024, static_cast<char>(i)));
    if (i % 1000 == 0) {
      ASSERT_EQ(prism::get_view(r)[5], static_cast<char>(i));
    }
  }
  const auto after = prism::memory_stats();
  EXPECT_EQ(after.objects_in_store, before.objects_in_store);
  EXPECT_EQ(after.bytes_in_store, before.bytes_in_store);
  EXPECT_LE(after.tracked_objects, before.tracked_objects);  // earlier tests may let go meanwhile
}

namespace {
using Block = std::vector<double>;
// The inner object is owned by the executor; the outer (the result) by the caller.
std::vector<prism::ObjectRef<Block>> wrap_new_block(int n) {
  return {prism::put(Block(static_cast<size_t>(n), 2.0))};
}
PRISM_REMOTE(wrap_new_block);
double sum_inside(std::vector<prism::ObjectRef<Block>> refs) {
  double s = 0;
  for (const auto& r : refs)
    for (double x : prism::get(r)) s += x;
  return s;
}
PRISM_REMOTE(sum_inside);
}  // namespace

// Refs serialized inside values live as long as the value, not for the job:
// the inner object survives its last direct ref while an outer value holds
// it, and is freed everywhere once the outer value is gone too.
TEST(RefCount, RefsInsideValuesAreFreedWithTheirValue) {
  const auto before = all_nodes_stats();
  const int last = prism::num_nodes() - 1;
  constexpr int kN = 1 << 16;  // 512 KiB: in the stores, not inline
  {
    // 1. put of a value holding a ref; the direct ref is dropped at once.
    auto outer = [] {
      auto inner = prism::put(Block(kN, 1.0));
      return prism::put(std::vector<prism::ObjectRef<Block>>{inner});
    }();
    EXPECT_DOUBLE_EQ(
        prism::get(prism::task(sum_inside).options({.node = last}).remote(prism::get(outer))),
        double(kN));
    // 2. a result holding a ref the task created on its own node.
    auto wrapped = prism::task(wrap_new_block).options({.node = last}).remote(kN);
    EXPECT_DOUBLE_EQ(prism::get(prism::get(wrapped)[0])[5], 2.0);
    // 3. a value argument holding a ref whose caller lets go right after submitting.
    prism::ObjectRef<double> total;
    {
      std::vector<prism::ObjectRef<Block>> arg{prism::put(Block(kN, 3.0))};
      total = prism::task(sum_inside).options({.node = last}).remote(arg);
    }
    EXPECT_DOUBLE_EQ(prism::get(total), 3.0 * kN);
  }
  EXPECT_TRUE(stores_settle_at(before))
      << "objects referenced only from inside freed values were kept";
}

namespace {
prism::ObjectRef<Block> make_block_here(int n) {
  return prism::put(Block(static_cast<size_t>(n), 4.0));
}
PRISM_REMOTE(make_block_here);
// A value owned by the rank that runs this, holding a ref owned by `node`.
prism::ObjectRef<std::vector<prism::ObjectRef<Block>>> wrap_block_from(int node, int n) {
  auto inner = prism::get(prism::task(make_block_here).options({.node = node}).remote(n));
  return prism::put(std::vector<prism::ObjectRef<Block>>{inner});
}
PRISM_REMOTE(wrap_block_from);
prism::ObjectRef<Block> keep_first_block(std::vector<prism::ObjectRef<Block>> refs) {
  return refs.at(0);
}
PRISM_REMOTE(keep_first_block);
}  // namespace

// The driver decodes a ref (owned by node 1) out of a value owned by node 2
// and drops the value at once: node 2 then drops its own ref, and that must
// not free the object before node 1 has counted the driver (the value stays
// pinned on the driver's node until node 1 says so). The same through a task
// argument (the task's result waits for node 1's answer). Everything is freed
// at the end. (The race itself is forced in ThreeNodeCluster, runtime_loopback_test.
// This test also found refs dropped on threads without a runtime scope, a pool
// thread polling between jobs, being skipped instead of released.)
TEST(RefCount, RefDecodedOutOfAThirdRanksValueOutlivesThatValue) {
  if (prism::num_nodes() < 3) GTEST_SKIP() << "needs 3 node ranks";
  const auto before = all_nodes_stats();
  constexpr int kN = 1 << 16;  // 512 KiB: in node 1's store
  for (int round = 0; round < 20; ++round) {
    std::vector<prism::ObjectRef<Block>> inner;
    {
      auto value = prism::get(prism::task(wrap_block_from).options({.node = 2}).remote(1, kN));
      inner = prism::get(value);
    }  // the value goes here, right after decoding
    ASSERT_EQ(inner.size(), 1u);
    EXPECT_DOUBLE_EQ(prism::get(inner[0])[7], 4.0) << "round " << round;
    // The same through a task argument: the task keeps the inner ref, the
    // argument goes once the result is in.
    prism::ObjectRef<prism::ObjectRef<Block>> kept;
    {
      auto value = prism::get(prism::task(wrap_block_from).options({.node = 2}).remote(1, kN));
      kept = prism::task(keep_first_block).options({.node = round % 2 == 0 ? 0 : 2}).remote(value);
    }
    EXPECT_DOUBLE_EQ(prism::get(prism::get(kept))[7], 4.0) << "round " << round;
  }
  EXPECT_TRUE(stores_settle_at(before)) << "the inner objects or their values were kept";
}

namespace {
// A value that serializes but cannot be deserialized: the task fails while
// decoding its first argument, before it gets to the refs in the second.
struct Undecodable {
  std::string why = "not trivially copyable: goes through Boost";
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    int x = 1;
    ar& x;
    if constexpr (Archive::is_loading::value) throw std::runtime_error("undecodable on purpose");
  }
};
double never_sums(Undecodable, std::vector<prism::ObjectRef<Block>> refs) {
  return static_cast<double>(refs.size());
}
PRISM_REMOTE(never_sums);
double never_reads(Undecodable, prism::ObjectRef<Block> ref) {
  return prism::get(ref)[0];
}
PRISM_REMOTE(never_reads);
}  // namespace

// The submitter pins the refs it sends (ObjectRef arguments, refs inside
// values) until the executor borrows them. An executor that fails before
// decoding them releases those pins itself, so the objects go once the
// caller lets go, as after a successful task.
TEST(RefCount, RefsOfATaskThatFailedBeforeDecodingThemAreReleased) {
  const auto before = all_nodes_stats();
  constexpr int kN = 1 << 16;                              // 512 KiB: in the stores, not inline
  for (int node = 0; node < prism::num_nodes(); ++node) {  // local and remote executors
    std::vector<prism::ObjectRef<Block>> inside{prism::put(Block(kN, 1.0))};
    auto direct = prism::put(Block(kN, 2.0));
    auto a = prism::task(never_sums).options({.node = node}).remote(Undecodable{}, inside);
    auto b = prism::task(never_reads).options({.node = node}).remote(Undecodable{}, direct);
    EXPECT_THROW((void)prism::get(a), prism::TaskError);
    try {
      (void)prism::get(b);
      ADD_FAILURE() << "never_reads should have failed";
    } catch (const prism::TaskError& e) {
      EXPECT_NE(std::string(e.what()).find("undecodable on purpose"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(stores_settle_at(before))
      << "objects sent to tasks that failed before decoding them were kept";
}
