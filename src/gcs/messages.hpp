// GCS wire messages: one kind byte in 0x40..0x5F, then a codec.hpp body.
//
// Kinds 0x40..0x4F go to a GcsServer, 0x50..0x5F to a GcsClient, so the
// runtime can route a message by its first byte alone:
//   if (is_gcs_server_message(b[0])) server.handle(src, b);
//   else if (is_gcs_client_message(b[0])) client.handle(src, b);
//
// Internal to the GCS (the runtime only routes the bytes); public so that
// tests can forge and corrupt messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/codec.hpp"
#include "common/status.hpp"
#include "gcs/layout.hpp"
#include "gcs/records.hpp"

namespace prism::gcs {

enum class MsgKind : uint8_t {
  // client -> server
  kWriteRequest = 0x40,
  kReadRequest = 0x41,
  // server -> server
  kHeartbeat = 0x48,
  kForward = 0x49,
  kAck = 0x4A,
  kSyncRequest = 0x4B,
  kStateTransfer = 0x4C,
  // server -> client
  kReply = 0x50,
  kRedirect = 0x51,
  kNotify = 0x52,
};

/// Kinds reserved for the runtime's framing (runtime/gcs_wire.hpp): several
/// GCS messages to one rank in one transport message. GcsServer and GcsClient
/// never see them (their handle() rejects them).
inline constexpr std::byte kBundleToServer{0x4F};
inline constexpr std::byte kBundleToClient{0x5F};

constexpr bool is_gcs_message(std::byte first) noexcept {
  return first >= std::byte{0x40} && first <= std::byte{0x5F};
}
constexpr bool is_gcs_server_message(std::byte first) noexcept {
  return first >= std::byte{0x40} && first <= std::byte{0x4F};
}
constexpr bool is_gcs_client_message(std::byte first) noexcept {
  return first >= std::byte{0x50} && first <= std::byte{0x5F};
}

/// Mutations. Every one goes through the chain (subscriptions too, so that a
/// new tail knows every subscriber).
enum class OpKind : uint8_t {
  kPut = 1,             // table, key, record: insert or replace
  kRemove = 2,          // table, key
  kAddLocation = 3,     // objects: add `rank`; creates the row with size/owner if absent
  kRemoveLocation = 4,  // objects: remove `rank`
  kSetTaskState = 5,    // tasks: state and node of an existing row
  kSubscribe = 6,       // table, key (empty key = every key of the table on this shard)
  kUnsubscribe = 7,
  // Several of the ops above (kPut, kRemove, kAddLocation, kRemoveLocation,
  // kSetTaskState) on keys of one shard, as one write: one sequence number,
  // one log entry, one reply. Applied in order; each op succeeds or fails on
  // its own; the reply's value holds one Errc byte per op (batch_codes()).
  kBatch = 8,
  // table, key, record: inserts the row only if the key has none; else the
  // reply says kAlreadyExists and carries the existing row (actor names).
  kInsert = 9,
};
constexpr bool is_valid_op(uint8_t v) noexcept {
  return v >= 1 && v <= 9;
}
/// Most ops in one kBatch.
inline constexpr size_t kMaxBatchOps = 1024;

enum class ReadKind : uint8_t {
  kGet = 1,   // table, key -> record
  kScan = 2,  // table -> every (key, record) of the shard
};

/// One mutation. Fields beyond table/key are used by some kinds only.
struct WriteOp {
  OpKind kind = OpKind::kPut;
  TableId table = TableId::kTasks;
  Bytes key;
  Bytes record;                                // kPut, kInsert
  int32_t rank = -1;                           // kAddLocation, kRemoveLocation
  uint64_t size = 0;                           // kAddLocation
  int32_t owner = -1;                          // kAddLocation
  TaskState task_state = TaskState::kPending;  // kSetTaskState
  int32_t node = -1;                           // kSetTaskState
  std::vector<WriteOp> ops;                    // kBatch (table and key unused)
  friend bool operator==(const WriteOp&, const WriteOp&) = default;
};

/// Builds an op; the kind-specific fields are set afterwards.
inline WriteOp make_op(OpKind kind, TableId table, Bytes key, Bytes record = {}) {
  WriteOp op;
  op.kind = kind;
  op.table = table;
  op.key = std::move(key);
  op.record = std::move(record);
  return op;
}

/// A kBatch of `ops` (all on keys of the shard it is sent to).
/// Example: `client.write(shard, make_batch({op1, op2}), done);`
inline WriteOp make_batch(std::vector<WriteOp> ops) {
  WriteOp op;
  op.kind = OpKind::kBatch;
  op.table = TableId::kTasks;  // unused
  op.ops = std::move(ops);
  return op;
}

/// Semantic checks of a decoded op: known table, well-formed key (empty only
/// for table-wide subscriptions), record of the right table, kind allowed on
/// the table. kNotFound for an unknown table, kInvalidArgument otherwise.
Status validate(const WriteOp& op);

/// What a request produced: a code, a message, and maybe a value (an encoded
/// record, or a scan listing).
struct OpResult {
  Errc code = Errc::kOk;
  std::string message;
  bool has_value = false;
  Bytes value;

  Status status() const { return code == Errc::kOk ? Status::ok() : Status{code, message}; }
  static OpResult error(Status s) { return {s.code(), s.message(), false, {}}; }
  friend bool operator==(const OpResult&, const OpResult&) = default;
};

/// The per-op codes of a kBatch's result (ok result, one byte per op); an
/// error result (the whole batch was refused) gives its Status.
Expected<std::vector<Errc>> batch_codes(const OpResult& r);

/// A write as it travels down a chain and sits in a replica's log.
/// A row a kBatch changed, to publish at commit (see LogEntry::notices).
struct BatchNotice {
  TableId table = TableId::kTasks;
  Bytes key;
  bool present = false;
  Bytes post;
  friend bool operator==(const BatchNotice&, const BatchNotice&) = default;
};

struct LogEntry {
  uint64_t seq = 0;          // position in the shard's history (1, 2, ...)
  int32_t client = -1;       // rank that asked, gets the reply
  uint64_t incarnation = 0;  // client process incarnation (duplicate detection)
  uint64_t req_id = 0;
  uint64_t ack_floor = 0;  // client has every reply below this request id
  WriteOp op;
  // Outcome of applying it (computed by every replica; shipped only inside a
  // state transfer, where the receiver does not re-apply).
  OpResult result;
  bool notify = false;   // the write changed a row: publish at commit
  bool present = false;  // the row exists after the write
  Bytes post;            // the row after the write (when present)
  // kBatch: the rows it changed that had subscribers when it was applied
  // (one per key, the last state), published at commit like `post`.
  std::vector<BatchNotice> notices;
};

struct WriteRequest {
  uint64_t req_id = 0;
  uint64_t incarnation = 0;
  uint64_t ack_floor = 0;
  uint32_t shard = 0;
  WriteOp op;
};

struct ReadRequest {
  uint64_t req_id = 0;
  uint32_t shard = 0;
  ReadKind kind = ReadKind::kGet;
  TableId table = TableId::kTasks;
  Bytes key;
};

struct Reply {
  uint64_t req_id = 0;
  uint64_t seq = 0;  // commit position of a write (0 for reads)
  OpResult result;
};

struct Redirect {
  uint64_t req_id = 0;
  uint32_t shard = 0;
  ChainConfig config;
};

struct Notify {
  uint32_t shard = 0;
  uint64_t seq = 0;  // version of the row (grows with every write to the shard)
  TableId table = TableId::kTasks;
  Bytes key;
  bool present = false;
  Bytes value;
};

struct Heartbeat {
  std::vector<std::pair<uint32_t, ChainConfig>> configs;  // sender's view of every shard
};

struct Forward {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  LogEntry entry;
};

struct Ack {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  uint64_t committed = 0;  // cumulative: every seq <= committed is at the tail
};

struct SyncRequest {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  bool installed = false;  // false: the sender has no state yet (a joining spare)
  uint64_t applied = 0;
};

struct StateTransfer {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  Bytes state;  // ReplicaState, see store.hpp
};

/// The kind byte of a message, or an error for an empty / foreign message.
Expected<MsgKind> peek_kind(std::span<const std::byte> msg);

// encode(x) -> whole message including the kind byte.
// decode(msg, x) -> validates the kind byte and every field; exact length.
Bytes encode(const WriteRequest& m);
Bytes encode(const ReadRequest& m);
Bytes encode(const Reply& m);
Bytes encode(const Redirect& m);
Bytes encode(const Notify& m);
Bytes encode(const Heartbeat& m);
Bytes encode(const Forward& m);
Bytes encode(const Ack& m);
Bytes encode(const SyncRequest& m);
Bytes encode(const StateTransfer& m);
/// encode(Forward{shard, epoch, entry}) without copying the entry.
Bytes encode_forward(uint32_t shard, uint64_t epoch, const LogEntry& entry);
Status decode(std::span<const std::byte> msg, WriteRequest& m);
Status decode(std::span<const std::byte> msg, ReadRequest& m);
Status decode(std::span<const std::byte> msg, Reply& m);
Status decode(std::span<const std::byte> msg, Redirect& m);
Status decode(std::span<const std::byte> msg, Notify& m);
Status decode(std::span<const std::byte> msg, Heartbeat& m);
Status decode(std::span<const std::byte> msg, Forward& m);
Status decode(std::span<const std::byte> msg, Ack& m);
Status decode(std::span<const std::byte> msg, SyncRequest& m);
Status decode(std::span<const std::byte> msg, StateTransfer& m);

// Building blocks shared with store.cpp (state transfer).
void put_op(Writer& w, const WriteOp& op);
void get_op(Reader& r, WriteOp& op);
void put_result(Writer& w, const OpResult& res);
void get_result(Reader& r, OpResult& res);
void put_entry(Writer& w, const LogEntry& e, bool with_outcome);
void get_entry(Reader& r, LogEntry& e, bool with_outcome);
void put_config(Writer& w, const ChainConfig& c);
void get_config(Reader& r, ChainConfig& c);

}  // namespace prism::gcs
