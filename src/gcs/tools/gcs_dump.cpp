// prism-gcs-dump: prints a GCS snapshot, every table as its columns describe
// it (gcs/records.hpp), with counts by state where a table has a state
// column. Several files (one per GCS rank) are merged shard by shard.
//
//   prism-gcs-dump prism-run-42/gcs.h5
//   prism-gcs-dump prism-run-42/gcs-*.h5 --table tasks --state failed
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gcs/snapshot.hpp"

namespace {

using namespace prism;
using namespace prism::gcs;

// ---- a value of each column type as text -----------------------------------------

std::string show(const ObjectId& id) {
  return id.is_nil() ? "-" : id.to_string();
}
std::string show(const std::string& s) {
  return s.empty() ? "-" : s;
}
[[maybe_unused]] std::string show(bool b) {
  return b ? "yes" : "no";
}
template <class T>
requires std::is_arithmetic_v<T> std::string show(T v) {
  return std::to_string(v);
}
template <NamedEnum E>
std::string show(E e) {
  return enum_name(e);
}
template <class T>
std::string show(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + show(v[i]);
  return s + "]";
}
[[maybe_unused]] std::string show(const std::map<std::string, double>& m) {
  std::string s = "{";
  for (const auto& [k, v] : m) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %g", s.size() > 1 ? ", " : "", k.c_str(), v);
    s += buf;
  }
  return s + "}";
}

// The node table reads best as free/total resources.
std::string describe_row(const NodeRecord& n) {
  std::string res;
  for (const auto& [k, v] : n.resources) {
    auto it = n.available.find(k);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s %g/%g", res.empty() ? "" : ", ", k.c_str(),
                  it == n.available.end() ? 0.0 : it->second, v);
    res += buf;
  }
  char buf[192];
  std::snprintf(buf, sizeof buf, "%-5s queue %-5u heartbeat %llu us  free/total: %s",
                n.alive ? "alive" : "dead", n.queue_length,
                static_cast<unsigned long long>(n.last_heartbeat_us),
                res.empty() ? "-" : res.c_str());
  return buf;
}

// A row: every column, "name value", unless the table says how it reads
// best (Record's `describe`: the node table's free/total resources).
template <class Record>
std::string describe(const Record& r) {
  if constexpr (requires { describe_row(r); }) {
    return describe_row(r);
  } else {
    std::string s;
    for_each_column<Record>([&](const auto& c) {
      if (c.snapshot) s += std::string(s.empty() ? "" : "  ") + c.name + " " + show(r.*c.member);
    });
    return s;
  }
}

// The record's enum column named "state", if it has one (counted by value,
// and filtered by --state).
template <class Record>
const char* state_of(const Record& r) {
  const char* out = nullptr;
  for_each_column<Record>([&](const auto& c) {
    using T = std::remove_cvref_t<decltype(r.*c.member)>;
    if constexpr (NamedEnum<T>)
      if (std::string_view(c.name) == "state") out = enum_name(r.*c.member);
  });
  return out;
}

template <class Tag>
void print_table(const SnapshotData& d, const std::string& state_filter, size_t limit) {
  using Record = typename Tag::Record;
  const auto& rows = rows_of<Tag>(d);
  std::printf("%s: %zu", Tag::name, rows.size());
  std::map<std::string, size_t> by_state;
  for (const auto& row : rows)
    if (const char* st = state_of(row.second)) ++by_state[st];
  for_each_column<Record>([&](const auto& c) {  // every state, in order, also the empty ones
    using T = std::remove_cvref_t<decltype(std::declval<Record>().*c.member)>;
    if constexpr (NamedEnum<T>)
      if (std::string_view(c.name) == "state")
        for (const char* name : EnumNames<T>::names) std::printf("  %s %zu", name, by_state[name]);
  });
  std::printf("\n");
  size_t shown = 0;
  for (const auto& [key, rec] : rows) {
    const char* st = state_of(rec);
    if (!state_filter.empty() && (!st || state_filter != st)) continue;
    if (limit != 0 && shown++ >= limit) {
      std::printf("  ... more\n");
      break;
    }
    std::printf("  %s %-20s %s\n", Tag::key_column, show(key).c_str(), describe(rec).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Print a Prism GCS snapshot (HDF5)"};
  std::vector<std::string> files;
  std::vector<std::string> tables;
  std::string state;
  size_t limit = 0;
  app.add_option("files", files, "snapshot files; several are merged shard by shard")
      ->required()
      ->check(CLI::ExistingFile);
  std::vector<std::string> names;  // every table's
  for_each_table([&](auto tag) { names.emplace_back(decltype(tag)::name); });
  app.add_option("-t,--table", tables, "only these tables")->check(CLI::IsMember(names));
  app.add_option("-s,--state", state, "only rows in this state (tables with a state column)");
  app.add_option("-n,--limit", limit, "rows per section (0 = all)");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const Status& s) {
    std::fprintf(stderr, "prism-gcs-dump: %s\n", s.to_string().c_str());
    return 1;
  };
  std::vector<SnapshotData> parts;
  for (const auto& f : files) {
    auto d = read_snapshot(f);
    if (!d) return fail(d.status());
    parts.push_back(std::move(*d));
  }
  auto merged = merge_snapshots(std::move(parts));
  if (!merged) return fail(merged.status());
  const SnapshotData& d = *merged;

  std::printf("GCS snapshot: %d shard(s), %d replica(s) each, GCS ranks %s\n", d.shards, d.replicas,
              show(d.gcs_ranks).c_str());
  for (const auto& s : d.shard_info)
    std::printf("  shard %d: epoch %llu chain %s, copy of rank %d (applied %llu, committed %llu)\n",
                s.shard, static_cast<unsigned long long>(s.epoch), show(s.chain).c_str(),
                s.source_rank, static_cast<unsigned long long>(s.applied),
                static_cast<unsigned long long>(s.committed));
  if (!d.shard_info.empty() && d.shard_info.size() < static_cast<size_t>(d.shards))
    std::printf("  warning: %zu of %d shards missing\n",
                static_cast<size_t>(d.shards) - d.shard_info.size(), d.shards);
  for_each_table([&](auto tag) {
    if (tables.empty() ||
        std::find(tables.begin(), tables.end(), decltype(tag)::name) != tables.end())
      print_table<decltype(tag)>(d, state, limit);
  });
  return 0;
}
