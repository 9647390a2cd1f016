// Columns: how the GCS describes a table's record once, field by field.
//
// A record type lists its fields in `static constexpr auto columns()`, a
// tuple of column(name, &Record::field) in wire order. From that one list
// follow its binary codec (put_record / get_record, below), its HDF5
// snapshot datasets (snapshot.cpp) and prism-gcs-dump's output. A field's
// type says how it travels (field codecs below: integers, enums, strings,
// ObjectIds, vectors of them, resource maps) and how it is stored and
// printed. Adding a column is one line in columns() (plus its test); a
// snapshot written before it existed still loads (the column reads as its
// default).
//
// Decoders validate everything (enum ranges, counts against the bytes left,
// a column's own check), so a corrupt buffer fails the Reader, never
// crashes or allocates gigabytes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
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

/// Calls f(column) for each column of record type R, in order.
template <class R, class F>
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
  const auto b = r.get<uint8_t>();
  if (b > 1) r.fail();
  v = b == 1;
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

template <class T>
void put_field(Writer& w, const std::vector<T>& v) {
  w.put<uint32_t>(static_cast<uint32_t>(v.size()));
  for (const auto& x : v) put_field(w, x);
}
template <class T>
void get_field(Reader& r, std::vector<T>& v) {
  const uint32_t n = detail::get_count(r, WireMin<T>::value);
  v.assign(n, T{});
  for (auto& x : v) get_field(r, x);
}

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

/// Resources by name ("CPU", "GPU", custom): a name appears once.
inline void put_field(Writer& w, const std::map<std::string, double>& m) {
  w.put<uint32_t>(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    w.put_string(k);
    w.put<double>(v);
  }
}
inline void get_field(Reader& r, std::map<std::string, double>& m) {
  m.clear();
  const uint32_t n = detail::get_count(r, 4 + 8);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.get_string();
    const double v = r.get<double>();
    if (!m.emplace(std::move(k), v).second) r.fail();  // duplicate name
  }
}

// ---- records ------------------------------------------------------------------

/// Appends every column of `v`.
template <class R>
requires requires {
  R::columns();
}
void put_record(Writer& w, const R& v) {
  for_each_column<R>([&](const auto& c) { put_field(w, v.*c.member); });
}

/// Reads every column of `v`, checking each one's `valid`.
template <class R>
requires requires {
  R::columns();
}
void get_record(Reader& r, R& v) {
  for_each_column<R>([&](const auto& c) {
    get_field(r, v.*c.member);
    if (c.valid && r.ok() && !c.valid(v.*c.member)) r.fail();
  });
}

}  // namespace prism::gcs
