// Spilling under memory pressure, across ranks. Run with a small store:
//   PRISM_STORE_CAPACITY=4M mpirun -n 3 prism_mpi_tests --gtest_filter=Spill*
#include <gtest/gtest.h>

#include <prism/prism.hpp>

namespace {
std::vector<double> block(int id, int n) {
  return std::vector<double>(static_cast<size_t>(n), static_cast<double>(id));
}
PRISM_REMOTE(block);

double first_plus_last(std::vector<double> v) {
  return v.front() + v.back();
}
PRISM_REMOTE(first_plus_last);

prism::MemoryStats stats_on_node() {
  return prism::memory_stats();
}
PRISM_REMOTE(stats_on_node);

constexpr int kDoubles = 128 * 1024;  // 1 MiB objects
}  // namespace

class Spill : public ::testing::Test {
 protected:
  void SetUp() override {
    if (prism::memory_stats().store_capacity > (64u << 20))
      GTEST_SKIP() << "run with PRISM_STORE_CAPACITY=4M (ctest: mpi_spill)";
  }
};

TEST_F(Spill, EveryValueSurvivesSpillingAndRestoring) {
  std::vector<prism::ObjectRef<std::vector<double>>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(prism::put(block(i, kDoubles)));  // 20 MiB > 4 MiB
  auto m = prism::memory_stats();
  EXPECT_GT(m.objects_spilled, 0u);
  EXPECT_LE(m.bytes_in_store, m.store_capacity);
  for (int i = 0; i < 20; ++i) {  // restored transparently, in any order
    auto v = prism::get(refs[static_cast<size_t>(19 - i)]);
    ASSERT_EQ(v.size(), size_t(kDoubles));
    EXPECT_EQ(v[0], 19 - i);
    EXPECT_EQ(v.back(), 19 - i);
  }
  // Other nodes read spilled objects too: the holder restores before the RDMA read.
  std::vector<prism::ObjectRef<double>> sums;
  for (int i = 0; i < 20; ++i)
    sums.push_back(
        prism::task(first_plus_last).options({.node = 1}).remote(refs[static_cast<size_t>(i)]));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(prism::get(sums[static_cast<size_t>(i)]), 2.0 * i);
}

TEST_F(Spill, RemoteProducerSpillsItsResults) {
  const int last = prism::num_nodes() - 1;
  std::vector<prism::ObjectRef<std::vector<double>>> made;
  for (int i = 0; i < 12; ++i)
    made.push_back(prism::task(block).options({.node = last}).remote(i, kDoubles));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(prism::get(made[static_cast<size_t>(i)]).back(), i);
  auto remote = prism::get(prism::task(stats_on_node).options({.node = last}).remote());
  EXPECT_GT(remote.objects_spilled + remote.objects_in_store, 0u);
  EXPECT_LE(remote.bytes_in_store, remote.store_capacity);
}

TEST_F(Spill, ObjectLargerThanTheStoreIsAClearError) {
  try {
    (void)prism::put(std::vector<double>(1 << 20));  // 8 MiB > 4 MiB
    FAIL() << "no error";
  } catch (const prism::ObjectStoreFullError& e) {
    EXPECT_NE(std::string(e.what()).find("8388616 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--prism-store-capacity"), std::string::npos) << e.what();
  }
  auto r = prism::task(block).options({.node = 1}).remote(0, 1 << 20);  // made remotely
  EXPECT_THROW((void)prism::get(r), prism::TaskError);
}
