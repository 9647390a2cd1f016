// Remote tasks across real ranks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/serialization/map.hpp>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <prism/prism.hpp>
#include <thread>

namespace {

int node_of() {
  return prism::node_id();
}
PRISM_REMOTE(node_of);

int pid_of() {
  return static_cast<int>(getpid());
}
PRISM_REMOTE(pid_of);

long add(long a, long b) {
  return a + b;
}
PRISM_REMOTE(add);

std::string shout(std::string s, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += s + "!";
  return out;
}
PRISM_REMOTE(shout);

struct Stats {  // nested STL: the Boost path
  std::map<std::string, std::vector<double>> series;
  std::string label;
  template <class A>
  void serialize(A& a, unsigned) {
    a& series& label;
  }
};

Stats summarize(Stats in) {
  Stats out;
  out.label = in.label + "-summary";
  for (auto& [k, v] : in.series) out.series[k] = {std::accumulate(v.begin(), v.end(), 0.0)};
  return out;
}
PRISM_REMOTE(summarize);

int thrower(int code) {
  if (code > 0) throw std::runtime_error("bad input " + std::to_string(code));
  return 0;
}
PRISM_REMOTE(thrower);

void returns_nothing(int) {}
PRISM_REMOTE(returns_nothing);

int not_registered(int x) {
  return x;
}

}  // namespace

TEST(Tasks, RunOnEveryNodeAcrossRanks) {
  const int nodes = prism::num_nodes();
  ASSERT_GE(nodes, 2);
  std::vector<prism::ObjectRef<int>> where, pids;
  for (int n = 0; n < nodes; ++n) {
    where.push_back(prism::task(node_of).options({.node = n}).remote());
    pids.push_back(prism::task(pid_of).options({.node = n}).remote());
  }
  auto got = prism::get(where);
  for (int n = 0; n < nodes; ++n) EXPECT_EQ(got[n], n);
  auto p = prism::get(pids);
  EXPECT_EQ(p[0], getpid());  // node 0 is the driver's process
  EXPECT_NE(p[1], getpid());  // node 1 is another process
}

// docs/user-guide.md ("Thread safety"): threads the driver starts may call
// the API; refs they drop are released like the driver's.
TEST(Tasks, ThreadsTheDriverStartsSubmitGetAndDropRefs) {
  std::vector<long> got(4, -1);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      try {
        auto x = prism::put(static_cast<long>(i));
        got[static_cast<size_t>(i)] =
            prism::get(prism::task(add).options({.node = i % prism::num_nodes()}).remote(x, 10));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(errors[static_cast<size_t>(i)], "") << "thread " << i;
    EXPECT_EQ(got[static_cast<size_t>(i)], i + 10) << "thread " << i;
  }
}

TEST(Tasks, ManyTasksAreAllAccountedFor) {
  std::vector<prism::ObjectRef<long>> refs;
  for (long i = 0; i < 2000; ++i) refs.push_back(prism::task(add).remote(i, 1L));
  long total = 0;
  for (long v : prism::get(refs)) total += v;
  EXPECT_EQ(total, 2000L * 1999 / 2 + 2000);
}

TEST(Tasks, ArgumentsConvertAndStringsTravel) {
  auto r = prism::task(shout).options({.node = 1}).remote("hey", 2);  // const char* -> std::string
  EXPECT_EQ(prism::get(r), "hey!hey!");
  auto sum = prism::task(add).options({.node = 1}).remote(2, 3);  // int -> long
  EXPECT_EQ(prism::get(sum), 5);
}

TEST(Tasks, UserTypesWithNestedContainers) {
  Stats s;
  s.label = "run";
  s.series["a"] = {1, 2, 3};
  s.series["b"] = {};
  auto out = prism::get(prism::task(summarize).options({.node = 1}).remote(s));
  EXPECT_EQ(out.label, "run-summary");
  EXPECT_EQ(out.series["a"].at(0), 6);
  EXPECT_EQ(out.series["b"].at(0), 0);
}

TEST(Tasks, ExceptionReachesGetWithNameAndMessage) {
  auto r = prism::task(thrower).options({.node = prism::num_nodes() - 1}).remote(7);
  try {
    (void)prism::get(r);
    FAIL() << "get() did not throw";
  } catch (const prism::TaskError& e) {
    EXPECT_EQ(e.task_name(), "thrower");
    EXPECT_NE(std::string(e.what()).find("bad input 7"), std::string::npos) << e.what();
  }
  auto named = prism::task(thrower).options({.name = "validate"}).remote(1);
  EXPECT_THROW(
      {
        try {
          (void)prism::get(named);
        } catch (const prism::TaskError& e) {
          EXPECT_EQ(e.task_name(), "validate");
          throw;
        }
      },
      prism::TaskError);
}

TEST(Tasks, VoidFunctions) {
  auto r = prism::task(returns_nothing).options({.node = 1}).remote(1);
  EXPECT_EQ(prism::get(r), prism::Unit{});
}

TEST(Tasks, UnregisteredFunctionIsAClearError) {
  try {
    (void)prism::task(not_registered).remote(1);
    FAIL();
  } catch (const prism::RegistrationError& e) {
    EXPECT_NE(std::string(e.what()).find("PRISM_REMOTE"), std::string::npos);
  }
}

TEST(Tasks, InfeasibleRequestFailsAtOnce) {
  try {
    (void)prism::task(node_of).options({.num_gpus = 64}).remote();
    FAIL();
  } catch (const prism::InfeasibleError& e) {
    EXPECT_NE(std::string(e.what()).find("num_gpus"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)prism::task(node_of).options({.resources = {{"fpga", 1}}}).remote(),
               prism::InfeasibleError);
  EXPECT_THROW((void)prism::task(node_of).options({.node = 99}).remote(), prism::Error);
}

namespace {
std::vector<char> hundred_mb() {
  return std::vector<char>(100u << 20, 'z');
}
PRISM_REMOTE(hundred_mb);
int where_with(std::vector<char> data) {
  return data.size() == (100u << 20) ? prism::node_id() : -1;
}
PRISM_REMOTE(where_with);
}  // namespace

TEST(Tasks, TaskGoesToTheNodeHoldingItsLargeArgument) {
  const int holder = prism::num_nodes() - 1;
  auto data = prism::task(hundred_mb).options({.node = holder}).remote();
  EXPECT_EQ(prism::get(prism::task(where_with).remote(data)), holder);
}

namespace {
// Worker slots of a node (its share of its host's cores, or --prism-num-cpus).
int slot_count(int node) {
  return static_cast<int>(prism::nodes().at(node).num_cpus);
}

// Sleeps, then says where it ran.
int nap(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return prism::node_id();
}
PRISM_REMOTE(nap);
}  // namespace

// Heterogeneous durations keep every worker slot busy: utilisation is
// measured (slot-seconds of work / slot-seconds available), not assumed.
// Sleeping tasks need no CPU, so this holds on a loaded 2-core machine too;
// still, a shared CI host can stall a rank for a few hundred milliseconds
// (2026-12-07, CI: a first round at 0.64 in which node 1 ran nothing, then
// 0.96), so the best of three rounds counts, and a round counts only if every
// node ran tasks in it. A scheduler that leaves a node or a slot idle fails
// every round (3 nodes with one idle: at most 0.67).
TEST(Tasks, HeterogeneousDurationsKeepEveryWorkerBusy) {
  int slots = 0;
  for (int n = 0; n < prism::num_nodes(); ++n) slots += slot_count(n);
  std::vector<int> durations;
  for (int i = 0; i < 12 * slots; ++i) durations.push_back(5 + (i * 37) % 60);  // 5..64 ms
  long work_ms = 0;
  for (int d : durations) work_ms += d;
  double best = 0;
  for (int round = 0; round < 3 && best <= 0.7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<prism::ObjectRef<int>> refs;
    for (int d : durations) refs.push_back(prism::task(nap).remote(d));
    std::vector<int> ran_on(prism::num_nodes(), 0);
    for (auto& r : refs) ++ran_on.at(prism::get(r));
    const double wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    bool every_node = true;
    for (int n = 0; n < prism::num_nodes(); ++n)
      if (ran_on[n] == 0) {
        std::printf("round %d: node %d ran none of the tasks\n", round, n);
        every_node = false;
      }
    const double utilisation = work_ms / (wall_ms * slots);
    std::printf("utilisation %.2f over %d slots (%ld ms of work in %.0f ms)\n", utilisation, slots,
                work_ms, wall_ms);
    if (every_node) best = std::max(best, utilisation);
  }
  EXPECT_GT(best, 0.7) << "no round kept every node's slots busy";
}

// The driver's node is kept busy with long naps, so a lone probe task must
// run elsewhere at once (or on the driver's thread, if it finds a CPU free): with work stealing its
// node reports it queued at once and the global scheduler orders it pushed to an idle node;
// without, it spills in a batch sent when a thread next polls (it must not wait for the batch to
// fill).
TEST(Tasks, LoneSpilledTaskRunsPromptly) {
  if (prism::num_nodes() < 2) GTEST_SKIP() << "needs two node ranks";
  const int here = prism::node_id();
  const int slots = slot_count(here);
  std::vector<prism::ObjectRef<int>> naps;
  for (int i = 0; i < 2 * slots; ++i)  // every slot busy and as many queued
    naps.push_back(prism::task(nap).options({.node = here}).remote(400));
  double best_ms = 1e9;
  for (int round = 0; round < 3 && best_ms >= 200; ++round) {  // CI hosts stall
    const auto t0 = std::chrono::steady_clock::now();
    const int ran_on = prism::get(prism::task(nap).remote(0));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("probe ran on node %d (driver on %d) in %.1f ms\n", ran_on, here, ms);
    // Before the workers took the naps the driver may run it itself, as
    // promptly: what must not happen is a wait behind a 400 ms nap.
    best_ms = std::min(best_ms, ms);
  }
  EXPECT_LT(best_ms, 200) << "the probe waited behind the busy node's naps";
  for (auto& n : naps) (void)prism::get(n);
}

namespace {
long mix3(long l, long m, long r) {
  return (l * 3 + m * 5 + r * 7) % 1000003;
}
PRISM_REMOTE(mix3);
}  // namespace

// Dependent tasks pinned to different nodes go there before their arguments
// are ready, which their producers send straight to them (send-ahead,
// docs/scheduling.md): the values are those of a serial computation.
TEST(Tasks, DependentTasksPinnedAcrossNodesComputeTheSerialValues) {
  const int nodes = prism::num_nodes();
  auto v = prism::put(1L);
  for (int i = 0; i < 200; ++i) v = prism::task(add).options({.node = i % nodes}).remote(v, 1L);
  EXPECT_EQ(prism::get(v), 201);
  // A stencil of width = nodes, cell p on node p.
  const int width = nodes, steps = 60;
  std::vector<long> serial(static_cast<size_t>(width));
  std::vector<prism::ObjectRef<long>> cells;
  for (int p = 0; p < width; ++p) {
    serial[static_cast<size_t>(p)] = p + 1;
    cells.push_back(prism::put(static_cast<long>(p + 1)));
  }
  for (int s = 0; s < steps; ++s) {
    std::vector<long> next(serial.size());
    std::vector<prism::ObjectRef<long>> refs;
    for (int p = 0; p < width; ++p) {
      const size_t l = static_cast<size_t>(std::max(0, p - 1)), m = static_cast<size_t>(p),
                   r = static_cast<size_t>(std::min(width - 1, p + 1));
      next[m] = mix3(serial[l], serial[m], serial[r]);
      refs.push_back(prism::task(mix3).options({.node = p}).remote(cells[l], cells[m], cells[r]));
    }
    serial = std::move(next);
    cells = std::move(refs);
  }
  for (int p = 0; p < width; ++p)
    EXPECT_EQ(prism::get(cells[static_cast<size_t>(p)]), serial[static_cast<size_t>(p)]);
}
