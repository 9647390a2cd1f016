#include <gtest/gtest.h>

#include <atomic>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <cstdlib>
#include <map>
#include <new>
#include <prism/serialization.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// The largest single allocation made while a test tracks them: a corrupt
// length must be refused before the decoder allocates for it, so a test can
// tell "failed fast" from "allocated terabytes, then failed".
// (GCC flags the replacement delete's free() as mismatched once it is inlined
// into a new-expression: a false positive for a replaced operator new.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<bool> g_track_allocations{false};
std::atomic<size_t> g_largest_allocation{0};
}  // namespace
void* operator new(size_t n) {
  if (g_track_allocations.load(std::memory_order_relaxed)) {
    size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
    while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer uses it):
// otherwise ASan's own nothrow new would pair with the free() below and
// report an alloc-dealloc mismatch in every test after this file's.
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

using namespace prism;
using detail::decode;
using detail::encode;

namespace {
struct Particle {
  double x, y, z;
  int id;
};

struct Inventory {  // nested STL containers: Boost path
  std::map<std::string, std::vector<int>> items;
  std::vector<std::string> tags;
  template <class A>
  void serialize(A& a, unsigned) {
    a& items& tags;
  }
  bool operator==(const Inventory&) const = default;
};

class Account {  // private state with a custom serialize
 public:
  Account() = default;
  Account(std::string owner, long cents) : owner_(std::move(owner)), cents_(cents) {}
  long cents() const { return cents_; }
  const std::string& owner() const { return owner_; }

 private:
  friend class boost::serialization::access;
  template <class A>
  void serialize(A& a, unsigned) {
    a& owner_& cents_;
  }
  std::string owner_;
  long cents_ = 0;
};

struct Nested {  // custom serialize over nested STL containers of every kind
  std::vector<std::vector<std::string>> rows;
  std::unordered_map<std::string, std::set<int>> index;
  std::unordered_set<long> ids;
  std::map<int, Account> accounts;
  template <class A>
  void serialize(A& a, unsigned) {
    a& rows& index& ids& accounts;
  }
};

struct AllocationTracker {  // records the largest allocation while it lives
  AllocationTracker() {
    g_largest_allocation = 0;
    g_track_allocations = true;
  }
  ~AllocationTracker() { g_track_allocations = false; }
  size_t largest() const { return g_largest_allocation.load(); }
};

// Offset of the first 8-byte little-endian `value` at or after `from`.
size_t find_u64(const std::vector<std::byte>& b, uint64_t value, size_t from) {
  for (size_t i = from; i + 8 <= b.size(); ++i) {
    uint64_t v;
    std::memcpy(&v, b.data() + i, 8);
    if (v == value) return i;
  }
  ADD_FAILURE() << "value " << value << " not in the encoding";
  return 0;
}
void put_u64(std::vector<std::byte>& b, size_t at, uint64_t value) {
  std::memcpy(b.data() + at, &value, 8);
}
constexpr uint64_t kHuge = uint64_t{1} << 40;
// A corrupt count up to CheckedBinaryIArchive::kMaxUncheckedCount may still
// allocate that many elements; anything beyond is a failure.
constexpr size_t kSmallAllocation = size_t{16} << 20;

// Decodes `bytes` as T expecting a SerializationError that names `what`, with
// no allocation above kSmallAllocation on the way.
template <class T>
void expect_fast_failure(const std::vector<std::byte>& bytes, const std::string& what) {
  AllocationTracker track;
  try {
    (void)decode<T>(bytes);
    ADD_FAILURE() << "decoded a corrupt value";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
  EXPECT_LT(track.largest(), kSmallAllocation);
}
}  // namespace

TEST(Serialization, TriviallyCopyableIsRawBytes) {
  static_assert(detail::is_zero_copy_v<Particle>);
  Particle p{1, 2, 3, 7};
  auto b = encode(p);
  EXPECT_EQ(b.size(), detail::kValueHeaderSize + sizeof(Particle));
  auto q = decode<Particle>(b);
  EXPECT_EQ(q.id, 7);
  EXPECT_EQ(q.z, 3);
}

TEST(Serialization, ContiguousContainersAreRawBytes) {
  static_assert(detail::is_zero_copy_v<std::vector<double>>);
  static_assert(detail::is_zero_copy_v<std::string>);
  static_assert(!detail::is_zero_copy_v<std::vector<std::string>>);
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = i * 0.5;
  auto b = encode(v);
  EXPECT_EQ(b.size(), detail::kValueHeaderSize + v.size() * sizeof(double));
  EXPECT_EQ(decode<std::vector<double>>(b), v);
  EXPECT_EQ(decode<std::string>(encode(std::string("prism"))), "prism");
  EXPECT_EQ(decode<std::vector<int>>(encode(std::vector<int>{})).size(), 0u);
}

TEST(Serialization, UserTypesGoThroughBoost) {
  Inventory inv{{{"a", {1, 2}}, {"b", {}}}, {"x", "y"}};
  EXPECT_EQ(decode<Inventory>(encode(inv)), inv);
  Account acc("ada", 1234);
  auto back = decode<Account>(encode(acc));
  EXPECT_EQ(back.owner(), "ada");
  EXPECT_EQ(back.cents(), 1234);
}

TEST(Serialization, WrongTypeIsAClearError) {
  auto b = encode(42);
  try {
    (void)decode<double>(b);
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("type mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("double"), std::string::npos) << e.what();
  }
}

TEST(Serialization, TruncatedPayloadsNeverCrash) {
  Inventory inv{{{"key", {1, 2, 3}}}, {"tag"}};
  auto b = encode(inv);
  for (size_t cut = 0; cut < b.size(); ++cut)
    EXPECT_THROW((void)decode<Inventory>(std::span<const std::byte>(b.data(), cut)),
                 SerializationError)
        << "cut at " << cut;
  auto raw = encode(std::vector<double>{1, 2, 3});
  EXPECT_THROW(
      (void)decode<std::vector<double>>(std::span<const std::byte>(raw.data(), raw.size() - 3)),
      SerializationError);
  auto p = encode(Particle{});
  EXPECT_THROW((void)decode<Particle>(std::span<const std::byte>(p.data(), p.size() - 1)),
               SerializationError);
}

TEST(Serialization, CorruptBytesNeverCrash) {
  Inventory inv{{{"key", {1, 2, 3}}}, {"tag"}};
  auto b = encode(inv);
  for (size_t i = detail::kValueHeaderSize; i < b.size(); ++i) {
    auto c = b;
    // Zeroed bytes: lengths shrink, tags change. (Grown lengths:
    // CorruptLengthsNeverAllocateHugely.)
    c[i] = std::byte{0};
    try {
      (void)decode<Inventory>(c);  // may decode to something else; must not crash
    } catch (const SerializationError&) {
    }
  }
}

TEST(Serialization, HugeCollectionLengthFailsFast) {
  const std::vector<std::string> words{"alpha", "beta", "gamma"};
  auto b = encode(words);
  auto count = b;  // the vector's element count
  put_u64(count, find_u64(b, 3, detail::kValueHeaderSize), kHuge);
  expect_fast_failure<std::vector<std::string>>(count, std::to_string(kHuge) + " elements");
  auto length = b;  // the first string's length
  put_u64(length, find_u64(b, 5, detail::kValueHeaderSize), kHuge);
  expect_fast_failure<std::vector<std::string>>(length, std::to_string(kHuge) + " bytes");

  const std::map<std::string, std::vector<int>> m{{"k", {1, 2, 3}}, {"l", {4}}};
  auto mb = encode(m);
  put_u64(mb, find_u64(mb, 2, detail::kValueHeaderSize), kHuge);
  expect_fast_failure<std::map<std::string, std::vector<int>>>(mb, std::to_string(kHuge));
  auto vb = encode(m);  // the element count of the inner vector<int> {1, 2, 3}
  put_u64(vb, find_u64(vb, 3, detail::kValueHeaderSize), kHuge);
  expect_fast_failure<std::map<std::string, std::vector<int>>>(vb, std::to_string(kHuge));

  const std::unordered_map<int, int> u{{1, 2}, {3, 4}};
  auto ub = encode(u);
  put_u64(ub, find_u64(ub, 2, detail::kValueHeaderSize), kHuge);
  expect_fast_failure<std::unordered_map<int, int>>(ub, std::to_string(kHuge));
}

TEST(Serialization, CorruptLengthsNeverAllocateHugely) {
  // Every 8-byte window of a nested value overwritten with 2^40: whatever
  // field it hits, decoding fails (or yields some value) without a huge
  // allocation.
  Nested n;
  n.rows = {{"a", "bc"}, {}, {"def"}};
  n.index = {{"x", {1, 2}}, {"y", {}}};
  n.ids = {7, 8, 9};
  n.accounts = {{1, Account("ada", 5)}};
  const auto b = encode(n);
  for (size_t i = detail::kValueHeaderSize; i + 8 <= b.size(); ++i) {
    auto c = b;
    put_u64(c, i, kHuge);
    AllocationTracker track;
    try {
      (void)decode<Nested>(c);
    } catch (const SerializationError&) {
    }
    EXPECT_LT(track.largest(), kSmallAllocation) << "length patched at byte " << i;
  }
}

namespace {
struct Page {  // large in memory, small on the wire: only `used` is written
  std::array<char, 4096> buffer{};
  int used = 0;
  template <class A>
  void serialize(A& a, unsigned) {
    a& used;
  }
};
struct Pages {  // a vector of large elements inside a Boost-encoded value
  std::vector<Page> pages;
  std::vector<Unit> marks;  // elements that encode to nothing
  std::vector<std::vector<double>> rows;
  template <class A>
  void serialize(A& a, unsigned) {
    a& pages& marks& rows;
  }
};
}  // namespace

TEST(Serialization, CorruptVectorCountsAreMeasuredInMemoryNotElements) {
  // 60000 is under kMaxUncheckedCount, so only the element size tells that
  // a count of 60000 pages (240 MB) cannot come from a 40-byte payload.
  Pages p;
  p.pages.resize(2);
  p.pages[1].used = 7;
  p.rows = {{1.5, 2.5}};
  const auto b = encode(p);
  auto pages = b;
  put_u64(pages, find_u64(b, 2, detail::kValueHeaderSize), 60000);
  expect_fast_failure<Pages>(pages, "60000 4100-byte elements");
  // Raw (array-optimized) elements must all be in the payload.
  auto row = b;
  put_u64(row, find_u64(b, 2, find_u64(b, 1, detail::kValueHeaderSize) + 8), 60000);
  expect_fast_failure<Pages>(row, "60000 8-byte elements");

  // Legitimate values still decode: 60000 empty elements (under
  // kMaxUncheckedCount) are 60 KB of memory from no payload bytes.
  p.marks.resize(60000);
  p.pages.resize(3000);  // 12 MB of pages from 12 KB of payload
  const auto back = decode<Pages>(encode(p));
  EXPECT_EQ(back.marks.size(), 60000u);
  ASSERT_EQ(back.pages.size(), 3000u);
  EXPECT_EQ(back.pages[1].used, 7);
  EXPECT_EQ(back.rows, p.rows);
}

TEST(Serialization, CorruptListAndDequeCountsAreMeasuredInMemory) {
  // Boost resizes a list or deque to the claimed count, as it does a vector.
  using Pair = std::pair<std::list<Page>, std::deque<Page>>;
  const auto b = encode(Pair{std::list<Page>(2), std::deque<Page>(3)});
  auto list = b;
  put_u64(list, find_u64(b, 2, detail::kValueHeaderSize), 60000);
  expect_fast_failure<Pair>(list, "list claims 60000 4100-byte elements");
  auto deque = b;
  put_u64(deque, find_u64(b, 3, detail::kValueHeaderSize), 60000);
  expect_fast_failure<Pair>(deque, "deque claims 60000 4100-byte elements");
  const auto back = decode<Pair>(b);
  EXPECT_EQ(back.first.size(), 2u);
  EXPECT_EQ(back.second.size(), 3u);
}

TEST(Serialization, ABoolOtherThanZeroOrOneIsRefused) {
  // Boost reads the byte into the bool as it is: a 2 was undefined behaviour
  // (UBSan, tests/fuzz) and decoded as neither true nor false.
  auto b = encode(std::make_pair(std::string("x"), true));
  ASSERT_EQ(b.back(), std::byte{1});
  b.back() = std::byte{2};
  expect_fast_failure<std::pair<std::string, bool>>(b, "a bool holds 2");
  auto flags = encode(std::map<int, std::vector<bool>>{{1, {true, false}}});
  ASSERT_EQ(flags.back(), std::byte{0});
  flags.back() = std::byte{0x80};
  expect_fast_failure<std::map<int, std::vector<bool>>>(flags, "a bool holds 128");
  EXPECT_EQ((decode<std::map<int, std::vector<bool>>>(
                encode(std::map<int, std::vector<bool>>{{1, {true, false}}}))),
            (std::map<int, std::vector<bool>>{{1, {true, false}}}));
}

TEST(Serialization, NestedContainersAndCustomTypesRoundTrip) {
  Nested n;
  n.rows = {{"a", "bc"}, {}, {"def", std::string(100000, 'z')}};
  n.index = {{"x", {1, 2}}, {"y", {}}};
  n.ids = {7, 8, 9};
  n.accounts = {{1, Account("ada", 5)}, {2, Account("", -3)}};
  auto back = decode<Nested>(encode(n));
  EXPECT_EQ(back.rows, n.rows);
  EXPECT_EQ(back.index, n.index);
  EXPECT_EQ(back.ids, n.ids);
  ASSERT_EQ(back.accounts.size(), 2u);
  EXPECT_EQ(back.accounts.at(1).owner(), "ada");
  EXPECT_EQ(back.accounts.at(2).cents(), -3);

  // Many elements (past the unchecked floor) whose payload is large enough.
  std::vector<std::string> many(200000, "w");
  EXPECT_EQ(decode<std::vector<std::string>>(encode(many)), many);
  // A reserved, nearly empty unordered map claims far more buckets than the
  // payload has bytes: a capacity, not a length, so it still decodes.
  std::unordered_map<int, int> reserved;
  reserved.reserve(1 << 20);
  reserved[1] = 2;
  EXPECT_EQ((decode<std::unordered_map<int, int>>(encode(reserved))), reserved);
  // The format is binary_iarchive's: bytes written by Boost directly decode.
  std::vector<std::byte> raw(detail::kValueHeaderSize);
  const uint64_t fp = detail::type_fingerprint<Inventory>();
  std::memcpy(raw.data(), &fp, sizeof fp);
  {
    detail::VectorStreamBuf buf(raw);
    boost::archive::binary_oarchive ar(buf, boost::archive::no_header);
    Inventory inv{{{"a", {1, 2}}}, {"t"}};
    ar << inv;
  }
  EXPECT_EQ(decode<Inventory>(raw), (Inventory{{{"a", {1, 2}}}, {"t"}}));
}
