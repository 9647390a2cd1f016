// One shard's replicated state: the four tables, the subscriptions and the
// client sessions used to detect retried writes.
//
// Every replica of a chain applies the same LogEntry sequence to its
// ShardStore; apply() is deterministic, so all replicas hold the same state
// and compute the same reply for each write. Not thread-safe (owned by one
// GcsServer, driven by one thread).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "common/block_pool.hpp"
#include "common/codec.hpp"
#include "gcs/messages.hpp"
#include "gcs/records.hpp"

namespace prism::gcs {

/// The generic keyed store behind every table: an ordered map, so that scans,
/// state transfers and snapshots list rows in the same order everywhere.
template <class Tag>
class KeyedTable {
 public:
  using Key = typename Tag::Key;
  using Record = typename Tag::Record;

  const Record* find(const Key& k) const {
    auto it = rows_.find(k);
    return it == rows_.end() ? nullptr : &it->second;
  }
  Record* find(const Key& k) { return const_cast<Record*>(std::as_const(*this).find(k)); }
  void put(const Key& k, Record v) { rows_.insert_or_assign(k, std::move(v)); }
  bool remove(const Key& k) { return rows_.erase(k) > 0; }
  size_t size() const noexcept { return rows_.size(); }
  // Nodes are pooled: a task table takes a row per task, hundreds of
  // thousands a second (common/block_pool.hpp).
  using Rows = std::map<Key, Record, std::less<Key>, PoolAllocator<std::pair<const Key, Record>>>;
  const Rows& rows() const noexcept { return rows_; }
  /// Calls f(key, record) for every row, in key order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, v] : rows_) f(k, v);
  }

 private:
  Rows rows_;
};

/// The task table holds runs (TaskRecord::run): a row keyed k with run n
/// stands for tasks k.seq .. k.seq + n - 1 of k's owner and index. A write
/// that touches part of a run splits it, so to readers the table is one row
/// per task; rows() lists the runs themselves (for state transfer).
template <>
class KeyedTable<TaskTable> {
 public:
  using Key = TaskId;
  using Record = TaskRecord;
  using Rows = std::map<Key, Record, std::less<Key>, PoolAllocator<std::pair<const Key, Record>>>;

  /// The row that covers task k (whose run may cover more), or nullptr.
  const Record* find(const Key& k) const;
  /// Task k's own row, split out of its run (run = 1), or nullptr: for
  /// updating one task.
  Record* isolate(const Key& k);
  /// Writes v for tasks k .. k + v.run - 1 (validate_task_run holds).
  void put(const Key& k, Record v);
  bool remove(const Key& k);
  /// Tasks (not runs).
  size_t size() const noexcept { return tasks_; }
  const Rows& rows() const noexcept { return rows_; }
  /// Calls f(task id, record with run = 1) for every task, in id order.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, v] : rows_) {
      Record one = v;
      one.run = 1;
      Key id = k;
      for (uint32_t i = 0; i < v.run; ++i, ++id.seq) f(id, one);
    }
  }
  /// Rows of finished (or failed) tasks are kept for the newest this many
  /// tasks, older ones dropped oldest write first (docs/gcs.md, "The task
  /// table's size"); a replica installed by a state transfer counts from the
  /// transferred rows in key order.
  static constexpr size_t kMaxFinishedTasks = 100'000;
  void set_max_finished(size_t n) noexcept { max_finished_ = n; }

 private:
  void drop_finished(const Key& k, uint32_t run);
  Rows::const_iterator covering(const Key& k) const;
  /// Splits the run covering k (if it starts before k) so that a row starts at k.
  void split_at(const Key& k);

  Rows rows_;
  size_t tasks_ = 0;
  std::deque<std::pair<Key, uint32_t>> finished_;  // finished rows as written, oldest first
  size_t finished_tasks_ = 0;
  size_t max_finished_ = kMaxFinishedTasks;
};

/// The outcome of one applied write, kept until the client acknowledges it.
struct SessionEntry {
  uint64_t seq = 0;
  OpResult result;
  static constexpr auto columns() {
    return std::tuple{column("seq", &SessionEntry::seq), column("result", &SessionEntry::result)};
  }
};

/// Writes of one client process (rank + incarnation) that may still be retried.
struct ClientSession {
  uint64_t incarnation = 0;
  uint64_t floor = 0;  // every request id below it has been answered
  std::map<uint64_t, SessionEntry> done;  // by request id
  static constexpr auto columns() {
    return std::tuple{column("incarnation", &ClientSession::incarnation),
                      column("floor", &ClientSession::floor), column("done", &ClientSession::done)};
  }
};

class ShardStore {
 public:
  /// How many outcomes a session keeps at most (a client that never advances
  /// its ack floor cannot grow a replica without bound).
  static constexpr size_t kMaxSessionEntries = 4096;

  KeyedTable<TaskTable> tasks;
  KeyedTable<ObjectTable> objects;
  KeyedTable<ActorTable> actors;
  KeyedTable<NodeTable> nodes;

  template <class Tag>
  KeyedTable<Tag>& table() {
    return std::get<KeyedTable<Tag>&>(std::tie(tasks, objects, actors, nodes));
  }
  template <class Tag>
  const KeyedTable<Tag>& table() const {
    return const_cast<ShardStore*>(this)->table<Tag>();
  }

  /// Applies `e.op` (already validated) and fills e.result, e.notify,
  /// e.present and e.post; records the outcome in the client's session.
  void apply(LogEntry& e);

  enum class Seen { kNew, kDone, kStale };
  /// Whether request (client, incarnation, req_id) was applied already
  /// (kDone, with its entry), belongs to an old incarnation or below the
  /// client's ack floor (kStale: never answer it), or is new.
  std::pair<Seen, const SessionEntry*> seen(int client, uint64_t incarnation,
                                            uint64_t req_id) const;

  /// Read of one row: value = encoded record, or kNotFound.
  OpResult get(TableId table, std::span<const std::byte> key) const;
  /// Every row of `table`: value = u32 n, then n x (bytes key, bytes record).
  OpResult scan(TableId table) const;
  /// Ranks subscribed to `key` of `table` or to the whole table, ascending.
  std::vector<int> subscribers(TableId table, std::span<const std::byte> key) const;

  /// Whole state, for state transfer. decode() replaces this store.
  void encode(Writer& w) const;
  void decode(Reader& r);
  /// Whether anyone subscribes to `key` of `table` (or to the whole table).
  bool has_subscribers(TableId table, std::span<const std::byte> key) const;

 private:
  struct Outcome {  // what one op did
    OpResult result;
    bool notify = false;
    bool present = false;
    Bytes post;
  };
  /// A put of a run of tasks: appends a notice for each of its tasks that
  /// has subscribers and returns true (the caller publishes no run row).
  bool run_notices(const WriteOp& op, std::vector<BatchNotice>& out) const;
  /// Applies one non-batch op; `want_post`: fill the row after the write.
  Outcome apply_one(const WriteOp& op, int client, bool want_post);

  std::map<std::pair<TableId, Bytes>, std::set<int>> key_subs_;
  std::map<TableId, std::set<int>> table_subs_;
  std::map<int, ClientSession> sessions_;
};

/// Decodes a scan value into typed rows.
template <class Tag>
Expected<std::vector<std::pair<typename Tag::Key, typename Tag::Record>>> decode_scan(
    std::span<const std::byte> value) {
  Reader r(value);
  std::vector<std::pair<Bytes, Bytes>> raw;
  get_field(r, raw);
  PRISM_RETURN_IF_ERROR(r.finish("scan listing"));
  std::vector<std::pair<typename Tag::Key, typename Tag::Record>> out;
  for (const auto& [kb, rb] : raw) {
    auto k = decode_key<Tag>(kb);
    if (!k) return k.status();
    auto v = decode_record<Tag>(rb);
    if (!v) return v.status();
    out.emplace_back(std::move(*k), std::move(*v));
  }
  return out;
}

}  // namespace prism::gcs
