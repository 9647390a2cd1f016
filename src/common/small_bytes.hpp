#pragma once
// Bytes of a small value kept inside their owner, larger ones in a vector.
//
// Why: most task results are a few bytes (an int is 12 with its type
// fingerprint). Held in a std::vector, each one is a malloc on the worker
// that produced it and a free on the thread that drops the last ref (the
// driver): a cross-thread pair that misses glibc's per-thread caches both
// ways and went to the arenas for every task. Held inline, the value moves
// with the object's record and the worker's encoding buffer is freed by the
// thread that allocated it.
#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace prism {

class SmallBytes {
 public:
  static constexpr size_t kInline = 40;  // bytes held without an allocation

  SmallBytes() noexcept = default;
  /// Takes a large vector's memory; copies a small one (the vector is then
  /// freed by the caller's thread, which allocated it).
  explicit SmallBytes(std::vector<std::byte>&& v) { assign(std::move(v)); }
  explicit SmallBytes(std::span<const std::byte> s) { assign(s); }
  SmallBytes(const SmallBytes& o) { assign(o.span()); }
  SmallBytes(SmallBytes&& o) noexcept { take(o); }
  SmallBytes& operator=(const SmallBytes& o) {
    if (this != &o) assign(o.span());
    return *this;
  }
  SmallBytes& operator=(SmallBytes&& o) noexcept {
    if (this != &o) take(o);
    return *this;
  }

  void assign(std::span<const std::byte> s) {
    if (s.size() <= kInline) {
      large_.clear();
      std::copy(s.begin(), s.end(), small_.begin());
    } else {
      large_.assign(s.begin(), s.end());
    }
    size_ = s.size();
  }
  void assign(std::vector<std::byte>&& v) {
    if (v.size() <= kInline) return assign(std::span<const std::byte>(v));
    size_ = v.size();
    large_ = std::move(v);
  }

  const std::byte* data() const noexcept {
    return size_ <= kInline ? small_.data() : large_.data();
  }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> span() const noexcept { return {data(), size_}; }
  operator std::span<const std::byte>() const noexcept { return span(); }  // NOLINT: a view
  const std::byte* begin() const noexcept { return data(); }
  const std::byte* end() const noexcept { return data() + size_; }

 private:
  void take(SmallBytes& o) noexcept {
    size_ = o.size_;
    if (size_ <= kInline) {
      std::copy_n(o.small_.begin(), size_, small_.begin());
      large_.clear();
    } else {
      large_ = std::move(o.large_);
    }
    o.size_ = 0;
  }

  size_t size_ = 0;
  std::array<std::byte, kInline> small_;
  std::vector<std::byte> large_;
};

}  // namespace prism
