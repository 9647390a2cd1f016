#include <gtest/gtest.h>

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
  EXPECT_TRUE(store.erase(id));
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
