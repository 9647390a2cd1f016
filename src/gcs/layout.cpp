#include "gcs/layout.hpp"

#include <algorithm>
#include <cstring>

namespace prism::gcs {

int ChainConfig::position(int rank) const noexcept {
  for (size_t i = 0; i < members.size(); ++i)
    if (members[i] == rank) return static_cast<int>(i);
  return -1;
}

uint64_t ChainConfig::joined_at(int rank) const noexcept {
  const int p = position(rank);
  return p >= 0 && static_cast<size_t>(p) < joined.size() ? joined[static_cast<size_t>(p)] : 0;
}

int ChainConfig::predecessor(int rank) const noexcept {
  const int p = position(rank);
  return p > 0 ? members[static_cast<size_t>(p - 1)] : -1;
}

int ChainConfig::successor(int rank) const noexcept {
  const int p = position(rank);
  return p >= 0 && static_cast<size_t>(p) + 1 < members.size() ? members[static_cast<size_t>(p + 1)]
                                                               : -1;
}

std::string ChainConfig::to_string() const {
  std::string s = "e" + std::to_string(epoch) + "[";
  for (size_t i = 0; i < members.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(members[i]);
    if (i < joined.size() && joined[i] != 1) s += "@" + std::to_string(joined[i]);
  }
  return s + "]";
}

bool supersedes(const ChainConfig& a, const ChainConfig& b) noexcept {
  if (a.epoch != b.epoch) return a.epoch > b.epoch;
  if (a.members == b.members) return false;
  if (a.members.size() != b.members.size()) return a.members.size() > b.members.size();
  return a.members < b.members;
}

Expected<GcsLayout> GcsLayout::make(std::vector<int> gcs_ranks, int replicas) {
  if (gcs_ranks.empty()) return Status{Errc::kInvalidArgument, "GCS group is empty"};
  std::sort(gcs_ranks.begin(), gcs_ranks.end());
  if (gcs_ranks.front() < 0) return Status{Errc::kInvalidArgument, "negative GCS rank"};
  if (std::adjacent_find(gcs_ranks.begin(), gcs_ranks.end()) != gcs_ranks.end())
    return Status{Errc::kInvalidArgument, "duplicate GCS rank"};
  const int g = static_cast<int>(gcs_ranks.size());
  if (replicas < 0) return Status{Errc::kInvalidArgument, "gcs_replicas must be >= 0"};
  if (replicas > g)
    return Status{Errc::kInvalidArgument, "gcs_replicas=" + std::to_string(replicas) +
                                              " exceeds the GCS group of " + std::to_string(g)};
  GcsLayout l;
  l.replicas = replicas == 0 ? std::min(3, g) : replicas;
  l.shards = g / l.replicas;
  l.ranks = std::move(gcs_ranks);
  return l;
}

Expected<GcsLayout> GcsLayout::from_config(const Config& cfg, int world_size) {
  if (cfg.gcs_ranks < 1 || cfg.gcs_ranks >= world_size)
    return Status{Errc::kInvalidArgument, "gcs_ranks=" + std::to_string(cfg.gcs_ranks) +
                                              " needs 1..world_size-1 (world " +
                                              std::to_string(world_size) + ")"};
  std::vector<int> r;
  for (int i = world_size - cfg.gcs_ranks; i < world_size; ++i) r.push_back(i);
  return make(std::move(r), cfg.gcs_replicas);
}

ChainConfig GcsLayout::initial_chain(int shard) const {
  ChainConfig c;
  c.epoch = 1;
  if (shard < 0 || shard >= shards) return c;
  for (int i = 0; i < replicas; ++i) {
    c.members.push_back(ranks[static_cast<size_t>(shard * replicas + i)]);
    c.joined.push_back(1);
  }
  return c;
}

std::vector<int> GcsLayout::spares() const {
  return {ranks.begin() + static_cast<std::ptrdiff_t>(shards * replicas), ranks.end()};
}

int GcsLayout::shard_of(TableId table, std::span<const std::byte> key) const noexcept {
  // FNV-1a over (table, key), then a splitmix finaliser so that keys differing
  // only in their last bytes (sequence numbers) spread over the shards.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3ull;
  };
  mix(static_cast<uint8_t>(table));
  if (table == TableId::kTasks && key.size() == 16) {
    // (u32 owner, u32 index, u64 seq): hash the block, not the seq.
    uint64_t seq = 0;
    std::memcpy(&seq, key.data() + 8, sizeof seq);
    const uint64_t block = seq / kTaskBlock;
    for (size_t i = 0; i < 8; ++i) mix(static_cast<uint8_t>(key[i]));
    for (size_t i = 0; i < 8; ++i) mix(static_cast<uint8_t>(block >> (8 * i)));
  } else {
    for (std::byte b : key) mix(static_cast<uint8_t>(b));
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<int>(h % static_cast<uint64_t>(shards > 0 ? shards : 1));
}

bool GcsLayout::is_gcs_rank(int rank) const noexcept {
  return std::binary_search(ranks.begin(), ranks.end(), rank);
}

}  // namespace prism::gcs
