// Where the Global Control Store lives: which ranks, how many shards, how many
// replicas per shard, and which chain serves a shard right now.
//
// See gcs/gcs.hpp for the protocol overview.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/status.hpp"

namespace prism::gcs {

/// Task ids are grouped in blocks of this many sequence numbers: a block is
/// stored on one shard, and a run of tasks (TaskRecord::run) stays inside it.
inline constexpr uint64_t kTaskBlock = 1024;

/// The tables of the GCS (each described by its tag in gcs/records.hpp). The
/// numeric values travel on the wire.
enum class TableId : uint8_t {
  kTasks = 1,    // task id -> spec summary, state, lineage
  kObjects = 2,  // object id -> locations, size, owner
  kActors = 3,   // actor id -> class name, node, state, restarts
  kNodes = 4,    // node rank -> resources, load, last heartbeat
};
/// The highest TableId (decoders check table bytes against it).
inline constexpr TableId kLastTable = TableId::kNodes;

/// True for the wire values of the tables.
constexpr bool is_valid_table(uint8_t v) noexcept {
  return v >= 1 && v <= static_cast<uint8_t>(kLastTable);
}
/// The table's name, as its tag gives it ("tasks", ...; "unknown" for others).
const char* table_name(TableId t) noexcept;

/// One shard's chain at one moment: members from head to tail, and an epoch
/// that grows by one at every change. Plain value; not thread-safe.
/// Example: `ChainConfig c{1, {4, 5, 6}, {1, 1, 1}}; c.head() == 4; c.successor(4) == 5;`
struct ChainConfig {
  uint64_t epoch = 0;
  std::vector<int> members;      // head first, tail last
  std::vector<uint64_t> joined;  // joined[i]: epoch at which members[i] entered the chain

  /// Epoch at which `rank` joined, or 0 if it is no member. A replica whose
  /// own record of when it joined differs was cut out and re-added while it
  /// was not looking: its state is stale and must be replaced.
  uint64_t joined_at(int rank) const noexcept;

  bool empty() const noexcept { return members.empty(); }
  int head() const noexcept { return members.empty() ? -1 : members.front(); }
  int tail() const noexcept { return members.empty() ? -1 : members.back(); }
  /// Index of `rank` in the chain, or -1.
  int position(int rank) const noexcept;
  bool contains(int rank) const noexcept { return position(rank) >= 0; }
  /// The member before / after `rank`, or -1 (also when `rank` is no member).
  int predecessor(int rank) const noexcept;
  int successor(int rank) const noexcept;
  /// "e3[4 5 6]"
  std::string to_string() const;

  friend bool operator==(const ChainConfig&, const ChainConfig&) = default;
};

/// True when `a` should replace `b` as a shard's configuration: a higher
/// epoch, or (only reachable after a false suspicion, docs/gcs.md) the same
/// epoch with more members, then the lexicographically smaller member list.
/// An order on (epoch, members), so every rank converges on one configuration.
bool supersedes(const ChainConfig& a, const ChainConfig& b) noexcept;

/// The GCS group and how it is cut into shards. Immutable value; every rank
/// (GCS or client) derives the same layout from the same Config.
///
/// Chains start disjoint: shard s is ranks[s*R .. s*R+R-1]; the remaining
/// ranks (ranks.size() - S*R of them) are spares that join a chain that lost a
/// replica. R defaults to min(3, group size); S = group size / R.
/// Example: `auto l = GcsLayout::make({6, 7, 8, 9});  // S=1, R=3, spare 9`
struct GcsLayout {
  std::vector<int> ranks;  // world ranks of the GCS group, ascending
  int shards = 1;          // S
  int replicas = 1;        // R, target chain length

  /// Builds the layout of a GCS group; `replicas` 0 = derived. Fails on an
  /// empty group, duplicate or negative ranks, or replicas > group size.
  static Expected<GcsLayout> make(std::vector<int> gcs_ranks, int replicas = 0);
  /// The GCS group is the last `cfg.gcs_ranks` ranks of a world of `world_size`.
  static Expected<GcsLayout> from_config(const Config& cfg, int world_size);

  /// The chain a shard starts with (epoch 1).
  ChainConfig initial_chain(int shard) const;
  /// Ranks in no initial chain.
  std::vector<int> spares() const;
  /// Which shard holds `key` of `table`. Deterministic across processes.
  /// Task keys are placed by block (kTaskBlock), so that one row can stand
  /// for a run of consecutive tasks (gcs/records.hpp).
  int shard_of(TableId table, std::span<const std::byte> key) const noexcept;
  bool is_gcs_rank(int rank) const noexcept;
};

}  // namespace prism::gcs
