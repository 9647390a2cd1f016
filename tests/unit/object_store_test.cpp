#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "object_store/object_store.hpp"
#include "transport/loopback_transport.hpp"

using namespace prism;

namespace {
std::vector<std::byte> bytes_of(size_t n, int fill) {
  return std::vector<std::byte>(n, static_cast<std::byte>(fill));
}
struct SpillDir {
  std::string path =
      (std::filesystem::temp_directory_path() / ("prism-spill-test-" + std::to_string(::getpid())))
          .string();
  ~SpillDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST(ObjectStore, SealAcquireErase) {
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 0);
  ObjectId id{0, 0, 1};
  auto obj = store.seal(id, bytes_of(1000, 3));
  ASSERT_TRUE(obj.has_value());
  EXPECT_EQ((*store.acquire(id))->bytes().size(), 1000u);
  EXPECT_FALSE((*obj)->region().remote_key.empty());
  EXPECT_EQ(store.stats().bytes_in_use, 1000u);
  EXPECT_EQ(store.ids(), std::vector<ObjectId>{id});
  EXPECT_TRUE(store.erase(id));
  EXPECT_TRUE(store.ids().empty());
  EXPECT_EQ(store.acquire(id).status().code(), Errc::kNotFound);
  EXPECT_EQ(store.stats().bytes_in_use, 0u);
  // A reader's reference keeps the bytes valid after erase.
  EXPECT_EQ((*obj)->bytes()[999], std::byte{3});
}

TEST(ObjectStore, CapacityErrorNamesSizes) {
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 1500);  // no spill dir: spilling disabled
  ASSERT_TRUE(store.seal({0, 0, 1}, bytes_of(1000, 1)).has_value());
  auto second = store.seal({0, 0, 2}, bytes_of(1000, 2));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.status().code(), Errc::kOutOfMemory);
  EXPECT_NE(second.status().message().find("1000 bytes"), std::string::npos);
  EXPECT_NE(second.status().message().find("1500"), std::string::npos);
}

TEST(ObjectStore, SpillsLeastRecentlyUsedAndRestores) {
  SpillDir dir;
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 2500, dir.path);
  ASSERT_TRUE(store.seal({0, 0, 1}, bytes_of(1000, 1)).has_value());
  ASSERT_TRUE(store.seal({0, 0, 2}, bytes_of(1000, 2)).has_value());
  ASSERT_TRUE(store.acquire({0, 0, 1}).has_value());                  // 1 is now more recent than 2
  ASSERT_TRUE(store.seal({0, 0, 3}, bytes_of(1000, 3)).has_value());  // spills 2
  auto st = store.stats();
  EXPECT_EQ(st.objects_spilled, 1u);
  EXPECT_EQ(st.bytes_in_use, 2000u);
  auto ids = store.ids();  // the spilled one too
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<ObjectId>{{0, 0, 1}, {0, 0, 2}, {0, 0, 3}}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1);
  auto two = store.acquire({0, 0, 2});  // restored from HDF5, spilling another
  ASSERT_TRUE(two.has_value()) << two.status().to_string();
  EXPECT_EQ((*two)->bytes()[500], std::byte{2});
  EXPECT_EQ(store.stats().restores, 1u);
  EXPECT_EQ(store.stats().objects_spilled, 1u);
  for (int i : {1, 3}) {
    auto o = store.acquire({0, 0, static_cast<uint64_t>(i)});
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ((*o)->bytes()[999], static_cast<std::byte>(i));
  }
}

TEST(ObjectStore, PinnedObjectsAreNeverSpilled) {
  SpillDir dir;
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 2000, dir.path);
  auto a = store.seal({0, 0, 1}, bytes_of(1000, 1));  // held: pinned
  auto b = store.seal({0, 0, 2}, bytes_of(1000, 2));  // held: pinned
  auto c = store.seal({0, 0, 3}, bytes_of(1000, 3));
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.status().message().find("pinned"), std::string::npos) << c.status().message();
  b = Expected<std::shared_ptr<const object_store::StoredObject>>(nullptr);  // unpin 2
  EXPECT_TRUE(store.seal({0, 0, 3}, bytes_of(1000, 3)).has_value());
  EXPECT_EQ((*a)->bytes()[0], std::byte{1});  // the pinned one stayed in memory
  auto too_big = store.seal({0, 0, 4}, bytes_of(5000, 4));
  EXPECT_NE(too_big.status().message().find("exceeds"), std::string::npos);
}

// A seal refused only because readers pin everything else (kBusy) leaves the
// caller its buffer, bytes intact, to seal once a reader lets go.
TEST(ObjectStore, SealOrKeepReturnsTheBufferWhileReadersPinTheRoom) {
  SpillDir dir;
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 2000, dir.path);
  auto a = store.seal({0, 0, 1}, bytes_of(1000, 1));  // held: pinned
  auto b = store.seal({0, 0, 2}, bytes_of(1000, 2));  // held: pinned
  auto buffer = store.adopt(bytes_of(1000, 3));
  ASSERT_TRUE(buffer.has_value());
  auto c = store.seal_or_keep({0, 0, 3}, *buffer, 1000);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.status().code(), Errc::kBusy) << c.status().message();
  ASSERT_GE(buffer->capacity(), 1000u);  // still the caller's
  EXPECT_EQ(buffer->data()[999], std::byte{3});
  EXPECT_EQ(store.ids().size(), 2u);
  b = Expected<std::shared_ptr<const object_store::StoredObject>>(nullptr);  // unpin 2
  auto again = store.seal_or_keep({0, 0, 3}, *buffer, 1000);
  ASSERT_TRUE(again.has_value()) << again.status().message();
  EXPECT_EQ((*again)->bytes()[999], std::byte{3});
  auto big = store.adopt(bytes_of(5000, 4));
  ASSERT_TRUE(big.has_value());
  auto too_big = store.seal_or_keep({0, 0, 4}, *big, 5000);
  EXPECT_EQ(too_big.status().code(), Errc::kOutOfMemory) << too_big.status().message();
}

TEST(BufferPool, FreedBuffersServeTheNextRequestOfASimilarSize) {
  transport::LoopbackFabric fabric(1);
  object_store::BufferPool pool(fabric.at(0), 4 << 20);
  std::byte* first = nullptr;
  std::vector<std::byte> key;
  {
    auto b = pool.acquire(1 << 20);
    ASSERT_TRUE(b.has_value());
    first = b->data();
    key = b->region().remote_key;
    EXPECT_FALSE(key.empty());
    EXPECT_GE(b->capacity(), size_t{1} << 20);
  }
  EXPECT_EQ(pool.stats().idle_buffers, 1u);
  {
    auto again = pool.acquire((1 << 20) - 100);  // same memory, same registration
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->data(), first);
    EXPECT_EQ(again->region().remote_key, key);
    EXPECT_EQ(pool.stats().idle_buffers, 0u);
    auto bigger = pool.acquire(2 << 20);  // nothing idle fits: fresh
    auto smaller = pool.acquire(1 << 16);
    ASSERT_TRUE(bigger.has_value() && smaller.has_value());
  }
  // Much smaller requests do not take a much larger buffer.
  auto small = pool.acquire(1 << 16);
  ASSERT_TRUE(small.has_value());
  EXPECT_LT(small->capacity(), size_t{1} << 17);
  const auto st = pool.stats();
  EXPECT_EQ(st.reuses, 2u);
  EXPECT_EQ(st.fresh, 3u);
}

TEST(BufferPool, IdleBytesStayWithinTheBound) {
  transport::LoopbackFabric fabric(1);
  object_store::BufferPool pool(fabric.at(0), (3 << 20) / 2);  // room for one 1 MiB buffer
  {
    auto a = pool.acquire(1 << 20);
    auto b = pool.acquire(1 << 20);
    auto huge = pool.acquire(2 << 20);  // larger than the bound: never kept
    ASSERT_TRUE(a.has_value() && b.has_value() && huge.has_value());
  }
  auto st = pool.stats();
  EXPECT_EQ(st.idle_buffers, 1u);
  EXPECT_LE(st.idle_bytes, uint64_t{3 << 20} / 2);
  EXPECT_EQ(st.dropped, 2u);
  object_store::BufferPool none(fabric.at(0), 0);  // reuse disabled
  { ASSERT_TRUE(none.acquire(1 << 20).has_value()); }
  EXPECT_EQ(none.stats().idle_buffers, 0u);
}

TEST(ObjectStore, FreedObjectMemoryIsReusedButNotCounted) {
  SpillDir dir;
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 3 << 20, dir.path, 8 << 20);
  const size_t n = 1 << 20;
  auto fill = [&](int v) {
    auto buf = store.allocate(n);
    EXPECT_TRUE(buf.has_value());
    std::memset(buf->data(), v, n);
    return std::move(buf.value());
  };
  ASSERT_TRUE(store.seal({0, 0, 1}, fill(1), n).has_value());
  EXPECT_EQ(store.stats().bytes_in_use, n);
  EXPECT_TRUE(store.erase({0, 0, 1}));
  auto st = store.stats();
  EXPECT_EQ(st.bytes_in_use, 0u);  // idle pooled memory is not "in store"
  EXPECT_EQ(st.objects, 0u);
  EXPECT_EQ(st.pool.idle_buffers, 1u);
  // The next objects reuse it; spilling returns buffers and restoring takes
  // them again, with the bytes intact.
  for (int i = 2; i <= 5; ++i) ASSERT_TRUE(store.seal({0, 0, uint64_t(i)}, fill(i), n).has_value());
  EXPECT_GE(store.stats().pool.reuses, 1u);
  EXPECT_GE(store.stats().objects_spilled, 1u);
  for (int i = 2; i <= 5; ++i) {
    auto o = store.acquire({0, 0, uint64_t(i)});
    ASSERT_TRUE(o.has_value()) << o.status().to_string();
    EXPECT_EQ((*o)->bytes().size(), n);
    EXPECT_EQ((*o)->bytes()[n - 1], static_cast<std::byte>(i));
  }
  // Live objects and idle buffers together stay within the capacity.
  st = store.stats();
  EXPECT_LE(st.bytes_in_use + st.pool.idle_bytes, uint64_t{3} << 20);
  for (int i = 2; i <= 5; ++i) store.erase({0, 0, uint64_t(i)});
  st = store.stats();
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_LE(st.pool.idle_bytes, uint64_t{3} << 20);
}
