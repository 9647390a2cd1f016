// Objects and futures across ranks: put/get, refs as arguments, large objects
// over RDMA, wait, nested tasks.
#include <gtest/gtest.h>

#include <chrono>
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

std::string ref_id(prism::ObjectRef<int> r) { return r.id(); }
PRISM_REMOTE(ref_id);

int deref_plus(prism::ObjectRef<int> r, int k) { return prism::get(r) + k; }
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

prism::ObjectRef<int> make_ref(int v) { return prism::put(v); }
PRISM_REMOTE(make_ref);

int fails_always(int) { throw std::logic_error("upstream broke"); }
PRISM_REMOTE(fails_always);

int plus_one(int x) { return x + 1; }
PRISM_REMOTE(plus_one);

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
