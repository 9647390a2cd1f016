// GPU slots with declared GPUs (PRISM_NUM_GPUS=2 on every node rank): no GPU
// is over-subscribed, fractions share a device, ids reach the task.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <prism/prism.hpp>
#include <thread>

namespace {
struct Span {
  int node, first_gpu, num_ids;
  double start, end;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Span on_gpu(int ms) {
  auto ids = prism::gpu_ids();
  const double t0 = now_s();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return {prism::node_id(), ids.empty() ? -1 : ids[0], static_cast<int>(ids.size()), t0, now_s()};
}
PRISM_REMOTE(on_gpu);

// Largest number of spans overlapping in time on one (node, gpu).
int max_concurrency(const std::vector<Span>& spans) {
  std::map<std::pair<int, int>, std::vector<std::pair<double, int>>> events;
  for (const auto& s : spans) {
    events[{s.node, s.first_gpu}].push_back({s.start, +1});
    events[{s.node, s.first_gpu}].push_back({s.end, -1});
  }
  int worst = 0;
  for (auto& [key, ev] : events) {
    std::sort(ev.begin(), ev.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;  // ends first
    });
    int cur = 0;
    for (auto& [t, d] : ev) worst = std::max(worst, cur += d);
  }
  return worst;
}

std::vector<Span> run_all(double gpus, int n) {
  std::vector<prism::ObjectRef<Span>> refs;
  for (int i = 0; i < n; ++i)
    refs.push_back(prism::task(on_gpu)
                       .options({.num_gpus = gpus, .placement = prism::Placement::kSpread})
                       .remote(40));
  return prism::get(refs);
}
}  // namespace

class Gpus : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      (void)prism::task(on_gpu).options({.num_gpus = 2}).remote(0);
    } catch (const prism::InfeasibleError&) {
      GTEST_SKIP() << "run with PRISM_NUM_GPUS=2 (ctest: mpi_gpu_slots)";
    }
  }
};

TEST_F(Gpus, WholeGpusAreNeverShared) {
  auto spans = run_all(1, 16);
  for (const auto& s : spans) {
    EXPECT_EQ(s.num_ids, 1);
    EXPECT_GE(s.first_gpu, 0);
    EXPECT_LT(s.first_gpu, 2);
  }
  EXPECT_EQ(max_concurrency(spans), 1);
}

TEST_F(Gpus, FractionsShareUpToOneDevice) {
  auto spans = run_all(0.5, 16);
  EXPECT_LE(max_concurrency(spans), 2);
}

TEST_F(Gpus, MultiGpuTasksGetDistinctIds) {
  auto s = prism::get(prism::task(on_gpu).options({.num_gpus = 2}).remote(1));
  EXPECT_EQ(s.num_ids, 2);
  EXPECT_THROW((void)prism::task(on_gpu).options({.num_gpus = 3}).remote(1),
               prism::InfeasibleError);
}

TEST_F(Gpus, NoGpuOutsideAGpuTask) {
  EXPECT_TRUE(prism::gpu_ids().empty());
  EXPECT_EQ(prism::get(prism::task(on_gpu).remote(0)).num_ids, 0);
}

// ---- Executor-side holding of CPUs, memory and custom resources ----
// Run with PRISM_NUM_CPUS=2 PRISM_RESOURCES=fpga=1 (ctest: mpi_resources_held).
namespace {
struct Held {
  int node;
  double start, end;
};
Held hold_for(int ms) {
  const double t0 = now_s();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return {prism::node_id(), t0, now_s()};
}
PRISM_REMOTE(hold_for);

// Largest number of spans overlapping in time on one node, each span weighted.
double peak_per_node(const std::vector<std::pair<Held, double>>& spans) {
  std::map<int, std::vector<std::pair<double, double>>> events;
  for (const auto& [h, w] : spans) {
    events[h.node].push_back({h.start, w});
    events[h.node].push_back({h.end, -w});
  }
  double worst = 0;
  for (auto& [node, ev] : events) {
    std::sort(ev.begin(), ev.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;  // ends first
    });
    double cur = 0;
    for (auto& [t, d] : ev) worst = std::max(worst, cur += d);
  }
  return worst;
}
}  // namespace

constexpr uint64_t kNodeMemory = 1ull << 30;  // PRISM_MEMORY=1G

class HeldResources : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      (void)prism::task(hold_for)
          .options({.num_cpus = 2, .memory = kNodeMemory, .resources = {{"fpga", 1}}})
          .remote(0);
    } catch (const prism::InfeasibleError&) {
      GTEST_SKIP() << "run with PRISM_NUM_CPUS=2 PRISM_RESOURCES=fpga=1 PRISM_MEMORY=1G "
                      "(ctest: mpi_resources_held)";
    }
  }
};

// A custom resource of 1 per node: tasks asking for it never overlap on a
// node, however many CPUs are free.
TEST_F(HeldResources, CustomResourceIsHeldWhileTheTaskRuns) {
  std::vector<prism::ObjectRef<Held>> refs;
  for (int i = 0; i < 16; ++i)
    refs.push_back(prism::task(hold_for).options({.resources = {{"fpga", 1}}}).remote(15));
  std::vector<std::pair<Held, double>> spans;
  for (auto& h : prism::get(refs)) spans.push_back({h, 1.0});
  EXPECT_DOUBLE_EQ(peak_per_node(spans), 1.0);
}

// CPUs: a 2-CPU task and 1-CPU tasks never use more than the node's 2 CPUs.
TEST_F(HeldResources, MultiCpuTasksHoldEveryCpuTheyAskFor) {
  std::vector<prism::ObjectRef<Held>> refs;
  std::vector<double> weight;
  for (int i = 0; i < 24; ++i) {
    const double cpus = i % 3 == 0 ? 2 : 1;
    refs.push_back(prism::task(hold_for).options({.num_cpus = cpus}).remote(10));
    weight.push_back(cpus);
  }
  auto held = prism::get(refs);
  std::vector<std::pair<Held, double>> spans;
  for (size_t i = 0; i < held.size(); ++i) spans.push_back({held[i], weight[i]});
  EXPECT_LE(peak_per_node(spans), 2.0);
  EXPECT_GE(peak_per_node(spans), 2.0);  // and they do run side by side when they fit
}

// Memory is a reservation: two tasks that each reserve 60% of a node's memory
// never run together on it.
TEST_F(HeldResources, MemoryReservationsDoNotOverlap) {
  std::vector<prism::ObjectRef<Held>> refs;
  for (int i = 0; i < 8; ++i)
    refs.push_back(prism::task(hold_for).options({.memory = kNodeMemory * 6 / 10}).remote(10));
  // More than a node has: infeasible at once, naming the resource.
  try {
    (void)prism::task(hold_for).options({.memory = kNodeMemory + 1}).remote(0);
    ADD_FAILURE() << "no error";
  } catch (const prism::InfeasibleError& e) {
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
  }
  std::vector<std::pair<Held, double>> spans;
  for (auto& h : prism::get(refs)) spans.push_back({h, 1.0});
  EXPECT_DOUBLE_EQ(peak_per_node(spans), 1.0);
}
