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
  Hid ds(H5Dopen2(loc, name, H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return bad_file(std::string("missing dataset ") + name);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    return bad_file(std::string("dataset ") + name + " is not one-dimensional");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  Hid t = string_type();
  std::vector<char*> buf(static_cast<size_t>(n), nullptr);
  if (n && H5Dread(ds.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    return bad_file(std::string("cannot read strings ") + name);
  out.clear();
  out.reserve(buf.size());
  for (char* p : buf) out.emplace_back(p ? p : "");
  if (n) H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, buf.data());
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

template <class Tag>
void append_rows(const KeyedTable<Tag>& t,
                 std::vector<std::pair<typename Tag::Key, typename Tag::Record>>& out) {
  t.for_each([&](const auto& k, const auto& v) { out.emplace_back(k, v); });
}

}  // namespace

// ---- collecting -----------------------------------------------------------------

SnapshotData collect_snapshot(std::span<const GcsServer* const> servers) {
  SnapshotData d;
  if (servers.empty()) return d;
  const GcsLayout& l = servers.front()->layout();
  d.shards = l.shards;
  d.replicas = l.replicas;
  d.gcs_ranks.assign(l.ranks.begin(), l.ranks.end());
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
    SnapshotShard info;
    info.shard = s;
    info.source_rank = best->rank();
    info.epoch = best_st.config.epoch;
    info.applied = best_st.applied;
    info.committed = best_tail ? best_st.applied : best_st.committed;
    info.chain.assign(best_st.config.members.begin(), best_st.config.members.end());
    d.shard_info.push_back(std::move(info));
    const ShardStore* st = best->store(s);
    append_rows(st->tasks, d.tasks);
    append_rows(st->objects, d.objects);
    append_rows(st->actors, d.actors);
    append_rows(st->nodes, d.nodes);
  }
  sort_rows(d.tasks);
  sort_rows(d.objects);
  sort_rows(d.actors);
  sort_rows(d.nodes);
  return d;
}

SnapshotData collect_snapshot(const GcsServer& server) {
  const GcsServer* one[] = {&server};
  return collect_snapshot(std::span<const GcsServer* const>(one));
}

void fetch_snapshot(GcsClient& client, std::function<void(Expected<SnapshotData>)> done) {
  struct Join {
    SnapshotData data;
    int left = 4;
    Status error;
    std::function<void(Expected<SnapshotData>)> done;
    void finish_one(Status s) {
      if (!s && error.is_ok()) error = std::move(s);
      if (--left > 0) return;
      if (!error.is_ok()) return done(error);
      sort_rows(data.tasks);
      sort_rows(data.objects);
      sort_rows(data.actors);
      sort_rows(data.nodes);
      done(std::move(data));
    }
  };
  auto j = std::make_shared<Join>();
  j->done = std::move(done);
  const GcsLayout& l = client.layout();
  j->data.shards = l.shards;
  j->data.replicas = l.replicas;
  j->data.gcs_ranks.assign(l.ranks.begin(), l.ranks.end());
  auto take = [j](auto& dst) {
    return [j, &dst](auto rows) {
      if (!rows) return j->finish_one(rows.status());
      dst = std::move(*rows);
      j->finish_one(Status::ok());
    };
  };
  client.scan<TaskTable>(take(j->data.tasks));
  client.scan<ObjectTable>(take(j->data.objects));
  client.scan<ActorTable>(take(j->data.actors));
  client.scan<NodeTable>(take(j->data.nodes));
}

Expected<SnapshotData> merge_snapshots(std::vector<SnapshotData> parts) {
  if (parts.empty()) return Status{Errc::kInvalidArgument, "no snapshot to merge"};
  const SnapshotData& first = parts.front();
  for (const auto& p : parts)
    if (p.shards != first.shards || p.replicas != first.replicas || p.gcs_ranks != first.gcs_ranks)
      return Status{Errc::kInvalidArgument, "snapshots of different GCS layouts"};
  GcsLayout l;
  l.ranks.assign(first.gcs_ranks.begin(), first.gcs_ranks.end());
  l.shards = first.shards;
  l.replicas = first.replicas;
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
  SnapshotData out;
  out.shards = first.shards;
  out.replicas = first.replicas;
  out.gcs_ranks = first.gcs_ranks;
  for (size_t s = 0; s < source.size(); ++s)
    if (source[s] >= 0 && !parts[static_cast<size_t>(source[s])].shard_info.empty())
      out.shard_info.push_back(infos[s]);
  auto pick = [&](auto tag, auto member) {
    using Tag = decltype(tag);
    for (size_t i = 0; i < parts.size(); ++i)
      for (auto& row : parts[i].*member) {
        const int s = l.shard_of(Tag::id, encode_key<Tag>(row.first));
        if (source[static_cast<size_t>(s)] == static_cast<int>(i)) (out.*member).push_back(row);
      }
    sort_rows(out.*member);
  };
  pick(TaskTable{}, &SnapshotData::tasks);
  pick(ObjectTable{}, &SnapshotData::objects);
  pick(ActorTable{}, &SnapshotData::actors);
  pick(NodeTable{}, &SnapshotData::nodes);
  return out;
}

// ---- writing ----------------------------------------------------------------------

namespace {

Status write_tasks(hid_t file, const SnapshotData& d, hid_t oid_type) {
  Hid g = make_group(file, "tasks");
  if (!g.ok()) return h5_error("cannot create group tasks");
  std::vector<ObjectId> ids, parents, args;
  std::vector<std::string> functions;
  std::vector<uint8_t> states;
  std::vector<int32_t> nodes;
  std::vector<uint32_t> num_returns;
  std::vector<uint64_t> arg_offsets{0};
  for (const auto& [id, t] : d.tasks) {
    ids.push_back(id);
    functions.push_back(t.function_name);
    states.push_back(static_cast<uint8_t>(t.state));
    nodes.push_back(t.node);
    parents.push_back(t.parent);
    num_returns.push_back(t.num_returns);
    args.insert(args.end(), t.args.begin(), t.args.end());
    arg_offsets.push_back(args.size());
  }
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(write_strings(g.get(), "function", functions));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "state", H5T_NATIVE_UINT8, states));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "node", H5T_NATIVE_INT32, nodes));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "parent", oid_type, parents));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "num_returns", H5T_NATIVE_UINT32, num_returns));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "arg_offsets", H5T_NATIVE_UINT64, arg_offsets));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "args", oid_type, args));
  return write_string_attr(g.get(), "state_names", "0=pending 1=running 2=finished 3=failed");
}

Status write_objects(hid_t file, const SnapshotData& d, hid_t oid_type) {
  Hid g = make_group(file, "objects");
  if (!g.ok()) return h5_error("cannot create group objects");
  std::vector<ObjectId> ids;
  std::vector<uint64_t> sizes, loc_offsets{0};
  std::vector<int32_t> owners, locations;
  for (const auto& [id, o] : d.objects) {
    ids.push_back(id);
    sizes.push_back(o.size);
    owners.push_back(o.owner);
    locations.insert(locations.end(), o.locations.begin(), o.locations.end());
    loc_offsets.push_back(locations.size());
  }
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "size", H5T_NATIVE_UINT64, sizes));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "owner", H5T_NATIVE_INT32, owners));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "location_offsets", H5T_NATIVE_UINT64, loc_offsets));
  return write_array(g.get(), "locations", H5T_NATIVE_INT32, locations);
}

Status write_actors(hid_t file, const SnapshotData& d, hid_t oid_type) {
  Hid g = make_group(file, "actors");
  if (!g.ok()) return h5_error("cannot create group actors");
  std::vector<ObjectId> ids;
  std::vector<std::string> classes;
  std::vector<int32_t> nodes;
  std::vector<uint8_t> states;
  std::vector<uint32_t> restarts;
  std::vector<std::string> names;
  std::vector<ObjectId> named;
  for (const auto& [id, a] : d.actors) {
    ids.push_back(id);
    classes.push_back(a.class_name);
    nodes.push_back(a.node);
    states.push_back(static_cast<uint8_t>(a.state));
    restarts.push_back(a.restarts);
    names.push_back(a.name);
    named.push_back(a.actor);
  }
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(write_strings(g.get(), "class_name", classes));
  PRISM_RETURN_IF_ERROR(write_strings(g.get(), "name", names));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "actor", oid_type, named));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "node", H5T_NATIVE_INT32, nodes));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "state", H5T_NATIVE_UINT8, states));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "restarts", H5T_NATIVE_UINT32, restarts));
  return write_string_attr(g.get(), "state_names", "0=pending 1=alive 2=restarting 3=dead");
}

Status write_resource_maps(hid_t g, const char* prefix,
                           const std::vector<const std::map<std::string, double>*>& maps) {
  std::vector<uint64_t> offsets{0};
  std::vector<std::string> names;
  std::vector<double> values;
  for (const auto* m : maps) {
    for (const auto& [k, v] : *m) {
      names.push_back(k);
      values.push_back(v);
    }
    offsets.push_back(names.size());
  }
  const std::string p(prefix);
  PRISM_RETURN_IF_ERROR(write_array(g, (p + "_offsets").c_str(), H5T_NATIVE_UINT64, offsets));
  PRISM_RETURN_IF_ERROR(write_strings(g, (p + "_names").c_str(), names));
  return write_array(g, (p + "_values").c_str(), H5T_NATIVE_DOUBLE, values);
}

Status write_nodes(hid_t file, const SnapshotData& d) {
  Hid g = make_group(file, "nodes");
  if (!g.ok()) return h5_error("cannot create group nodes");
  std::vector<int32_t> ranks;
  std::vector<uint64_t> heartbeats;
  std::vector<uint32_t> queues;
  std::vector<uint8_t> alive;
  std::vector<const std::map<std::string, double>*> totals, avail;
  for (const auto& [r, n] : d.nodes) {
    ranks.push_back(r);
    heartbeats.push_back(n.last_heartbeat_us);
    queues.push_back(n.queue_length);
    alive.push_back(n.alive ? 1 : 0);
    totals.push_back(&n.resources);
    avail.push_back(&n.available);
  }
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "rank", H5T_NATIVE_INT32, ranks));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "last_heartbeat_us", H5T_NATIVE_UINT64, heartbeats));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "queue_length", H5T_NATIVE_UINT32, queues));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "alive", H5T_NATIVE_UINT8, alive));
  PRISM_RETURN_IF_ERROR(write_resource_maps(g.get(), "resources", totals));
  return write_resource_maps(g.get(), "available", avail);
}

Status write_shard_info(hid_t file, const SnapshotData& d) {
  Hid g = make_group(file, "shards");
  if (!g.ok()) return h5_error("cannot create group shards");
  std::vector<int32_t> shard, source, chain;
  std::vector<uint64_t> epoch, applied, committed, chain_offsets{0};
  for (const auto& s : d.shard_info) {
    shard.push_back(s.shard);
    source.push_back(s.source_rank);
    epoch.push_back(s.epoch);
    applied.push_back(s.applied);
    committed.push_back(s.committed);
    chain.insert(chain.end(), s.chain.begin(), s.chain.end());
    chain_offsets.push_back(chain.size());
  }
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "shard", H5T_NATIVE_INT32, shard));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "source_rank", H5T_NATIVE_INT32, source));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "epoch", H5T_NATIVE_UINT64, epoch));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "applied", H5T_NATIVE_UINT64, applied));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "committed", H5T_NATIVE_UINT64, committed));
  PRISM_RETURN_IF_ERROR(write_array(g.get(), "chain_offsets", H5T_NATIVE_UINT64, chain_offsets));
  return write_array(g.get(), "chain", H5T_NATIVE_INT32, chain);
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
  Hid oid_type = object_id_type();
  PRISM_RETURN_IF_ERROR(write_shard_info(f, d));
  PRISM_RETURN_IF_ERROR(write_tasks(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(write_objects(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(write_actors(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(write_nodes(f, d));
  if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) return h5_error("cannot flush " + path);
  return Status::ok();
}

Status write_snapshot(const GcsServer& server, const std::string& path) {
  return write_snapshot(collect_snapshot(server), path);
}

Status write_snapshot(std::span<const GcsServer* const> servers, const std::string& path) {
  return write_snapshot(collect_snapshot(servers), path);
}

// ---- reading ----------------------------------------------------------------------

namespace {

Status read_tasks(hid_t file, SnapshotData& d, hid_t oid_type) {
  Hid g(H5Gopen2(file, "tasks", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file("missing group tasks");
  std::vector<ObjectId> ids, parents, args;
  std::vector<std::string> functions;
  std::vector<uint8_t> states;
  std::vector<int32_t> nodes;
  std::vector<uint32_t> num_returns;
  std::vector<uint64_t> off;
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(read_strings(g.get(), "function", functions));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "state", H5T_NATIVE_UINT8, states));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "node", H5T_NATIVE_INT32, nodes));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "parent", oid_type, parents));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "num_returns", H5T_NATIVE_UINT32, num_returns));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "arg_offsets", H5T_NATIVE_UINT64, off));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "args", oid_type, args));
  const size_t n = ids.size();
  if (functions.size() != n || states.size() != n || nodes.size() != n || parents.size() != n ||
      num_returns.size() != n)
    return bad_file("task columns differ in length");
  PRISM_RETURN_IF_ERROR(check_offsets(off, n, args.size(), "task argument"));
  for (size_t i = 0; i < n; ++i) {
    if (states[i] > static_cast<uint8_t>(TaskState::kFailed)) return bad_file("bad task state");
    TaskRecord t;
    t.function_name = functions[i];
    t.state = static_cast<TaskState>(states[i]);
    t.node = nodes[i];
    t.parent = parents[i];
    t.num_returns = num_returns[i];
    t.args.assign(args.begin() + static_cast<std::ptrdiff_t>(off[i]),
                  args.begin() + static_cast<std::ptrdiff_t>(off[i + 1]));
    d.tasks.emplace_back(ids[i], std::move(t));
  }
  return Status::ok();
}

Status read_objects(hid_t file, SnapshotData& d, hid_t oid_type) {
  Hid g(H5Gopen2(file, "objects", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file("missing group objects");
  std::vector<ObjectId> ids;
  std::vector<uint64_t> sizes, off;
  std::vector<int32_t> owners, locations;
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "size", H5T_NATIVE_UINT64, sizes));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "owner", H5T_NATIVE_INT32, owners));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "location_offsets", H5T_NATIVE_UINT64, off));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "locations", H5T_NATIVE_INT32, locations));
  const size_t n = ids.size();
  if (sizes.size() != n || owners.size() != n) return bad_file("object columns differ in length");
  PRISM_RETURN_IF_ERROR(check_offsets(off, n, locations.size(), "object location"));
  for (size_t i = 0; i < n; ++i) {
    ObjectRecord o;
    o.size = sizes[i];
    o.owner = owners[i];
    o.locations.assign(locations.begin() + static_cast<std::ptrdiff_t>(off[i]),
                       locations.begin() + static_cast<std::ptrdiff_t>(off[i + 1]));
    d.objects.emplace_back(ids[i], std::move(o));
  }
  return Status::ok();
}

Status read_actors(hid_t file, SnapshotData& d, hid_t oid_type) {
  Hid g(H5Gopen2(file, "actors", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file("missing group actors");
  std::vector<ObjectId> ids;
  std::vector<std::string> classes;
  std::vector<int32_t> nodes;
  std::vector<uint8_t> states;
  std::vector<uint32_t> restarts;
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "id", oid_type, ids));
  PRISM_RETURN_IF_ERROR(read_strings(g.get(), "class_name", classes));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "node", H5T_NATIVE_INT32, nodes));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "state", H5T_NATIVE_UINT8, states));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "restarts", H5T_NATIVE_UINT32, restarts));
  const size_t n = ids.size();
  // Columns added with actors' names (snapshots from before have none).
  std::vector<std::string> names(n);
  std::vector<ObjectId> named(n);
  if (H5Lexists(g.get(), "name", H5P_DEFAULT) > 0) {
    PRISM_RETURN_IF_ERROR(read_strings(g.get(), "name", names));
    PRISM_RETURN_IF_ERROR(read_array(g.get(), "actor", oid_type, named));
  }
  if (classes.size() != n || nodes.size() != n || states.size() != n || restarts.size() != n ||
      names.size() != n || named.size() != n)
    return bad_file("actor columns differ in length");
  for (size_t i = 0; i < n; ++i) {
    if (states[i] > static_cast<uint8_t>(ActorState::kDead)) return bad_file("bad actor state");
    d.actors.emplace_back(ids[i], ActorRecord{classes[i], nodes[i],
                                              static_cast<ActorState>(states[i]), restarts[i],
                                              names[i], named[i]});
  }
  return Status::ok();
}

Status read_resource_maps(hid_t g, const char* prefix, size_t rows,
                          std::vector<std::map<std::string, double>>& out) {
  const std::string p(prefix);
  std::vector<uint64_t> off;
  std::vector<std::string> names;
  std::vector<double> values;
  PRISM_RETURN_IF_ERROR(read_array(g, (p + "_offsets").c_str(), H5T_NATIVE_UINT64, off));
  PRISM_RETURN_IF_ERROR(read_strings(g, (p + "_names").c_str(), names));
  PRISM_RETURN_IF_ERROR(read_array(g, (p + "_values").c_str(), H5T_NATIVE_DOUBLE, values));
  if (names.size() != values.size()) return bad_file(p + " names and values differ");
  PRISM_RETURN_IF_ERROR(check_offsets(off, rows, names.size(), prefix));
  out.assign(rows, {});
  for (size_t i = 0; i < rows; ++i)
    for (uint64_t j = off[i]; j < off[i + 1]; ++j) out[i][names[j]] = values[j];
  return Status::ok();
}

Status read_nodes(hid_t file, SnapshotData& d) {
  Hid g(H5Gopen2(file, "nodes", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file("missing group nodes");
  std::vector<int32_t> ranks;
  std::vector<uint64_t> heartbeats;
  std::vector<uint32_t> queues;
  std::vector<uint8_t> alive;
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "rank", H5T_NATIVE_INT32, ranks));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "last_heartbeat_us", H5T_NATIVE_UINT64, heartbeats));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "queue_length", H5T_NATIVE_UINT32, queues));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "alive", H5T_NATIVE_UINT8, alive));
  const size_t n = ranks.size();
  if (heartbeats.size() != n || queues.size() != n || alive.size() != n)
    return bad_file("node columns differ in length");
  std::vector<std::map<std::string, double>> totals, avail;
  PRISM_RETURN_IF_ERROR(read_resource_maps(g.get(), "resources", n, totals));
  PRISM_RETURN_IF_ERROR(read_resource_maps(g.get(), "available", n, avail));
  for (size_t i = 0; i < n; ++i) {
    NodeRecord r;
    r.resources = std::move(totals[i]);
    r.available = std::move(avail[i]);
    r.queue_length = queues[i];
    r.last_heartbeat_us = heartbeats[i];
    r.alive = alive[i] != 0;
    d.nodes.emplace_back(ranks[i], std::move(r));
  }
  return Status::ok();
}

Status read_shard_info(hid_t file, SnapshotData& d) {
  Hid g(H5Gopen2(file, "shards", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return bad_file("missing group shards");
  std::vector<int32_t> shard, source, chain;
  std::vector<uint64_t> epoch, applied, committed, off;
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "shard", H5T_NATIVE_INT32, shard));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "source_rank", H5T_NATIVE_INT32, source));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "epoch", H5T_NATIVE_UINT64, epoch));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "applied", H5T_NATIVE_UINT64, applied));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "committed", H5T_NATIVE_UINT64, committed));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "chain_offsets", H5T_NATIVE_UINT64, off));
  PRISM_RETURN_IF_ERROR(read_array(g.get(), "chain", H5T_NATIVE_INT32, chain));
  const size_t n = shard.size();
  if (source.size() != n || epoch.size() != n || applied.size() != n || committed.size() != n)
    return bad_file("shard columns differ in length");
  PRISM_RETURN_IF_ERROR(check_offsets(off, n, chain.size(), "chain"));
  for (size_t i = 0; i < n; ++i) {
    SnapshotShard s{shard[i], source[i], epoch[i], applied[i], committed[i], {}};
    s.chain.assign(chain.begin() + static_cast<std::ptrdiff_t>(off[i]),
                   chain.begin() + static_cast<std::ptrdiff_t>(off[i + 1]));
    d.shard_info.push_back(std::move(s));
  }
  return Status::ok();
}

}  // namespace

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
  Hid oid_type = object_id_type();
  PRISM_RETURN_IF_ERROR(read_shard_info(f, d));
  PRISM_RETURN_IF_ERROR(read_tasks(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(read_objects(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(read_actors(f, d, oid_type.get()));
  PRISM_RETURN_IF_ERROR(read_nodes(f, d));
  return d;
}

}  // namespace prism::gcs
