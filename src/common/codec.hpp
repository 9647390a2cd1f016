// Compact fixed binary layout for the runtime's own messages.
//
// Boost archives cost ~450 ns per int here (DESIGN.md), more than a whole MPI
// message, so task specs, replies and GCS records are written with this
// little-endian Writer and read with a Reader that checks every bound. A Reader
// never throws and never reads past its buffer: the first short read latches
// an error, later reads return zeros, and finish() turns the latch into a
// Status naming what was being decoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.hpp"

namespace prism {

/// Growable byte buffer writer. Not thread-safe.
class Writer {
 public:
  Writer() = default;
  explicit Writer(size_t reserve) { buf_.reserve(reserve); }

  template <class T>
  requires std::is_arithmetic_v<T> || std::is_enum_v<T>
  void put(T v) {
    const size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(buf_.data() + at, &v, sizeof(T));
  }
  /// Length-prefixed (u32) bytes.
  void put_bytes(std::span<const std::byte> b) {
    put<uint32_t>(static_cast<uint32_t>(b.size()));
    append(b.data(), b.size());
  }
  void put_string(std::string_view s) {
    put_bytes({reinterpret_cast<const std::byte*>(s.data()), s.size()});
  }
  /// Raw bytes without a length prefix (the reader must know the size).
  void append(const void* p, size_t n) {
    const size_t at = buf_.size();
    buf_.resize(at + n);
    if (n) std::memcpy(buf_.data() + at, p, n);
  }
  size_t size() const noexcept { return buf_.size(); }
  std::vector<std::byte>& buffer() noexcept { return buf_; }
  std::vector<std::byte> take() noexcept { return std::move(buf_); }

 private:
  std::vector<std::byte> buf_;
};

/// Bounds-checked reader over a byte span. Not thread-safe.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> b) : b_(b) {}
  Reader(const void* p, size_t n) : b_(static_cast<const std::byte*>(p), n) {}

  template <class T>
  requires std::is_arithmetic_v<T> || std::is_enum_v<T> T get() {
    T v{};
    if (!need(sizeof(T))) return v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  /// A flag byte: 0 or 1. Any other value fails the reader (a malformed
  /// message, not a second "true").
  bool get_flag() {
    const auto b = get<uint8_t>();
    if (b > 1) failed_ = true;
    return b == 1;
  }
  /// A view of length-prefixed bytes; empty on error.
  std::span<const std::byte> get_bytes() {
    const auto n = get<uint32_t>();
    return get_raw(n);
  }
  std::string get_string() {
    auto b = get_bytes();
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  std::span<const std::byte> get_raw(size_t n) {
    if (!need(n)) return {};
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  /// The bytes not read yet.
  std::span<const std::byte> rest() const {
    return failed_ ? std::span<const std::byte>{} : b_.subspan(pos_);
  }
  bool ok() const noexcept { return !failed_; }
  size_t position() const noexcept { return pos_; }
  /// Ok if nothing failed and (when exact) every byte was consumed.
  Status finish(std::string_view what, bool exact = true) const {
    if (failed_)
      return {Errc::kMalformedMessage, std::string(what) + " truncated at byte " +
                                           std::to_string(pos_) + " of " +
                                           std::to_string(b_.size())};
    if (exact && pos_ != b_.size())
      return {Errc::kMalformedMessage,
              std::string(what) + " has " + std::to_string(b_.size() - pos_) + " trailing bytes"};
    return Status::ok();
  }
  /// Latch an error found by a caller's own validation (e.g. a bad enum).
  void fail() noexcept { failed_ = true; }

 private:
  bool need(size_t n) {
    if (failed_ || b_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::span<const std::byte> b_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace prism
