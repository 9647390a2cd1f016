#include <gtest/gtest.h>

#include <memory>

#include "runtime/object_table.hpp"

using namespace prism;
using Table = runtime::ObjectTable<std::shared_ptr<int>>;

namespace {
ObjectId owned(uint64_t seq) {
  return {3, 0, seq};
}
void insert(Table& t, const ObjectId& id, int v) {
  auto& slot = t.slot(id);
  ASSERT_FALSE(slot);
  slot = std::make_shared<int>(v);
}
}  // namespace

TEST(ObjectTable, OwnedAndBorrowedObjectsAreFoundAndCounted) {
  Table t(3);
  for (uint64_t s = 1; s <= 100; ++s) insert(t, owned(s), static_cast<int>(s));
  const ObjectId borrowed{5, 0, 7}, other_index{3, 1, 7};
  insert(t, borrowed, -1);
  insert(t, other_index, -2);
  EXPECT_EQ(t.size(), 102u);
  EXPECT_EQ(**t.find(owned(42)), 42);
  EXPECT_EQ(**t.find(borrowed), -1);
  EXPECT_EQ(**t.find(other_index), -2);
  EXPECT_EQ(t.find(owned(101)), nullptr);
  EXPECT_EQ(t.find(ObjectId{5, 0, 8}), nullptr);
  EXPECT_TRUE(t.erase(owned(42)));
  EXPECT_FALSE(t.erase(owned(42)));
  EXPECT_EQ(t.find(owned(42)), nullptr);
  EXPECT_TRUE(t.erase(borrowed));
  EXPECT_EQ(t.size(), 100u);
}

TEST(ObjectTable, FreedPrefixIsTrimmedAndLateIdsStillWork) {
  Table t(3);
  insert(t, owned(2), 2);  // seq 1 was drawn but is not inserted yet (another thread)
  insert(t, owned(3), 3);
  EXPECT_TRUE(t.erase(owned(2)));
  EXPECT_TRUE(t.erase(owned(3)));  // the window's front moved past seq 1
  insert(t, owned(1), 1);          // late: lands in the map, still found
  EXPECT_EQ(**t.find(owned(1)), 1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.erase(owned(1)));
  EXPECT_EQ(t.size(), 0u);
}

TEST(ObjectTable, LongLivedObjectsDoNotPinAnEmptyWindow) {
  Table t(3);
  insert(t, owned(1), 1);  // kept for the whole test
  for (uint64_t s = 2; s < 100000; ++s) {
    insert(t, owned(s), 0);
    EXPECT_TRUE(t.erase(owned(s)));
  }
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(**t.find(owned(1)), 1);  // moved to the map when the window compacted
  insert(t, owned(100000), 5);
  EXPECT_EQ(**t.find(owned(100000)), 5);
  EXPECT_EQ(t.size(), 2u);
}

// Sparse ids (the GCS agent keeps entries for a few tasks among many): an
// emptied window restarts at the next id instead of spanning the gap.
TEST(ObjectTable, AnEmptyWindowRestartsAtTheNextId) {
  Table t(3);
  insert(t, owned(1), 1);
  EXPECT_TRUE(t.erase(owned(1)));
  EXPECT_EQ(t.window_slots(), 0u);
  insert(t, owned(50'000'000), 2);
  EXPECT_EQ(t.window_slots(), 1u) << "the window spans the gap";
  insert(t, owned(50'000'003), 3);
  EXPECT_EQ(t.window_slots(), 4u);
  insert(t, owned(7), 7);  // behind the window: in the map, still found
  EXPECT_EQ(**t.find(owned(7)), 7);
  EXPECT_EQ(**t.find(owned(50'000'000)), 2);
  EXPECT_EQ(t.find(owned(50'000'001)), nullptr);
  EXPECT_EQ(t.size(), 3u);
}
