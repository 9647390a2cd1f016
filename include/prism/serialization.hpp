// How values become bytes.
//
// Every encoded value starts with an 8-byte type fingerprint, so reading an
// object as the wrong type fails with a clear SerializationError. Then:
//  * trivially copyable types: their bytes as they are (zero-copy reads);
//  * std::vector / std::basic_string of trivially copyable elements: the raw
//    element bytes (the length follows from the size);
//  * everything else: Boost.Serialization's binary archive. A user type needs
//    only the usual member `template <class A> void serialize(A& a, unsigned)`.
// Truncated or corrupt bytes raise SerializationError, never undefined behaviour.
#pragma once

#include <array>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <cstring>
#include <span>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include "prism/detail/type_name.hpp"
#include "prism/errors.hpp"

namespace prism {

/// The value of a task that returns void.
struct Unit {
  friend bool operator==(Unit, Unit) { return true; }
};

namespace detail {

constexpr size_t kValueHeaderSize = sizeof(uint64_t);

template <class T>
inline constexpr bool is_raw_v =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;

template <class T>
struct contiguous : std::false_type {};
template <class E, class A>
struct contiguous<std::vector<E, A>> : std::bool_constant<is_raw_v<E> && !std::is_same_v<E, bool>> {
  using element = E;
};
template <class C, class Tr, class A>
struct contiguous<std::basic_string<C, Tr, A>> : std::bool_constant<is_raw_v<C>> {
  using element = C;
};

/// True when T is stored without Boost (raw bytes).
template <class T>
inline constexpr bool is_zero_copy_v = is_raw_v<T> || contiguous<T>::value;

// A read-only streambuf over a byte span (no copy into a stringstream).
class SpanStreamBuf : public std::streambuf {
 public:
  explicit SpanStreamBuf(std::span<const std::byte> b) {
    char* p = const_cast<char*>(reinterpret_cast<const char*>(b.data()));
    setg(p, p, p + b.size());
  }
};

// An output streambuf appending to a byte vector.
class VectorStreamBuf : public std::streambuf {
 public:
  explicit VectorStreamBuf(std::vector<std::byte>& out) : out_(out) {}

 protected:
  int_type overflow(int_type ch) override {
    if (ch != traits_type::eof()) out_.push_back(static_cast<std::byte>(ch));
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const auto at = out_.size();
    out_.resize(at + static_cast<size_t>(n));
    std::memcpy(out_.data() + at, s, static_cast<size_t>(n));
    return n;
  }

 private:
  std::vector<std::byte>& out_;
};

/// Appends the encoding of `v` (header + payload) to `out`.
template <class T>
void encode_into(const T& v, std::vector<std::byte>& out) {
  const uint64_t fp = type_fingerprint<T>();
  const size_t at = out.size();
  if constexpr (is_raw_v<T>) {
    out.resize(at + kValueHeaderSize + sizeof(T));
    std::memcpy(out.data() + at, &fp, sizeof fp);
    std::memcpy(out.data() + at + kValueHeaderSize, &v, sizeof(T));
  } else if constexpr (contiguous<T>::value) {
    // insert() copies once; resize()+memcpy would zero-fill first (a second
    // pass over a large object).
    const size_t n = v.size() * sizeof(typename contiguous<T>::element);
    const auto* fpb = reinterpret_cast<const std::byte*>(&fp);
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    out.reserve(at + kValueHeaderSize + n);
    out.insert(out.end(), fpb, fpb + sizeof fp);
    out.insert(out.end(), p, p + n);
  } else {
    out.resize(at + kValueHeaderSize);
    std::memcpy(out.data() + at, &fp, sizeof fp);
    VectorStreamBuf buf(out);
    boost::archive::binary_oarchive ar(buf, boost::archive::no_header);
    ar << v;
  }
}

/// The encoding of `v` as a new buffer.
template <class T>
std::vector<std::byte> encode(const T& v) {
  std::vector<std::byte> out;
  if constexpr (is_raw_v<T>) out.reserve(kValueHeaderSize + sizeof(T));
  encode_into(v, out);
  return out;
}

/// Checks the fingerprint and returns the payload.
template <class T>
std::span<const std::byte> payload_of(std::span<const std::byte> bytes) {
  if (bytes.size() < kValueHeaderSize)
    throw SerializationError("value of type " + type_name<T>() + " truncated: " +
                             std::to_string(bytes.size()) + " bytes, no type header");
  uint64_t fp;
  std::memcpy(&fp, bytes.data(), sizeof fp);
  if (fp != type_fingerprint<T>())
    throw SerializationError("type mismatch: the object was not written as " + type_name<T>());
  return bytes.subspan(kValueHeaderSize);
}

/// Decodes bytes written by encode<T>(). Throws SerializationError.
template <class T>
T decode(std::span<const std::byte> bytes) {
  auto p = payload_of<T>(bytes);
  if constexpr (is_raw_v<T>) {
    if (p.size() != sizeof(T))
      throw SerializationError("value of type " + type_name<T>() + ": expected " +
                               std::to_string(sizeof(T)) + " bytes, got " +
                               std::to_string(p.size()));
    T v;
    std::memcpy(static_cast<void*>(&v), p.data(), sizeof(T));
    return v;
  } else if constexpr (contiguous<T>::value) {
    using E = typename contiguous<T>::element;
    if (p.size() % sizeof(E) != 0)
      throw SerializationError("value of type " + type_name<T>() + ": " + std::to_string(p.size()) +
                               " bytes is not a whole number of " + std::to_string(sizeof(E)) +
                               "-byte elements");
    T v;
    v.resize(p.size() / sizeof(E));
    if (!p.empty()) std::memcpy(v.data(), p.data(), p.size());
    return v;
  } else {
    try {
      SpanStreamBuf buf(p);
      boost::archive::binary_iarchive ar(buf, boost::archive::no_header);
      T v{};
      ar >> v;
      return v;
    } catch (const prism::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw SerializationError("corrupt or truncated value of type " + type_name<T>() + ": " +
                               e.what());
    }
  }
}

}  // namespace detail
}  // namespace prism

namespace boost::serialization {
template <class Archive>
void serialize(Archive&, prism::Unit&, const unsigned int) {}
}  // namespace boost::serialization
