// GcsClient: asynchronous access to the GCS from any rank.
//
// Every call returns at once and completes through its callback, which runs
// inside a later handle() or tick() on the caller's thread. Requests carry ids
// and are retried transparently (a timed-out request goes to another replica;
// a replica that is not the head/tail answers with the current chain); the
// servers detect retried writes, so each write takes effect once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "gcs/layout.hpp"
#include "gcs/messages.hpp"
#include "gcs/outbox.hpp"
#include "gcs/records.hpp"
#include "gcs/store.hpp"

namespace prism::gcs {

struct GcsClientOptions {
  uint64_t request_timeout_us = 200'000;  // first retry after this long without a reply
  uint64_t max_backoff_us = 2'000'000;    // retry interval doubles up to this
  int max_attempts = 40;                  // then the callback gets kTimeout
  /// Identifies this client process across restarts of a rank (writes of an
  /// older incarnation are refused). 0 = microseconds of the wall clock.
  uint64_t incarnation = 0;
};

/// Completion of a write: ok, or why it failed (kNotFound for a remove of a
/// missing row, kInvalidArgument for a bad request, kTimeout after retries).
using DoneCallback = std::function<void(Status)>;
template <class Tag>
using GetCallback = std::function<void(Expected<typename Tag::Record>)>;
template <class Tag>
using ScanCallback =
    std::function<void(Expected<std::vector<std::pair<typename Tag::Key, typename Tag::Record>>>)>;
/// A subscribed row changed: its new value (nullopt: removed) and version
/// (grows with every write; per key, a larger version is newer).
template <class Tag>
using NotifyCallback = std::function<void(
    const typename Tag::Key&, const std::optional<typename Tag::Record>&, uint64_t version)>;
/// Byte-level completion: the server's result and the commit position.
using RawCallback = std::function<void(const OpResult&, uint64_t seq)>;
using RawNotifyCallback = std::function<void(const Notify&)>;

/// Not thread-safe: call everything from one thread (the rank's progress
/// loop); callbacks run there too and may issue new calls.
/// Example:
///   gcs::GcsClient gcs(layout, my_rank, outbox);
///   gcs.put<gcs::ObjectTable>(id, {.locations = {3}, .size = 64, .owner = 3},
///                             [](Status s) { assert(s); });
///   gcs.subscribe<gcs::ObjectTable>(id, [](auto& id, auto& row, uint64_t v) { ... });
///   // in the progress loop: gcs.handle(src, msg) for 0x50..0x5F; gcs.tick(now_us())
class GcsClient {
 public:
  GcsClient(GcsLayout layout, int my_rank, Outbox& out, GcsClientOptions options = {});

  /// Processes a reply, redirect or notification (first byte 0x50..0x5F).
  /// Malformed or unexpected messages are dropped; the Status says why.
  Status handle(int src, std::span<const std::byte> msg);
  /// Retries requests whose reply is overdue; fails those out of attempts.
  void tick(uint64_t now_us);
  /// When tick() next has something to do (UINT64_MAX: nothing pending).
  uint64_t next_deadline_us() const;
  /// Requests sent and not yet completed.
  size_t in_flight() const noexcept { return pending_.size(); }
  /// This client's idea of a shard's chain (updated by redirects).
  const ChainConfig& view(int shard) const;
  int rank() const noexcept { return rank_; }
  const GcsLayout& layout() const noexcept { return layout_; }

  // ---- typed calls, one set per table (Tag = TaskTable, ObjectTable, ...) ----

  /// Inserts or replaces a row.
  template <class Tag>
  void put(const typename Tag::Key& key, const typename Tag::Record& rec, DoneCallback done) {
    WriteOp op = make_op(OpKind::kPut, Tag::id, encode_key<Tag>(key), encode_record<Tag>(rec));
    write_keyed(std::move(op), status_of(std::move(done)));
  }
  /// Inserts a row only if the key has none; otherwise `done` gets
  /// kAlreadyExists and the row that is there. Not for the tasks table.
  template <class Tag>
  void insert(const typename Tag::Key& key, const typename Tag::Record& rec,
              std::function<void(Status, std::optional<typename Tag::Record> existing)> done) {
    write_keyed(make_op(OpKind::kInsert, Tag::id, encode_key<Tag>(key), encode_record<Tag>(rec)),
                [done = std::move(done)](const OpResult& r, uint64_t) {
                  std::optional<typename Tag::Record> existing;
                  if (r.code == Errc::kAlreadyExists && r.has_value)
                    if (auto v = decode_record<Tag>(r.value)) existing = std::move(*v);
                  done(r.status(), std::move(existing));
                });
  }
  /// Reads a row from the tail (kNotFound if absent).
  template <class Tag>
  void get(const typename Tag::Key& key, GetCallback<Tag> done) {
    Bytes k = encode_key<Tag>(key);
    const auto shard = static_cast<uint32_t>(layout_.shard_of(Tag::id, k));
    read(shard, ReadKind::kGet, Tag::id, std::move(k),
         [done = std::move(done)](const OpResult& r, uint64_t) {
           if (r.code != Errc::kOk) return done(r.status());
           done(decode_record<Tag>(r.value));
         });
  }
  template <class Tag>
  void remove(const typename Tag::Key& key, DoneCallback done) {
    write_keyed(make_op(OpKind::kRemove, Tag::id, encode_key<Tag>(key)),
                status_of(std::move(done)));
  }
  /// Calls `on_change` after every committed change of the row, and once on
  /// completion with the current row if it exists. One subscription per
  /// (table, key) per client: subscribing again replaces the callback.
  template <class Tag>
  void subscribe(const typename Tag::Key& key, NotifyCallback<Tag> on_change,
                 DoneCallback done = {}) {
    subscribe_key(Tag::id, encode_key<Tag>(key), typed_notify<Tag>(std::move(on_change)),
                  std::move(done));
  }
  template <class Tag>
  void unsubscribe(const typename Tag::Key& key, DoneCallback done = {}) {
    Bytes k = encode_key<Tag>(key);
    key_subs_.erase({Tag::id, k});
    write_keyed(make_op(OpKind::kUnsubscribe, Tag::id, std::move(k)), status_of(std::move(done)));
  }
  /// Every committed change of any row of the table (e.g. NodeTable: node
  /// death). Delivery is at least once; order by `version` per key.
  template <class Tag>
  void subscribe_all(NotifyCallback<Tag> on_change, DoneCallback done = {}) {
    table_subs_[Tag::id] = typed_notify<Tag>(std::move(on_change));
    write_all_shards(make_op(OpKind::kSubscribe, Tag::id, {}), std::move(done));
  }
  template <class Tag>
  void unsubscribe_all(DoneCallback done = {}) {
    table_subs_.erase(Tag::id);
    write_all_shards(make_op(OpKind::kUnsubscribe, Tag::id, {}), std::move(done));
  }
  /// Every row of the table, gathered from every shard's tail.
  template <class Tag>
  void scan(ScanCallback<Tag> done) {
    auto read_shard = [&](uint32_t s, RawCallback cb) {
      read(s, ReadKind::kScan, Tag::id, {}, std::move(cb));
    };
    each_shard(read_shard, [done = std::move(done)](Expected<std::vector<Bytes>> parts) {
      if (!parts) return done(parts.status());
      std::vector<std::pair<typename Tag::Key, typename Tag::Record>> all;
      for (const Bytes& p : *parts) {
        auto rows = decode_scan<Tag>(p);
        if (!rows) return done(rows.status());
        for (auto& row : *rows) all.push_back(std::move(row));
      }
      done(std::move(all));
    });
  }

  // ---- table-specific updates (atomic on the server) ----

  /// Adds `rank` to the object's locations (creating the row with size/owner).
  void add_object_location(const ObjectId& id, int32_t rank, uint64_t size, int32_t owner,
                           DoneCallback done);
  /// Removes `rank` from the object's locations (kNotFound if no row).
  void remove_object_location(const ObjectId& id, int32_t rank, DoneCallback done);
  /// Sets state and node of an existing task row (kNotFound if no row).
  void set_task_state(const TaskId& id, TaskState state, int32_t node, DoneCallback done);

  // ---- byte level (tests, tools) ----

  /// Sends a write to `shard`'s head and retries it until answered.
  void write(uint32_t shard, WriteOp op, RawCallback done);
  /// Sends a read to `shard`'s tail and retries it until answered.
  void read(uint32_t shard, ReadKind kind, TableId table, Bytes key, RawCallback done);

 private:
  struct Pending {
    bool is_write = false;
    uint32_t shard = 0;
    Bytes msg;
    RawCallback done;
    uint64_t deadline = 0;
    int attempts = 0;      // sends so far
    int rotation = 0;      // index into the target order
    int last_target = -1;  // where the latest attempt went
  };
  struct KeySub {
    RawNotifyCallback cb;
    uint64_t last_seq = 0;
  };

  template <class Tag>
  static RawNotifyCallback typed_notify(NotifyCallback<Tag> cb) {
    return [cb = std::move(cb)](const Notify& n) {
      auto k = decode_key<Tag>(n.key);
      if (!k) return;
      if (!n.present) return cb(*k, std::nullopt, n.seq);
      auto v = decode_record<Tag>(n.value);
      if (v) cb(*k, std::optional<typename Tag::Record>(std::move(*v)), n.seq);
    };
  }

  /// Sends `op` to the head of its key's shard.
  void write_keyed(WriteOp op, RawCallback done);
  /// Gives `done` (if any) the status of a write's result.
  static RawCallback status_of(DoneCallback done);
  void subscribe_key(TableId table, Bytes key, RawNotifyCallback cb, DoneCallback done);
  /// Sends one request to every shard (`send(shard, reply)`); `done` gets the
  /// replies' values in the order they came, or the first error.
  void each_shard(const std::function<void(uint32_t, RawCallback)>& send,
                  std::function<void(Expected<std::vector<Bytes>>)> done);
  /// Runs `op` on every shard; `done` gets the first error, or ok.
  void write_all_shards(const WriteOp& op, DoneCallback done);

  void submit(bool is_write, uint32_t shard, Bytes msg, RawCallback done);
  void transmit(Pending& p);
  int target_of(const Pending& p) const;
  uint64_t backoff(int attempts) const;
  uint64_t ack_floor() const;

  GcsLayout layout_;
  int rank_;
  Outbox& out_;
  GcsClientOptions opt_;
  std::vector<ChainConfig> view_;
  // Per shard, the rank that last answered a write (head) / read (tail)
  // that our view's head / tail did not: tried first until a redirect brings
  // a newer view. After a failover the retry that succeeds often reaches the
  // new head directly, which answers instead of redirecting, so without this
  // every later request would first wait out a timeout at the dead rank.
  std::vector<int> write_hint_, read_hint_;
  std::map<uint64_t, Pending> pending_;  // by request id; begin() is the ack floor
  std::map<std::pair<TableId, Bytes>, KeySub> key_subs_;
  std::map<TableId, RawNotifyCallback> table_subs_;
  uint64_t next_req_id_ = 1;
  uint64_t now_ = 0;
  bool ticked_ = false;
};

}  // namespace prism::gcs
