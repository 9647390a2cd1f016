// How the node ranks of a host split its cores (worker/core_share.hpp).
#include "worker/core_share.hpp"

#include <gtest/gtest.h>

#include <set>

namespace prism::worker {

TEST(CoreShare, OneNodeRankTakesEveryCoreAndTheGcsRankFloats) {
  const auto node = share_host_cores(8, 1, 0);
  EXPECT_EQ(node.first, 0);
  EXPECT_EQ(node.count, 8);
  EXPECT_EQ(node.slots, 8);
  const auto gcs = share_host_cores(8, 1, -1);
  EXPECT_EQ(gcs.first, 0);
  EXPECT_EQ(gcs.count, 8);  // floats over all of them
}

TEST(CoreShare, NodeRanksGetDisjointSharesCoveringEveryCore) {
  for (int cores = 1; cores <= 9; ++cores)
    for (int ranks = 1; ranks <= cores; ++ranks) {
      std::set<int> seen;
      int slots = 0;
      for (int i = 0; i < ranks; ++i) {
        const auto s = share_host_cores(cores, ranks, i);
        EXPECT_GE(s.count, cores / ranks);
        EXPECT_LE(s.count, cores / ranks + 1);
        EXPECT_EQ(s.slots, s.count);
        EXPECT_TRUE(s.pin);  // a core per worker: pinned
        for (int c = s.first; c < s.first + s.count; ++c)
          EXPECT_TRUE(seen.insert(c).second)
              << cores << " cores, " << ranks << " ranks: core " << c;
        slots += s.slots;
      }
      EXPECT_EQ(static_cast<int>(seen.size()), cores);
      EXPECT_EQ(slots, cores);
    }
}

TEST(CoreShare, MoreNodeRanksThanCoresFloatWithOneWorkerEach) {
  for (int i = 0; i < 8; ++i) {
    const auto s = share_host_cores(2, 8, i);
    EXPECT_EQ(s.count, 2);
    EXPECT_EQ(s.slots, 1);
    EXPECT_FALSE(s.pin) << "rank " << i << ": a pinned worker would wait for its one core";
  }
}

TEST(CoreShare, SlurmCapsTheJobCoresOfAHost) {
  EXPECT_EQ(job_cores_on_host(16, nullptr), 16);
  EXPECT_EQ(job_cores_on_host(16, ""), 16);
  EXPECT_EQ(job_cores_on_host(16, "4"), 4);
  EXPECT_EQ(job_cores_on_host(2, "4"), 2);        // advertised CPUs beyond the real cores
  EXPECT_EQ(job_cores_on_host(16, "4(x2)"), 16);  // not a plain count: ignored
  EXPECT_EQ(job_cores_on_host(0, nullptr), 1);
}

}  // namespace prism::worker
