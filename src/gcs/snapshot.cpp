#include "gcs/snapshot.hpp"

// Parallel HDF5's header pulls in mpi.h; nothing here calls MPI, and the
// default (sec2) file driver needs no MPI_Init.
#include <hdf5.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <memory>
#include <tuple>

namespace prism::gcs {
namespace {

constexpr const char* kFormat = "prism-gcs-snapshot";
constexpr int32_t kVersion = 1;

// ---- small RAII layer over the HDF5 C API -------------------------------------

/// Turns HDF5's automatic error-stack printing off while alive: failures are
/// reported through Status, never printed.
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  Hid& operator=(Hid&&) = delete;
  hid_t get() const noexcept { return id_; }
  bool ok() const noexcept { return id_ >= 0; }

 private:
  hid_t id_;
  Closer close_;
};

Status h5_error(const std::string& what) {
  return {Errc::kInternal, "HDF5: " + what};
}
Status bad_file(const std::string& what) {
  return {Errc::kMalformedMessage, "GCS snapshot: " + what};
}

Hid object_id_type() {
  Hid t(H5Tcreate(H5T_COMPOUND, sizeof(ObjectId)), H5Tclose);
  H5Tinsert(t.get(), "owner_rank", HOFFSET(ObjectId, owner_rank), H5T_NATIVE_UINT32);
  H5Tinsert(t.get(), "index", HOFFSET(ObjectId, index), H5T_NATIVE_UINT32);
  H5Tinsert(t.get(), "seq", HOFFSET(ObjectId, seq), H5T_NATIVE_UINT64);
  return t;
}

Hid string_type() {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

template <class T>
Status write_array(hid_t loc, const char* name, hid_t type, const std::vector<T>& v) {
  const hsize_t dims[1] = {v.size()};
  Hid space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  Hid ds(H5Dcreate2(loc, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return h5_error(std::string("cannot create dataset ") + name);
  if (!v.empty() && H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    return h5_error(std::string("cannot write dataset ") + name);
  return Status::ok();
}

Status write_strings(hid_t loc, const char* name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  ptrs.reserve(v.size());
  for (const auto& s : v) ptrs.push_back(s.c_str());
  Hid t = string_type();
  return write_array(loc, name, t.get(), ptrs);
}

template <class T>
Status read_array(hid_t loc, const char* name, hid_t type, std::vector<T>& out) {
  Hid ds(H5Dopen2(loc, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return bad_file(std::string("missing dataset ") + name);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    return bad_file(std::string("dataset ") + name + " is not one-dimensional");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  out.assign(static_cast<size_t>(n), T{});
  if (n && H5Dread(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    return bad_file(std::string("cannot read dataset ") + name);
  return Status::ok();
}

Status read_strings(hid_t loc, const char* name, std::vector<std::string>& out) {
  Hid t = string_type();
  std::vector<char*> buf;  // HDF5 allocates the strings
  PRISM_RETURN_IF_ERROR(read_array(loc, name, t.get(), buf));
  out.assign(buf.size(), {});
  for (size_t i = 0; i < buf.size(); ++i)
    if (buf[i]) out[i] = buf[i];
  const hsize_t dims[1] = {buf.size()};
  Hid space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  if (!buf.empty()) H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, buf.data());
  return Status::ok();
}

Status write_int_attr(hid_t loc, const char* name, int32_t v) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid a(H5Acreate2(loc, name, H5T_NATIVE_INT32, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_INT32, &v) < 0)
    return h5_error(std::string("cannot write attribute ") + name);
  return Status::ok();
}

Status write_string_attr(hid_t loc, const char* name, const std::string& v) {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), std::max<size_t>(v.size(), 1));
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid a(H5Acreate2(loc, name, t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::string padded = v.empty() ? std::string(1, '\0') : v;
  if (!a.ok() || H5Awrite(a.get(), t.get(), padded.data()) < 0)
    return h5_error(std::string("cannot write attribute ") + name);
  return Status::ok();
}

Status read_int_attr(hid_t loc, const char* name, int32_t& v) {
  Hid a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  if (!a.ok() || H5Aread(a.get(), H5T_NATIVE_INT32, &v) < 0)
    return bad_file(std::string("missing attribute ") + name);
  return Status::ok();
}

Status read_string_attr(hid_t loc, const char* name, std::string& v) {
  Hid a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  if (!a.ok()) return bad_file(std::string("missing attribute ") + name);
  Hid ft(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(ft.get()) != H5T_STRING || H5Tis_variable_str(ft.get()) > 0)
    return bad_file(std::string("attribute ") + name + " is not a fixed-length string");
  const size_t n = H5Tget_size(ft.get());
  if (n == 0 || n > 4096) return bad_file(std::string("attribute ") + name + " has a bad size");
  std::string buf(n, '\0');
  Hid mt(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mt.get(), n);
  if (H5Aread(a.get(), mt.get(), buf.data()) < 0)
    return bad_file(std::string("cannot read attribute ") + name);
  v = buf.substr(0, buf.find('\0'));
  return Status::ok();
}

Hid make_group(hid_t file, const char* name) {
  return Hid(H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
}

// Flattened variable-length lists: offsets[i]..offsets[i+1] index the values
// of row i. Checked on read so a corrupt file cannot index out of range.
Status check_offsets(const std::vector<uint64_t>& off, size_t rows, size_t values,
                     const char* what) {
  if (off.size() != rows + 1 || off.front() != 0 || off.back() != values)
    return bad_file(std::string(what) + " offsets do not match");
  for (size_t i = 1; i < off.size(); ++i)
    if (off[i] < off[i - 1]) return bad_file(std::string(what) + " offsets decrease");
  return Status::ok();
}

template <class P>
void sort_rows(std::vector<P>& v) {
  std::sort(v.begin(), v.end(), [](const P& a, const P& b) { return a.first < b.first; });
}

// A snapshot of a GCS with layout `l`, without rows yet.
SnapshotData empty_snapshot(const GcsLayout& l) {
  return {
      .shards = l.shards, .replicas = l.replicas, .gcs_ranks = {l.ranks.begin(), l.ranks.end()}};
}

void sort_all(SnapshotData& d) {
  for_each_table([&](auto tag) { sort_rows(rows_of<decltype(tag)>(d)); });
}

}  // namespace

// ---- collecting -----------------------------------------------------------------

SnapshotData collect_snapshot(std::span<const GcsServer* const> servers) {
  if (servers.empty()) return {};
  const GcsLayout& l = servers.front()->layout();
  SnapshotData d = empty_snapshot(l);
  for (int s = 0; s < l.shards; ++s) {
    const GcsServer* best = nullptr;
    ShardStatus best_st;
    bool best_tail = false;
    for (const GcsServer* srv : servers) {
      if (!srv) continue;
      ShardStatus st = srv->shard_status(s);
      if (!st.installed) continue;
      const bool tail = st.config.tail() == srv->rank();
      if (!best || (tail && !best_tail) || (tail == best_tail && st.applied > best_st.applied)) {
        best = srv;
        best_st = st;
        best_tail = tail;
      }
    }
    if (!best) continue;
    const auto& members = best_st.config.members;
    d.shard_info.push_back({s,
                            best->rank(),
                            best_st.config.epoch,
                            best_st.applied,
                            best_tail ? best_st.applied : best_st.committed,
                            {members.begin(), members.end()}});
    const ShardStore* st = best->store(s);
    for_each_table([&](auto tag) {
      using Tag = decltype(tag);
      st->table<Tag>().for_each(
          [&](const auto& k, const auto& v) { rows_of<Tag>(d).emplace_back(k, v); });
    });
  }
  sort_all(d);
  return d;
}

SnapshotData collect_snapshot(const GcsServer& server) {
  const GcsServer* one[] = {&server};
  return collect_snapshot(std::span<const GcsServer* const>(one));
}

void fetch_snapshot(GcsClient& client, std::function<void(Expected<SnapshotData>)> done) {
  struct Join {
    SnapshotData data;
    int left = static_cast<int>(std::tuple_size_v<AllTables>);
    Status error;
    std::function<void(Expected<SnapshotData>)> done;
    void finish_one(Status s) {
      if (!s && error.is_ok()) error = std::move(s);
      if (--left > 0) return;
      if (!error.is_ok()) return done(error);
      sort_all(data);
      done(std::move(data));
    }
  };
  auto j = std::make_shared<Join>();
  j->done = std::move(done);
  j->data = empty_snapshot(client.layout());
  for_each_table([&](auto tag) {
    using Tag = decltype(tag);
    client.scan<Tag>([j](auto rows) {
      if (!rows) return j->finish_one(rows.status());
      rows_of<Tag>(j->data) = std::move(*rows);
      j->finish_one(Status::ok());
    });
  });
}

Expected<SnapshotData> merge_snapshots(std::vector<SnapshotData> parts) {
  if (parts.empty()) return Status{Errc::kInvalidArgument, "no snapshot to merge"};
  const SnapshotData& first = parts.front();
  for (const auto& p : parts)
    if (p.shards != first.shards || p.replicas != first.replicas || p.gcs_ranks != first.gcs_ranks)
      return Status{Errc::kInvalidArgument, "snapshots of different GCS layouts"};
  const GcsLayout l{{first.gcs_ranks.begin(), first.gcs_ranks.end()}, first.shards, first.replicas};
  // Choose a source part per shard. A part without shard_info was fetched
  // from the tails and is complete: it wins every shard.
  std::vector<int> source(static_cast<size_t>(std::max(l.shards, 0)), -1);
  // Preference: most committed writes, newest epoch, the tail's own copy.
  using Rank = std::tuple<uint64_t, uint64_t, bool>;
  std::vector<Rank> rank_of(source.size(), Rank{0, 0, false});
  std::vector<SnapshotShard> infos(source.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].shard_info.empty()) {
      for (auto& s : source) s = static_cast<int>(i);
      for (auto& r : rank_of) r = Rank{std::numeric_limits<uint64_t>::max(), 0, true};
      continue;
    }
    for (const auto& info : parts[i].shard_info) {
      if (info.shard < 0 || info.shard >= l.shards) return bad_file("shard out of range");
      const auto s = static_cast<size_t>(info.shard);
      const bool tail = !info.chain.empty() && info.chain.back() == info.source_rank;
      const Rank key{info.committed, info.epoch, tail};
      if (source[s] < 0 || key > rank_of[s]) {
        source[s] = static_cast<int>(i);
        rank_of[s] = key;
        infos[s] = info;
      }
    }
  }
  SnapshotData out = empty_snapshot(l);
  for (size_t s = 0; s < source.size(); ++s)
    if (source[s] >= 0 && !parts[static_cast<size_t>(source[s])].shard_info.empty())
      out.shard_info.push_back(infos[s]);
  for_each_table([&](auto tag) {
    using Tag = decltype(tag);
    for (size_t i = 0; i < parts.size(); ++i)
      for (auto& row : rows_of<Tag>(parts[i])) {
        const int s = l.shard_of(Tag::id, encode_key<Tag>(row.first));
        if (source[static_cast<size_t>(s)] == static_cast<int>(i)) rows_of<Tag>(out).push_back(row);
      }
  });
  sort_all(out);
  return out;
}

// ---- writing ----------------------------------------------------------------------

namespace {

// ---- a table's columns as datasets -----------------------------------------------
// One dataset per column, named as the column, a value per row; lists are
// flattened (`<name>` values, `<name minus 's'>_offsets` where row i's start),
// resource maps are `<name>_offsets`, `<name>_names` and `<name>_values`, and
// an enum's value names are the group's attribute `<name>_names`. A column a
// file lacks (written before the column existed) reads as its default.

// The HDF5 type of a fixed-size value (`oid`: ObjectId's compound type).
template <class T>
hid_t h5_type(hid_t oid) {
  if constexpr (std::is_same_v<T, int32_t>) return H5T_NATIVE_INT32;
  if constexpr (std::is_same_v<T, uint32_t>) return H5T_NATIVE_UINT32;
  if constexpr (std::is_same_v<T, uint64_t>) return H5T_NATIVE_UINT64;
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
  return oid;
}

// A column's values as datasets: fixed-size values as one array; the
// specializations below for the rest.
template <class T>
struct H5Column {
  static Status write(hid_t g, const char* name, const std::vector<T>& v, hid_t oid) {
    static_assert(std::is_arithmetic_v<T> || std::is_same_v<T, ObjectId>);
    return write_array(g, name, h5_type<T>(oid), v);
  }
  static Status read(hid_t g, const char* name, std::vector<T>& v, hid_t oid) {
    return read_array(g, name, h5_type<T>(oid), v);
  }
};
template <>
struct H5Column<std::string> {
  static Status write(hid_t g, const char* name, const std::vector<std::string>& v, hid_t) {
    return write_strings(g, name, v);
  }
  static Status read(hid_t g, const char* name, std::vector<std::string>& v, hid_t) {
    return read_strings(g, name, v);
  }
};
template <class T>
requires std::is_same_v<T, bool> || NamedEnum<T>
struct H5Column<T> {  // stored as uint8; an enum's value names are an attribute
  static Status write(hid_t g, const char* name, const std::vector<T>& v, hid_t) {
    std::vector<uint8_t> b;
    for (T x : v) b.push_back(static_cast<uint8_t>(x));
    PRISM_RETURN_IF_ERROR(write_array(g, name, H5T_NATIVE_UINT8, b));
    if constexpr (NamedEnum<T>) {
      std::string names;
      for (size_t i = 0; i < EnumNames<T>::names.size(); ++i)
        names += (i ? " " : "") + std::to_string(i) + "=" + EnumNames<T>::names[i];
      return write_string_attr(g, (std::string(name) + "_names").c_str(), names);
    }
    return Status::ok();
  }
  static Status read(hid_t g, const char* name, std::vector<T>& v, hid_t) {
    std::vector<uint8_t> b;
    PRISM_RETURN_IF_ERROR(read_array(g, name, H5T_NATIVE_UINT8, b));
    v.clear();
    for (uint8_t x : b) {
      if constexpr (NamedEnum<T>)
        if (x >= EnumNames<T>::names.size()) return bad_file(std::string("bad ") + name);
      v.push_back(static_cast<T>(x));
    }
    return Status::ok();
  }
};
template <class T>
struct H5Column<std::vector<T>> {  // flattened, with offsets
  static std::string offsets(const char* name) {
    std::string s(name);
    if (!s.empty() && s.back() == 's') s.pop_back();
    return s + "_offsets";
  }
  static Status write(hid_t g, const char* name, const std::vector<std::vector<T>>& v, hid_t oid) {
    std::vector<uint64_t> off{0};
    std::vector<T> flat;
    for (const auto& row : v) {
      flat.insert(flat.end(), row.begin(), row.end());
      off.push_back(flat.size());
    }
    PRISM_RETURN_IF_ERROR(write_array(g, offsets(name).c_str(), H5T_NATIVE_UINT64, off));
    return H5Column<T>::write(g, name, flat, oid);
  }
  static Status read(hid_t g, const char* name, std::vector<std::vector<T>>& v, hid_t oid) {
    std::vector<uint64_t> off;
    std::vector<T> flat;
    PRISM_RETURN_IF_ERROR(read_array(g, offsets(name).c_str(), H5T_NATIVE_UINT64, off));
    PRISM_RETURN_IF_ERROR(H5Column<T>::read(g, name, flat, oid));
    if (off.empty()) return bad_file(std::string(name) + " offsets missing");
    PRISM_RETURN_IF_ERROR(check_offsets(off, off.size() - 1, flat.size(), name));
    v.clear();
    for (size_t i = 0; i + 1 < off.size(); ++i)
      v.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(off[i]),
                     flat.begin() + static_cast<std::ptrdiff_t>(off[i + 1]));
    return Status::ok();
  }
};
template <>
struct H5Column<std::map<std::string, double>> {  // offsets, names, values
  using Map = std::map<std::string, double>;
  static Status write(hid_t g, const char* name, const std::vector<Map>& v, hid_t) {
    std::vector<uint64_t> off{0};
    std::vector<std::string> names;
    std::vector<double> values;
    for (const auto& m : v) {
      for (const auto& [k, x] : m) {
        names.push_back(k);
        values.push_back(x);
      }
      off.push_back(names.size());
    }
    const std::string p(name);
    PRISM_RETURN_IF_ERROR(write_array(g, (p + "_offsets").c_str(), H5T_NATIVE_UINT64, off));
    PRISM_RETURN_IF_ERROR(write_strings(g, (p + "_names").c_str(), names));
    return write_array(g, (p + "_values").c_str(), H5T_NATIVE_DOUBLE, values);
  }
  static Status read(hid_t g, const char* name, std::vector<Map>& v, hid_t) {
    const std::string p(name);
    std::vector<uint64_t> off;
    std::vector<std::string> names;
    std::vector<double> values;
    PRISM_RETURN_IF_ERROR(read_array(g, (p + "_offsets").c_str(), H5T_NATIVE_UINT64, off));
    PRISM_RETURN_IF_ERROR(read_strings(g, (p + "_names").c_str(), names));
    PRISM_RETURN_IF_ERROR(read_array(g, (p + "_values").c_str(), H5T_NATIVE_DOUBLE, values));
    if (off.empty() || names.size() != values.size()) return bad_file(p + " columns differ");
    PRISM_RETURN_IF_ERROR(check_offsets(off, off.size() - 1, names.size(), name));
    v.assign(off.size() - 1, Map{});
    for (size_t i = 0; i + 1 < off.size(); ++i)
      for (uint64_t k = off[i]; k < off[i + 1]; ++k) v[i][names[k]] = values[k];
    return Status::ok();
  }
};

// A column's first dataset: present in files written since the column exists.
template <class T>
std::string first_dataset(const char* name) {
  if constexpr (std::is_same_v<T, std::map<std::string, double>>)
    return std::string(name) + "_offsets";
  else
    return name;
}

// A group's rows: a table's are (key, record) pairs, the "shards" group's
// are SnapshotShards, whose "shard" column gives their count.
template <class Row>
constexpr bool kKeyed = requires(Row r) {
  r.second;
};
template <class Row>
auto& record_of(Row& row) {
  if constexpr (kKeyed<std::remove_const_t<Row>>)
    return row.second;
  else
    return row;
}

// Group `name`: the key column `key` (a table's), then a dataset per snapshot
// column of the rows' records.
template <class Row>
Status write_group(hid_t file, const char* name, const char* key, const std::vector<Row>& rows,
                   hid_t oid) {
  Hid g = make_group(file, name);
  if (!g.ok()) return h5_error(std::string("cannot create group ") + name);
  Status st;
  if constexpr (kKeyed<Row>) {
    std::vector<typename Row::first_type> keys;
    for (const auto& row : rows) keys.push_back(row.first);
    st = H5Column<typename Row::first_type>::write(g.get(), key, keys, oid);
  }
  using Record = std::remove_cvref_t<decltype(record_of(std::declval<Row&>()))>;
  for_each_column<Record>([&](const auto& c) {
    using T = typename std::remove_cvref_t<decltype(c)>::Type;
    if (!st || !c.snapshot) return;
    std::vector<T> col;
    for (const auto& row : rows) col.push_back(record_of(row).*c.member);
    st = H5Column<T>::write(g.get(), c.name, col, oid);
  });
  return st;
}

// Reads what write_group wrote. A column the file lacks (written before the
// column existed) reads as its default, and a table's group the file lacks
// (written before the table existed) as no rows.
template <class Row>
Status read_group(hid_t file, const char* name, const char* key, std::vector<Row>& rows,
                  hid_t oid) {
  rows.clear();
  if (kKeyed<Row> && H5Lexists(file, name, H5P_DEFAULT) == 0) return Status::ok();
  Hid g(H5Gopen2(file, name, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file(std::string("missing group ") + name);
  using Key = typename decltype([] {
    if constexpr (kKeyed<Row>)
      return std::type_identity<typename Row::first_type>{};
    else
      return std::type_identity<int32_t>{};
  }())::type;
  std::vector<Key> keys;
  PRISM_RETURN_IF_ERROR(H5Column<Key>::read(g.get(), key, keys, oid));
  rows.assign(keys.size(), {});
  if constexpr (kKeyed<Row>)
    for (size_t i = 0; i < keys.size(); ++i) rows[i].first = keys[i];
  using Record = std::remove_cvref_t<decltype(record_of(rows.front()))>;
  Status st;
  for_each_column<Record>([&](const auto& c) {
    using T = typename std::remove_cvref_t<decltype(c)>::Type;
    if (!st || !c.snapshot) return;
    if (H5Lexists(g.get(), first_dataset<T>(c.name).c_str(), H5P_DEFAULT) <= 0) return;
    std::vector<T> col;
    st = H5Column<T>::read(g.get(), c.name, col, oid);
    if (st && col.size() != rows.size())
      st = bad_file(std::string(name) + " column " + c.name + " differs in length");
    for (size_t i = 0; st && i < rows.size(); ++i) {
      if (c.valid && !c.valid(col[i]))
        st = bad_file(std::string("bad ") + name + " " + c.name);
      else
        record_of(rows[i]).*c.member = std::move(col[i]);
    }
  });
  return st;
}

}  // namespace

Status write_snapshot(const SnapshotData& d, const std::string& path) {
  QuietErrors quiet;
  Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return h5_error("cannot create " + path);
  const hid_t f = file.get();
  PRISM_RETURN_IF_ERROR(write_string_attr(f, "format", kFormat));
  PRISM_RETURN_IF_ERROR(write_int_attr(f, "version", kVersion));
  PRISM_RETURN_IF_ERROR(write_int_attr(f, "shards", d.shards));
  PRISM_RETURN_IF_ERROR(write_int_attr(f, "replicas", d.replicas));
  PRISM_RETURN_IF_ERROR(write_array(f, "gcs_ranks", H5T_NATIVE_INT32, d.gcs_ranks));
  Hid oid = object_id_type();
  Status st = write_group(f, "shards", nullptr, d.shard_info, oid.get());
  for_each_table([&](auto tag) {
    using Tag = decltype(tag);
    if (st) st = write_group(f, Tag::name, Tag::key_column, rows_of<Tag>(d), oid.get());
  });
  PRISM_RETURN_IF_ERROR(st);
  if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) return h5_error("cannot flush " + path);
  return Status::ok();
}

Status write_snapshot(const GcsServer& server, const std::string& path) {
  return write_snapshot(collect_snapshot(server), path);
}

Status write_snapshot(std::span<const GcsServer* const> servers, const std::string& path) {
  return write_snapshot(collect_snapshot(servers), path);
}

Expected<SnapshotData> read_snapshot(const std::string& path) {
  QuietErrors quiet;
  if (H5Fis_hdf5(path.c_str()) <= 0) return Status{Errc::kNotFound, "not an HDF5 file: " + path};
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return Status{Errc::kNotFound, "cannot open " + path};
  const hid_t f = file.get();
  std::string format;
  PRISM_RETURN_IF_ERROR(read_string_attr(f, "format", format));
  if (format != kFormat) return bad_file(path + " is not a Prism GCS snapshot");
  int32_t version = 0;
  PRISM_RETURN_IF_ERROR(read_int_attr(f, "version", version));
  if (version != kVersion) return bad_file("unsupported version " + std::to_string(version));
  SnapshotData d;
  PRISM_RETURN_IF_ERROR(read_int_attr(f, "shards", d.shards));
  PRISM_RETURN_IF_ERROR(read_int_attr(f, "replicas", d.replicas));
  PRISM_RETURN_IF_ERROR(read_array(f, "gcs_ranks", H5T_NATIVE_INT32, d.gcs_ranks));
  Hid oid = object_id_type();
  Status st = read_group(f, "shards", "shard", d.shard_info, oid.get());
  for_each_table([&](auto tag) {
    using Tag = decltype(tag);
    if (st) st = read_group(f, Tag::name, Tag::key_column, rows_of<Tag>(d), oid.get());
  });
  PRISM_RETURN_IF_ERROR(st);
  return d;
}

}  // namespace prism::gcs
