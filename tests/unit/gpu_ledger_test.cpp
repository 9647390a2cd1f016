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

// ---- ResourceLedger: everything a node's running tasks hold ----
#include "scheduler/resource_ledger.hpp"

TEST(ResourceLedger, CpusMemoryAndCustomAddUpExactly) {
  prism::scheduler::ResourceLedger l({0, 2, 0, 1000, {{"fpga", 1}}});
  prism::scheduler::ResourceDemand half;
  half.num_cpus = 0.5;
  std::vector<prism::scheduler::ResourceGrant> grants;
  for (int i = 0; i < 4; ++i) {
    auto g = l.try_acquire(half);
    ASSERT_TRUE(g.has_value()) << i;
    grants.push_back(*g);
  }
  EXPECT_FALSE(l.try_acquire(half).has_value());  // 4 x 0.5 = 2 CPUs: full
  l.release(half, grants.back());
  EXPECT_TRUE(l.fits(half));

  prism::scheduler::ResourceLedger m({0, 8, 0, 1000, {{"fpga", 1}}});
  prism::scheduler::ResourceDemand mem, fpga;
  mem.memory = 600;
  fpga.custom["fpga"] = 1;
  auto a = m.try_acquire(mem);
  ASSERT_TRUE(a);
  EXPECT_FALSE(m.fits(mem));
  auto b = m.try_acquire(fpga);
  ASSERT_TRUE(b);
  EXPECT_FALSE(m.try_acquire(fpga).has_value());
  prism::scheduler::ResourceDemand ssd;  // a resource the node does not have
  ssd.custom["ssd"] = 1;
  EXPECT_FALSE(m.fits(ssd));
  m.release(fpga, *b);
  m.release(mem, *a);
  EXPECT_TRUE(m.fits(mem) && m.fits(fpga));
  EXPECT_EQ(m.usage().memory_free, 1000u);
}

TEST(ResourceLedger, GpusAreGrantedAsDevicesAndBlockedTasksLendCpusOnly) {
  prism::scheduler::ResourceLedger l({0, 1, 2, 0, {}});
  prism::scheduler::ResourceDemand gpu;
  gpu.num_gpus = 1;
  gpu.num_cpus = 0;
  auto g1 = l.try_acquire(gpu), g2 = l.try_acquire(gpu);
  ASSERT_TRUE(g1 && g2);
  EXPECT_NE(g1->gpu_ids, g2->gpu_ids);
  EXPECT_FALSE(l.try_acquire(gpu).has_value());
  prism::scheduler::ResourceDemand cpu;
  auto c = l.try_acquire(cpu);
  ASSERT_TRUE(c);
  EXPECT_FALSE(l.fits(cpu));
  l.lend_cpus(1);  // the task blocks in get(): its CPU is free for another
  EXPECT_TRUE(l.fits(cpu));
  auto c2 = l.try_acquire(cpu);
  l.reclaim_cpus(1);  // over-committed until one finishes
  EXPECT_LT(l.usage().cpus_free, 0);
  l.release(cpu, *c2);
  l.release(cpu, *c);
  EXPECT_DOUBLE_EQ(l.usage().cpus_free, 1.0);
  EXPECT_FALSE(l.fits(gpu));  // GPUs stayed held throughout
}

TEST(ResourceLedger, CompetesOnlyForWhatTheStarvingTaskLacks) {
  prism::scheduler::ResourceLedger l({0, 2, 1, 0, {}});
  prism::scheduler::ResourceDemand gpu_task, cpu_task;
  gpu_task.num_gpus = 1;
  auto held = l.try_acquire(gpu_task);  // the GPU is taken
  ASSERT_TRUE(held);
  EXPECT_FALSE(l.competes(gpu_task, cpu_task));  // CPU tasks may pass a GPU-starved one
  EXPECT_TRUE(l.competes(gpu_task, gpu_task));
}
