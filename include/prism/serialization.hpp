// How values become bytes.
//
// Every encoded value starts with an 8-byte type fingerprint, so reading an
// object as the wrong type fails with a clear SerializationError. Then:
//  * trivially copyable types: their bytes as they are (zero-copy reads);
//  * std::vector / std::basic_string of trivially copyable elements: the raw
//    element bytes (the length follows from the size);
//  * everything else: Boost.Serialization's binary archive. A user type needs
//    only the usual member `template <class A> void serialize(A& a, unsigned)`.
// Truncated or corrupt bytes raise SerializationError, never undefined behaviour,
// and a corrupt length field never makes the decoder allocate more than the
// payload could hold (CheckedBinaryIArchive).
#pragma once

#include <algorithm>
#include <array>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <cstring>
#include <deque>
#include <list>
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
/// put() hands trivially copyable values larger than this to the runtime as
/// raw bytes (put_contiguous) instead of encoding them into a buffer first.
constexpr size_t kDirectPutMinBytes = 4096;

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

// Reads what boost::archive::binary_iarchive reads (the format is the same),
// but refuses a length the remaining payload cannot hold before anything is
// allocated for it: Boost itself resizes a container to whatever count the
// stream claims, so one corrupt length field could ask for terabytes.
//
// A collection may legitimately claim more elements than bytes remain (its
// elements can encode to nothing, e.g. empty structs), so collection counts
// are refused only above kMaxUncheckedCount; a string's length never exceeds
// the bytes left. Derived from binary_iarchive_impl (not binary_iarchive) so
// that Boost's static dispatch reaches the overrides below.
class CheckedBinaryIArchive
    : public boost::archive::binary_iarchive_impl<CheckedBinaryIArchive, char,
                                                  std::char_traits<char>> {
  using Base =
      boost::archive::binary_iarchive_impl<CheckedBinaryIArchive, char, std::char_traits<char>>;
  using Primitive =
      boost::archive::basic_binary_iprimitive<CheckedBinaryIArchive, char, std::char_traits<char>>;

 public:
  /// Collections claiming at most this many elements are never refused.
  static constexpr uint64_t kMaxUncheckedCount = uint64_t{1} << 16;

  /// `buf` must report the bytes left through in_avail() (SpanStreamBuf does).
  CheckedBinaryIArchive(std::streambuf& buf, unsigned int flags) : Base(buf, flags), buf_(buf) {
    init(flags);
  }

  /// Largest memory a collection whose count is not backed by payload bytes
  /// (count > bytes left: its elements would encode to nothing) may take.
  static constexpr uint64_t kMaxUnbackedBytes = uint64_t{16} << 20;

  /// Refuses a vector (list, deque) of `count` elements of `element_size`
  /// bytes each before Boost resizes to it. The element count check alone cannot bound the
  /// memory: 60000 elements (under kMaxUncheckedCount) of a 64 KiB struct ask
  /// for 4 GB. `raw`: the elements are read as raw bytes (Boost's array
  /// optimization), so the payload must hold all of them; otherwise a count
  /// up to the bytes left is accepted (every element that encodes to
  /// something takes at least one byte, so memory stays within element_size
  /// times the payload), and a larger one only within kMaxUnbackedBytes.
  void check_elements(const char* container, uint64_t count, size_t element_size, bool raw) const {
    const uint64_t left = remaining();
    const bool fits = count <= UINT64_MAX / element_size;
    const uint64_t bytes = fits ? count * element_size : UINT64_MAX;
    if (raw ? bytes <= left : (count <= left || bytes <= kMaxUnbackedBytes)) return;
    throw SerializationError(std::string("corrupt value: a ") + container + " claims " +
                             std::to_string(count) + " " + std::to_string(element_size) +
                             "-byte elements but only " + std::to_string(left) + " bytes remain");
  }

  /// An unordered container's bucket count: a capacity hint, not a number of
  /// elements to read, so it is clamped (by the caller) instead of checked.
  uint64_t load_bucket_count() {
    boost::serialization::collection_size_type n;
    Base::load_override(n);
    return static_cast<std::size_t>(n);
  }

 private:
  friend class boost::archive::detail::interface_iarchive<CheckedBinaryIArchive>;
  friend class boost::archive::basic_binary_iarchive<CheckedBinaryIArchive>;
  friend class boost::archive::load_access;
  friend Primitive;

  uint64_t remaining() const {
    const std::streamsize n = buf_.in_avail();
    return n > 0 ? static_cast<uint64_t>(n) : 0;
  }

  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  void load_override(boost::serialization::collection_size_type& t) {
    Base::load_override(t);
    const uint64_t count = static_cast<std::size_t>(t);
    if (count > kMaxUncheckedCount && count > remaining())
      throw SerializationError("corrupt value: a collection claims " + std::to_string(count) +
                               " elements but only " + std::to_string(remaining()) +
                               " bytes remain");
  }

  using Primitive::load;
  // Boost reads a bool's byte straight into the bool, so any value but 0 or 1
  // is undefined behaviour (found by tests/fuzz: UBSan "load of value 2").
  void load(bool& b) {
    static_assert(sizeof(bool) == 1);
    unsigned char c = 0;
    load_binary(&c, 1);
    if (c > 1) throw SerializationError("corrupt value: a bool holds " + std::to_string(c));
    b = c == 1;
  }
  void load(std::string& s) {
    std::size_t n = 0;
    load(n);
    if (n > remaining())
      throw SerializationError("corrupt value: a string claims " + std::to_string(n) +
                               " bytes but only " + std::to_string(remaining()) + " remain");
    s.resize(n);
    if (n) load_binary(s.data(), n);
  }

  std::streambuf& buf_;
};

// Boost's load of unordered containers, for CheckedBinaryIArchive (found by
// argument-dependent lookup, preferred as more specialized): the element
// count is checked as above; the bucket count is clamped rather than refused,
// as a container reserved large but holding few elements legitimately
// claims more buckets than the payload has bytes.
template <class Container, class InputFunction>
void load_unordered_checked(CheckedBinaryIArchive& ar, Container& s) {
  boost::serialization::collection_size_type count;
  ar >> BOOST_SERIALIZATION_NVP(count);
  const uint64_t buckets = ar.load_bucket_count();
  boost::serialization::item_version_type item_version(0);
  if (boost::serialization::library_version_type(3) < ar.get_library_version())
    ar >> BOOST_SERIALIZATION_NVP(item_version);
  s.clear();
  s.rehash(static_cast<std::size_t>(
      std::min<uint64_t>(buckets, std::max<uint64_t>(static_cast<std::size_t>(count),
                                                     CheckedBinaryIArchive::kMaxUncheckedCount))));
  InputFunction input;
  for (std::size_t n = count; n-- > 0;) input(ar, s, item_version);
}

template <class K, class V, class H, class E, class A>
void load(CheckedBinaryIArchive& ar, std::unordered_map<K, V, H, E, A>& t, const unsigned int) {
  using C = std::unordered_map<K, V, H, E, A>;
  load_unordered_checked<
      C, boost::serialization::stl::archive_input_unordered_map<CheckedBinaryIArchive, C>>(ar, t);
}
template <class K, class V, class H, class E, class A>
void load(CheckedBinaryIArchive& ar, std::unordered_multimap<K, V, H, E, A>& t,
          const unsigned int) {
  using C = std::unordered_multimap<K, V, H, E, A>;
  load_unordered_checked<
      C, boost::serialization::stl::archive_input_unordered_multimap<CheckedBinaryIArchive, C>>(ar,
                                                                                                t);
}
template <class K, class H, class E, class A>
void load(CheckedBinaryIArchive& ar, std::unordered_set<K, H, E, A>& t, const unsigned int) {
  using C = std::unordered_set<K, H, E, A>;
  load_unordered_checked<
      C, boost::serialization::stl::archive_input_unordered_set<CheckedBinaryIArchive, C>>(ar, t);
}
template <class K, class H, class E, class A>
void load(CheckedBinaryIArchive& ar, std::unordered_multiset<K, H, E, A>& t, const unsigned int) {
  using C = std::unordered_multiset<K, H, E, A>;
  load_unordered_checked<
      C, boost::serialization::stl::archive_input_unordered_multiset<CheckedBinaryIArchive, C>>(ar,
                                                                                                t);
}

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
      CheckedBinaryIArchive ar(buf, boost::archive::no_header);
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

// Like binary_iarchive: user types exported for pointer serialization are
// registered with this archive too, and arrays of bitwise types load in one read.
BOOST_SERIALIZATION_REGISTER_ARCHIVE(prism::detail::CheckedBinaryIArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(prism::detail::CheckedBinaryIArchive)

namespace prism::detail {
// Boost's load of std::vector (boost/serialization/vector.hpp, both its
// array-optimized and element-wise paths), for CheckedBinaryIArchive, with
// check_elements() between reading the count and resizing to it. Defined after
// BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION: it asks whether the
// optimization applies. vector<bool> keeps Boost's own load (its elements
// are read one by one, one byte each, so the element count check suffices).
template <class U, class A>
requires(!std::is_same_v<U, bool>) void load(CheckedBinaryIArchive& ar, std::vector<U, A>& t,
                                             const unsigned int) {
  using boost::serialization::collection_size_type;
  using boost::serialization::item_version_type;
  using boost::serialization::library_version_type;
  constexpr bool raw = boost::serialization::use_array_optimization<
      CheckedBinaryIArchive>::template apply<std::remove_const_t<U>>::type::value;
  const library_version_type library_version(ar.get_library_version());
  collection_size_type count;
  ar >> BOOST_SERIALIZATION_NVP(count);
  ar.check_elements("vector", static_cast<std::size_t>(count), sizeof(U), raw);
  if constexpr (raw) {
    t.resize(count);
    unsigned int item_version = 0;
    if (BOOST_SERIALIZATION_VECTOR_VERSIONED(library_version))
      ar >> BOOST_SERIALIZATION_NVP(item_version);
    if (!t.empty())
      ar >> boost::serialization::make_array<U, collection_size_type>(t.data(), count);
  } else {
    item_version_type item_version(0);
    if (library_version_type(3) < library_version) ar >> BOOST_SERIALIZATION_NVP(item_version);
    t.reserve(count);
    boost::serialization::stl::collection_load_impl(ar, t, count, item_version);
  }
}

// Boost's loads of std::list and std::deque resize to the claimed count too
// (collection_load_impl): checked the same way, for users who include
// boost/serialization/list.hpp or deque.hpp.
template <class C>
void load_sequence_checked(CheckedBinaryIArchive& ar, C& t, const char* container) {
  using boost::serialization::collection_size_type;
  using boost::serialization::item_version_type;
  using boost::serialization::library_version_type;
  collection_size_type count;
  ar >> BOOST_SERIALIZATION_NVP(count);
  ar.check_elements(container, static_cast<std::size_t>(count), sizeof(typename C::value_type),
                    false);
  item_version_type item_version(0);
  if (library_version_type(3) < ar.get_library_version())
    ar >> BOOST_SERIALIZATION_NVP(item_version);
  boost::serialization::stl::collection_load_impl(ar, t, count, item_version);
}
template <class U, class A>
void load(CheckedBinaryIArchive& ar, std::list<U, A>& t, const unsigned int) {
  load_sequence_checked(ar, t, "list");
}
template <class U, class A>
void load(CheckedBinaryIArchive& ar, std::deque<U, A>& t, const unsigned int) {
  load_sequence_checked(ar, t, "deque");
}
}  // namespace prism::detail

namespace boost::serialization {
template <class Archive>
void serialize(Archive&, prism::Unit&, const unsigned int) {}
}  // namespace boost::serialization
