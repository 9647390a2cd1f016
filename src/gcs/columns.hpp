// Columns: a record lists its fields once, in `static constexpr auto
// columns()`, a tuple of column(name, &Record::field) in wire order. From that
// list follow its binary codec (put_field / get_field, below), its HDF5
// snapshot datasets (snapshot.cpp) and prism-gcs-dump's output; a field's type
// says how (the field codecs below). Decoders validate everything (enum
// ranges, counts against the bytes left, a column's own check), so a corrupt
// buffer fails the Reader, never crashes or allocates gigabytes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <ranges>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/codec.hpp"
#include "common/ids.hpp"

namespace prism::gcs {

/// One field of a record: its name (snapshot dataset, dump label) and where it
/// lives. `snapshot = false`: wire only (not stored in snapshots); `valid`:
/// an extra check a decoded value must pass.
template <class R, class T>
struct Column {
  using Type = T;
  const char* name;
  T R::*member;
  bool snapshot = true;
  bool (*valid)(const T&) = nullptr;
};
template <class R, class T>
constexpr Column<R, T> column(const char* name, T R::*member, bool (*valid)(const T&) = nullptr) {
  return {name, member, true, valid};
}
/// A field that travels on the wire but is not a snapshot column.
template <class R, class T>
constexpr Column<R, T> wire_only(const char* name, T R::*member,
                                 bool (*valid)(const T&) = nullptr) {
  return {name, member, false, valid};
}

/// A record (or message) type that lists its columns.
template <class R>
concept Described = requires {
  R::columns();
};

/// Calls f(column) for each column of record type R, in order.
template <Described R, class F>
void for_each_column(F&& f) {
  std::apply([&](const auto&... c) { (f(c), ...); }, R::columns());
}

/// The names of an enum's values (0, 1, ...), for validation, snapshots and
/// dumps: specialize with `static constexpr std::array names{...}`.
template <class E>
struct EnumNames;

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires {
  EnumNames<E>::names;
};

template <NamedEnum E>
const char* enum_name(E e) noexcept {
  const auto& n = EnumNames<E>::names;
  const auto i = static_cast<size_t>(e);
  return i < n.size() ? n[i] : "unknown";
}

// ---- field codecs -----------------------------------------------------------
// put_field / get_field per field type; get_field latches reader.fail() on
// invalid content.

/// The fewest bytes one T takes on the wire (so a decoded count can be
/// checked against the bytes left): specialize for composite types.
template <class T>
struct WireMin {
  static constexpr size_t value = std::is_arithmetic_v<T> || std::is_enum_v<T> ? sizeof(T) : 4;
};
template <>
struct WireMin<ObjectId> {
  static constexpr size_t value = 16;
};
template <class A, class B>
struct WireMin<std::pair<A, B>> {
  static constexpr size_t value = WireMin<A>::value + WireMin<B>::value;
};
template <Described R>
struct WireMin<R> {
  static constexpr size_t value = std::apply(
      [](const auto&... c) {
        return (WireMin<typename std::remove_cvref_t<decltype(c)>::Type>::value + ... + 0);
      },
      R::columns());
};

namespace detail {
// A count read from the wire is trusted only if that many elements of at
// least `min_size` bytes each can still follow.
inline uint32_t get_count(Reader& r, size_t min_size) {
  const auto n = r.get<uint32_t>();
  if (!r.ok() || static_cast<uint64_t>(n) * min_size > r.rest().size()) {
    r.fail();
    return 0;
  }
  return n;
}
}  // namespace detail

template <class T>
requires std::is_arithmetic_v<T> &&(!std::is_same_v<T, bool>)void put_field(Writer& w, const T& v) {
  w.put<T>(v);
}
template <class T>
requires std::is_arithmetic_v<T> &&(!std::is_same_v<T, bool>)void get_field(Reader& r, T& v) {
  v = r.get<T>();
}

inline void put_field(Writer& w, const bool& v) {
  w.put<uint8_t>(v ? 1 : 0);
}
inline void get_field(Reader& r, bool& v) {
  v = r.get_flag();
}

template <NamedEnum E>
void put_field(Writer& w, const E& v) {
  w.put<uint8_t>(static_cast<uint8_t>(v));
}
template <NamedEnum E>
void get_field(Reader& r, E& v) {
  const auto b = r.get<uint8_t>();
  if (b >= EnumNames<E>::names.size()) r.fail();
  v = static_cast<E>(b);
}

inline void put_field(Writer& w, const std::string& v) {
  w.put_string(v);
}
inline void get_field(Reader& r, std::string& v) {
  v = r.get_string();
}

/// Raw bytes (an encoded key or record): length and bytes.
inline void put_field(Writer& w, const std::vector<std::byte>& v) {
  w.put_bytes(v);
}
inline void get_field(Reader& r, std::vector<std::byte>& v) {
  auto s = r.get_bytes();
  v.assign(s.begin(), s.end());
}

inline void put_field(Writer& w, const ObjectId& id) {
  w.put<uint32_t>(id.owner_rank);
  w.put<uint32_t>(id.index);
  w.put<uint64_t>(id.seq);
}
inline void get_field(Reader& r, ObjectId& id) {
  id.owner_rank = r.get<uint32_t>();
  id.index = r.get<uint32_t>();
  id.seq = r.get<uint64_t>();
}

// (Declared ahead: pairs and containers hold each other.)
template <std::ranges::sized_range C>
void put_field(Writer& w, const C& c);
template <class C>
requires requires {
  typename C::key_type;
}
void get_field(Reader& r, C& c);

template <class A, class B>
void put_field(Writer& w, const std::pair<A, B>& p) {
  put_field(w, p.first);
  put_field(w, p.second);
}
template <class A, class B>
void get_field(Reader& r, std::pair<A, B>& p) {
  get_field(r, p.first);
  get_field(r, p.second);
}

/// Lists, sets and maps: a count, then each element (a map's: key, value).
/// A decoded set or map that names a key twice fails the reader.
template <std::ranges::sized_range C>
void put_field(Writer& w, const C& c) {
  w.put<uint32_t>(static_cast<uint32_t>(std::ranges::size(c)));
  for (const auto& x : c) put_field(w, x);
}
template <class T>
void get_field(Reader& r, std::vector<T>& v) {
  const uint32_t n = detail::get_count(r, WireMin<T>::value);
  v.assign(n, T{});
  for (auto& x : v) get_field(r, x);
}
template <class C>
struct Element {
  using type = typename C::value_type;  // a set's
};
template <class K, class V, class... R>
struct Element<std::map<K, V, R...>> {
  using type = std::pair<K, V>;
};
template <class C>
requires requires {
  typename C::key_type;
}
void get_field(Reader& r, C& c) {
  c.clear();
  using E = typename Element<C>::type;
  const uint32_t n = detail::get_count(r, WireMin<E>::value);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    E x{};
    get_field(r, x);
    if (r.ok() && !c.insert(std::move(x)).second) r.fail();
  }
}

/// A described record or message: every column in order, each decoded one
/// checked by its `valid`.
template <Described R>
void put_field(Writer& w, const R& v) {
  for_each_column<R>([&](const auto& c) { put_field(w, v.*c.member); });
}
template <Described R>
void get_field(Reader& r, R& v) {
  for_each_column<R>([&](const auto& c) {
    get_field(r, v.*c.member);
    if (c.valid && r.ok() && !c.valid(v.*c.member)) r.fail();
  });
}

}  // namespace prism::gcs
