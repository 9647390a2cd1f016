#include "common/block_pool.hpp"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

using namespace prism;

TEST(BlockPool, RecyclesBlocksAndFreesBeyondItsBudget) {
  BlockPool pool(64, 16, /*keep_bytes=*/64 * 2);  // keeps two blocks
  void* a = pool.allocate();
  void* b = pool.allocate();
  void* c = pool.allocate();
  EXPECT_NE(a, b);
  pool.deallocate(a);
  pool.deallocate(b);
  pool.deallocate(c);  // over the budget: back to operator delete
  EXPECT_EQ(pool.kept(), 2u);
  std::set<void*> again{pool.allocate(), pool.allocate()};
  EXPECT_EQ(again, (std::set<void*>{a, b}));
  EXPECT_EQ(pool.kept(), 0u);
  for (void* p : again) pool.deallocate(p);
}

TEST(BlockPool, HonoursAlignment) {
  struct alignas(64) Wide {
    char bytes[64];
  };
  auto p = make_pooled<Wide>();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.get()) % 64, 0u);
}

namespace {
struct Counted {
  static inline int live = 0;
  int value;
  explicit Counted(int v) : value(v) { ++live; }
  ~Counted() { --live; }
};
}  // namespace

TEST(BlockPool, PooledObjectsAreConstructedAndDestroyed) {
  {
    auto p = make_pooled<Counted>(7);
    EXPECT_EQ(p->value, 7);
    auto s = std::allocate_shared<Counted>(PoolAllocator<Counted>(), 8);
    EXPECT_EQ(s->value, 8);
    EXPECT_EQ(Counted::live, 2);
  }
  EXPECT_EQ(Counted::live, 0);
}

// The runtime's pattern: one thread allocates records, another frees them,
// through per-thread caches; every block comes back and none is handed out
// twice while live.
TEST(BlockPool, OneThreadAllocatesAnotherFrees) {
  using Map = std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                                 PoolAllocator<std::pair<const int, int>>>;
  constexpr int kRounds = 20, kPerRound = 5000;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<PooledPtr<Counted>> made;
    Map map;
    for (int i = 0; i < kPerRound; ++i) {
      made.push_back(make_pooled<Counted>(i));
      map.emplace(i, i);
    }
    std::set<Counted*> distinct;
    for (auto& p : made) distinct.insert(p.get());
    ASSERT_EQ(distinct.size(), made.size());
    std::thread freer([&] {
      made.clear();
      map.clear();
    });
    freer.join();
  }
  EXPECT_EQ(Counted::live, 0);
}

// A deque used as a queue recycles its chunks through the pool: once a few
// thousand elements have passed, chunks freed at the front come back at the
// back, and the pool holds the spare ones.
TEST(BlockPool, PooledDequeTakesItsChunksFromThePool) {
  auto& chunks = BlockPool::of<PoolAllocator<void*>::kChunkBytes, alignof(void*)>();
  PooledDeque<void*> q;
  for (int i = 0; i < 20000; ++i) q.push_back(&q);  // ~313 chunks of 64 pointers
  const size_t before = chunks.kept();
  q.clear();
  q.shrink_to_fit();
  EXPECT_GT(chunks.kept(), before) << "freed chunks did not reach the pool";
  for (int i = 0; i < 100000; ++i) {  // a queue: one in, one out
    q.push_back(&q);
    if (q.size() > 100) q.pop_front();
  }
  EXPECT_EQ(q.size(), 100u);
  EXPECT_EQ(q.front(), &q);
}
