// GCS snapshots: every table dumped to an HDF5 file, for inspecting a job
// after the fact (prism-gcs-dump prints one). The file layout is documented
// in docs/gcs.md; HDF5 stays inside snapshot.cpp.
//
// Three ways to take one:
//  - in one process that holds every shard (tests, a 1-rank GCS group):
//      write_snapshot(server, path) / write_snapshot({&s0, &s1, ...}, path)
//  - each GCS rank writes what it holds, and the dump tool merges the files:
//      write_snapshot(server, run_dir + "/gcs-" + std::to_string(rank) + ".h5")
//  - from any rank through the protocol (reads every shard's tail):
//      fetch_snapshot(client, [&](Expected<SnapshotData> s) { (void)write_snapshot(*s, path); });
// Not thread-safe (HDF5's error-reporting state is process-wide).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "gcs/client.hpp"
#include "gcs/records.hpp"
#include "gcs/server.hpp"

namespace prism::gcs {

/// Where one shard's rows in a snapshot came from.
struct SnapshotShard {
  int32_t shard = 0;
  int32_t source_rank = -1;  // the GCS rank whose copy was taken (-1: fetched by a client)
  uint64_t epoch = 0;
  uint64_t applied = 0;
  uint64_t committed = 0;  // rows may include writes up to `applied` unless source is the tail
  std::vector<int32_t> chain;
  friend bool operator==(const SnapshotShard&, const SnapshotShard&) = default;
  static constexpr auto columns() {  // the "shards" group of a snapshot file
    return std::tuple{column("shard", &SnapshotShard::shard),
                      column("source_rank", &SnapshotShard::source_rank),
                      column("epoch", &SnapshotShard::epoch),
                      column("applied", &SnapshotShard::applied),
                      column("committed", &SnapshotShard::committed),
                      column("chain", &SnapshotShard::chain)};
  }
};

/// All tables, rows sorted by key.
struct SnapshotData {
  int32_t shards = 0;
  int32_t replicas = 0;
  std::vector<int32_t> gcs_ranks{};
  std::vector<SnapshotShard> shard_info{};  // one per shard present
  std::vector<std::pair<TaskId, TaskRecord>> tasks{};
  std::vector<std::pair<ObjectId, ObjectRecord>> objects{};
  std::vector<std::pair<ActorId, ActorRecord>> actors{};
  std::vector<std::pair<NodeRank, NodeRecord>> nodes{};
  friend bool operator==(const SnapshotData&, const SnapshotData&) = default;
};

/// The rows of table `Tag` in `d`.
template <class Tag>
auto& rows_of(SnapshotData& d) {
  using Rows = std::vector<std::pair<typename Tag::Key, typename Tag::Record>>;
  return std::get<Rows&>(std::tie(d.tasks, d.objects, d.actors, d.nodes));
}
template <class Tag>
const auto& rows_of(const SnapshotData& d) {
  return rows_of<Tag>(const_cast<SnapshotData&>(d));
}

/// The shards held by `servers`: for each shard the tail's copy if one of them
/// is the tail, else the installed copy with the most applied writes.
SnapshotData collect_snapshot(std::span<const GcsServer* const> servers);
SnapshotData collect_snapshot(const GcsServer& server);

/// Reads every table from every shard's tail; `done` runs inside a later
/// client.handle()/tick(). shard_info is empty (the tails are not named).
void fetch_snapshot(GcsClient& client, std::function<void(Expected<SnapshotData>)> done);

/// Combines snapshots of the same layout (e.g. one file per GCS rank): for
/// each shard, the rows of the copy with the most committed writes, then the
/// newest epoch, then the tail's own copy.
Expected<SnapshotData> merge_snapshots(std::vector<SnapshotData> parts);

/// Writes `data` to a new HDF5 file at `path` (replaced if it exists). Serial
/// HDF5 from one process: no MPI communication.
Status write_snapshot(const SnapshotData& data, const std::string& path);
Status write_snapshot(const GcsServer& server, const std::string& path);
Status write_snapshot(std::span<const GcsServer* const> servers, const std::string& path);

/// Reads a file written by write_snapshot, validating its layout.
Expected<SnapshotData> read_snapshot(const std::string& path);

}  // namespace prism::gcs
