#include "common/small_bytes.hpp"

#include <gtest/gtest.h>

#include <numeric>

using namespace prism;

namespace {
std::vector<std::byte> bytes(size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 7 + 1);
  return v;
}
bool same(const SmallBytes& s, const std::vector<std::byte>& v) {
  return s.size() == v.size() && std::equal(v.begin(), v.end(), s.begin());
}
}  // namespace

TEST(SmallBytes, SmallValuesAreCopiedInsideLargeOnesKeepTheirMemory) {
  for (size_t n :
       {size_t{0}, size_t{12}, SmallBytes::kInline, SmallBytes::kInline + 1, size_t{4096}}) {
    auto v = bytes(n);
    const auto* memory = v.data();
    SmallBytes s(std::move(v));
    EXPECT_TRUE(same(s, bytes(n))) << n;
    if (n > SmallBytes::kInline)
      EXPECT_EQ(s.data(), memory) << "a large vector's memory is taken, not copied";
    else
      EXPECT_NE(s.data(), memory);
  }
}

TEST(SmallBytes, CopiesAndMovesKeepTheBytes) {
  for (size_t n : {size_t{5}, size_t{300}}) {
    SmallBytes a(std::span<const std::byte>(bytes(n)));
    SmallBytes b = a;  // copy
    EXPECT_TRUE(same(b, bytes(n)));
    SmallBytes c = std::move(a);  // move: the source is left empty
    EXPECT_TRUE(same(c, bytes(n)));
    EXPECT_TRUE(a.empty());  // NOLINT: reading a moved-from value on purpose
    SmallBytes d(std::span<const std::byte>(bytes(3)));
    d = c;  // large over small and back
    EXPECT_TRUE(same(d, bytes(n)));
    d = SmallBytes(std::span<const std::byte>(bytes(3)));
    EXPECT_TRUE(same(d, bytes(3)));
    d.assign(std::span<const std::byte>(bytes(SmallBytes::kInline + 9)));
    EXPECT_TRUE(same(d, bytes(SmallBytes::kInline + 9)));
    EXPECT_EQ(std::span<const std::byte>(d).size(), SmallBytes::kInline + 9);
  }
}
