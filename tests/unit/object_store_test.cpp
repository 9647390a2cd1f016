#include <gtest/gtest.h>

#include "object_store/object_store.hpp"
#include "transport/loopback_transport.hpp"

using namespace prism;

TEST(ObjectStore, SealLookupErase) {
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 0);
  ObjectId id{0, 0, 1};
  auto obj = store.seal(id, std::vector<std::byte>(1000, std::byte{3}));
  ASSERT_TRUE(obj.has_value());
  EXPECT_EQ(store.lookup(id)->bytes().size(), 1000u);
  EXPECT_FALSE((*obj)->region().remote_key.empty());
  EXPECT_EQ(store.stats().bytes_in_use, 1000u);
  EXPECT_TRUE(store.erase(id));
  EXPECT_EQ(store.lookup(id), nullptr);
  EXPECT_EQ(store.stats().bytes_in_use, 0u);
  // A reader's reference keeps the bytes valid after erase.
  EXPECT_EQ((*obj)->bytes()[999], std::byte{3});
}

TEST(ObjectStore, CapacityErrorNamesSizes) {
  transport::LoopbackFabric fabric(1);
  object_store::ObjectStore store(fabric.at(0), 1500);
  ASSERT_TRUE(store.seal({0, 0, 1}, std::vector<std::byte>(1000)).has_value());
  auto second = store.seal({0, 0, 2}, std::vector<std::byte>(1000));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.status().code(), Errc::kOutOfMemory);
  EXPECT_NE(second.status().message().find("1000 bytes"), std::string::npos);
  EXPECT_NE(second.status().message().find("1500"), std::string::npos);
}
