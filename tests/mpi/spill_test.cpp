// Spilling under memory pressure, across ranks. Run with a small store:
//   PRISM_STORE_CAPACITY=4M mpirun -n 3 prism_mpi_tests --gtest_filter=Spill*
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <prism/prism.hpp>
#include <string>

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

// Deletes every spill file under $PRISM_SPILL_DIR (shared by the ranks of
// this host): as if someone cleaned /tmp under a running job.
int delete_spill_files() {
  int n = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(
           std::getenv("PRISM_SPILL_DIR"), std::filesystem::directory_options::none, ec))
    if (f.path().extension() == ".h5" && std::filesystem::remove(f.path(), ec)) ++n;
  return n;
}
PRISM_REMOTE(delete_spill_files);

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

// Last in this file: it deletes every spill file of the job.
TEST_F(Spill, ObjectsWhoseSpillFileIsGoneAreMadeAgainFromTheirLineage) {
  if (!std::getenv("PRISM_SPILL_DIR")) GTEST_SKIP() << "needs PRISM_SPILL_DIR (ctest: mpi_spill)";
  const int last = prism::num_nodes() - 1;
  // Made on another node rank (held there; the driver keeps their lineage):
  // 12 MiB through a 4 MiB store, so most of them spill there.
  std::vector<prism::ObjectRef<std::vector<double>>> made;
  for (int i = 0; i < 12; ++i)
    made.push_back(prism::task(block).options({.node = last}).remote(i, kDoubles));
  prism::wait(made, made.size());
  // Put here: no lineage. Six more push it out to disk.
  auto mine = prism::put(block(99, kDoubles));
  std::vector<prism::ObjectRef<std::vector<double>>> pushers;
  for (int i = 0; i < 6; ++i) pushers.push_back(prism::put(block(100 + i, kDoubles)));
  ASSERT_GT(prism::get(prism::task(stats_on_node).options({.node = last}).remote()).objects_spilled,
            0u);
  ASSERT_GT(prism::memory_stats().objects_spilled, 0u);
  EXPECT_GT(prism::get(prism::task(delete_spill_files).options({.node = last}).remote()), 0);
  // Read here (a fetch from the holder) and by a task on the holder (its own
  // store): every one comes back with its value.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(prism::get(made[static_cast<size_t>(i)]).back(), i);
  std::vector<prism::ObjectRef<double>> sums;
  for (int i = 6; i < 12; ++i)
    sums.push_back(
        prism::task(first_plus_last).options({.node = last}).remote(made[static_cast<size_t>(i)]));
  for (int i = 6; i < 12; ++i) EXPECT_EQ(prism::get(sums[static_cast<size_t>(i - 6)]), 2.0 * i);
  // The put's only copy is gone for good: a clear error naming it.
  try {
    (void)prism::get(mine);
    FAIL() << "a lost put came back";
  } catch (const prism::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("was lost"), std::string::npos) << what;
    EXPECT_NE(what.find("spill file"), std::string::npos) << what;
    EXPECT_NE(what.find("cannot be made again"), std::string::npos) << what;
  }
}
