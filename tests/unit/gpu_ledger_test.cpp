#include <gtest/gtest.h>

#include "scheduler/gpu_ledger.hpp"

using prism::scheduler::GpuLedger;

TEST(GpuLedger, WholeGpusAreExclusive) {
  GpuLedger l(2);
  auto a = l.acquire(1);
  auto b = l.acquire(1);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->at(0), b->at(0));
  EXPECT_FALSE(l.acquire(1).has_value());    // both taken
  EXPECT_FALSE(l.acquire(0.5).has_value());  // no room for a fraction either
  l.release(*a, 1);
  auto c = l.acquire(1);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->at(0), a->at(0));
}

TEST(GpuLedger, FractionsShareADeviceUpToOne) {
  GpuLedger l(1);
  auto a = l.acquire(0.5), b = l.acquire(0.5);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->at(0), 0);
  EXPECT_EQ(b->at(0), 0);
  EXPECT_FALSE(l.acquire(0.25).has_value());
  EXPECT_FALSE(l.acquire(1).has_value());
  l.release(*a, 0.5);
  EXPECT_TRUE(l.acquire(0.25).has_value());
}

TEST(GpuLedger, MultiGpuRequests) {
  GpuLedger l(3);
  auto f = l.acquire(0.3);  // occupies one device partly
  auto two = l.acquire(2);
  ASSERT_TRUE(f && two);
  EXPECT_EQ(two->size(), 2u);
  for (int id : *two) EXPECT_NE(id, f->at(0));
  EXPECT_FALSE(l.acquire(1).has_value());
  EXPECT_TRUE(l.acquire(0.7).has_value());  // fills the shared one exactly
}
