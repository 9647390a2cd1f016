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
#include <tuple>
#include <utility>
#include <vector>

#include "common/codec.hpp"
#include "common/status.hpp"
#include "gcs/columns.hpp"
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
  Bytes key{};
  Bytes record{};                              // kPut, kInsert
  int32_t rank = -1;                           // kAddLocation, kRemoveLocation
  uint64_t size = 0;                           // kAddLocation
  int32_t owner = -1;                          // kAddLocation
  TaskState task_state = TaskState::kPending;  // kSetTaskState
  int32_t node = -1;                           // kSetTaskState
  std::vector<WriteOp> ops{};                  // kBatch (table and key unused)
  friend bool operator==(const WriteOp&, const WriteOp&) = default;
};

/// Builds an op; the kind-specific fields are set afterwards.
inline WriteOp make_op(OpKind kind, TableId table, Bytes key, Bytes record = {}) {
  return {.kind = kind, .table = table, .key = std::move(key), .record = std::move(record)};
}

/// A kBatch of `ops` (all on keys of the shard it is sent to).
/// Example: `client.write(shard, make_batch({op1, op2}), done);`
inline WriteOp make_batch(std::vector<WriteOp> ops) {
  return {.kind = OpKind::kBatch, .ops = std::move(ops)};
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

/// A row a kBatch changed, to publish at commit (see LogEntry::notices).
struct BatchNotice {
  TableId table = TableId::kTasks;
  Bytes key;
  bool present = false;
  Bytes post;
  friend bool operator==(const BatchNotice&, const BatchNotice&) = default;
};

/// A write as it travels down a chain and sits in a replica's log.
struct LogEntry {
  uint64_t seq = 0;          // position in the shard's history (1, 2, ...)
  int32_t client = -1;       // rank that asked, gets the reply
  uint64_t incarnation = 0;  // client process incarnation (duplicate detection)
  uint64_t req_id = 0;
  uint64_t ack_floor = 0;  // client has every reply below this request id
  WriteOp op;
  // Outcome of applying it (computed by every replica; shipped only inside a
  // state transfer, where the receiver does not re-apply).
  OpResult result{};
  bool notify = false;   // the write changed a row: publish at commit
  bool present = false;  // the row exists after the write
  Bytes post{};          // the row after the write (when present)
  // kBatch: the rows it changed that had subscribers when it was applied
  // (one per key, the last state), published at commit like `post`.
  std::vector<BatchNotice> notices{};
  static constexpr auto columns() {  // as a Forward carries it (the outcome: put_entry)
    return std::tuple{column(
                          "seq", &LogEntry::seq, +[](const uint64_t& s) { return s != 0; }),
                      column(
                          "client", &LogEntry::client, +[](const int32_t& c) { return c >= 0; }),
                      column("incarnation", &LogEntry::incarnation),
                      column("req_id", &LogEntry::req_id),
                      column("ack_floor", &LogEntry::ack_floor),
                      column("op", &LogEntry::op)};
  }
};

// ---- messages -------------------------------------------------------------
// Each message lists its fields once (columns(): fields(...), in wire order);
// encode() and decode() follow from the list, as a record's codec does
// (gcs/columns.hpp). decode() validates the kind byte, every field and the
// exact length, then the message's own check() where it has one.

/// Unnamed columns: a message's fields in wire order.
template <class R, class... T>
constexpr auto fields(T R::*... members) {
  return std::tuple{Column<R, T>{nullptr, members}...};
}

// Field codecs of the composite fields (messages.cpp).
void put_field(Writer& w, const WriteOp& op);
void get_field(Reader& r, WriteOp& op);
void put_field(Writer& w, const OpResult& res);
void get_field(Reader& r, OpResult& res);
void put_field(Writer& w, const ChainConfig& c);
void get_field(Reader& r, ChainConfig& c);
/// A log entry as a Forward carries it, then (`with_outcome`: in a state
/// transfer) what applying it gave.
void put_entry(Writer& w, const LogEntry& e, bool with_outcome);
void get_entry(Reader& r, LogEntry& e, bool with_outcome);
inline void put_op(Writer& w, const WriteOp& op) {
  put_field(w, op);
}
inline void get_op(Reader& r, WriteOp& op) {
  get_field(r, op);
}
inline void get_config(Reader& r, ChainConfig& c) {
  get_field(r, c);
}
/// A table byte as sent: an unknown table is the server's to refuse (an
/// error reply), not a malformed message; a notification checks its own.
inline void put_field(Writer& w, const TableId& v) {
  w.put<uint8_t>(static_cast<uint8_t>(v));
}
inline void get_field(Reader& r, TableId& v) {
  v = static_cast<TableId>(r.get<uint8_t>());
}
inline void put_field(Writer& w, const ReadKind& v) {
  w.put<uint8_t>(static_cast<uint8_t>(v));
}
inline void get_field(Reader& r, ReadKind& v) {
  const auto k = r.get<uint8_t>();
  if (k < 1 || k > 2) r.fail();
  v = static_cast<ReadKind>(k);
}
template <>
struct WireMin<ChainConfig> {
  static constexpr size_t value = 12;
};
template <>
struct WireMin<OpResult> {
  static constexpr size_t value = 6;  // code, message length, has_value
};

struct WriteRequest {
  uint64_t req_id = 0;
  uint64_t incarnation = 0;
  uint64_t ack_floor = 0;
  uint32_t shard = 0;
  WriteOp op;
  static constexpr MsgKind msg_kind = MsgKind::kWriteRequest;
  static constexpr const char* what = "GCS write request";
  static constexpr auto columns() {
    return fields(&WriteRequest::req_id, &WriteRequest::incarnation, &WriteRequest::ack_floor,
                  &WriteRequest::shard, &WriteRequest::op);
  }
};

struct ReadRequest {
  uint64_t req_id = 0;
  uint32_t shard = 0;
  ReadKind kind = ReadKind::kGet;
  TableId table = TableId::kTasks;
  Bytes key;
  static constexpr MsgKind msg_kind = MsgKind::kReadRequest;
  static constexpr const char* what = "GCS read request";
  static constexpr auto columns() {
    return fields(&ReadRequest::req_id, &ReadRequest::shard, &ReadRequest::kind,
                  &ReadRequest::table, &ReadRequest::key);
  }
};

struct Reply {
  uint64_t req_id = 0;
  uint64_t seq = 0;  // commit position of a write (0 for reads)
  OpResult result;
  static constexpr MsgKind msg_kind = MsgKind::kReply;
  static constexpr const char* what = "GCS reply";
  static constexpr auto columns() { return fields(&Reply::req_id, &Reply::seq, &Reply::result); }
};

struct Redirect {
  uint64_t req_id = 0;
  uint32_t shard = 0;
  ChainConfig config;
  static constexpr MsgKind msg_kind = MsgKind::kRedirect;
  static constexpr const char* what = "GCS redirect";
  static constexpr auto columns() {
    return fields(&Redirect::req_id, &Redirect::shard, &Redirect::config);
  }
};

struct Notify {
  uint32_t shard = 0;
  uint64_t seq = 0;  // version of the row (grows with every write to the shard)
  TableId table = TableId::kTasks;
  Bytes key;
  bool present = false;
  Bytes value;  // empty when not present
  static constexpr MsgKind msg_kind = MsgKind::kNotify;
  static constexpr const char* what = "GCS notification";
  static constexpr auto columns() {
    return fields(&Notify::shard, &Notify::seq, &Notify::table, &Notify::key, &Notify::present,
                  &Notify::value);
  }
  Status check() const {
    if (is_valid_table(static_cast<uint8_t>(table))) return Status::ok();
    return {Errc::kMalformedMessage, "GCS notification for an unknown table"};
  }
};

struct Heartbeat {
  std::vector<std::pair<uint32_t, ChainConfig>> configs;  // sender's view of every shard
  static constexpr MsgKind msg_kind = MsgKind::kHeartbeat;
  static constexpr const char* what = "GCS heartbeat";
  static constexpr auto columns() { return fields(&Heartbeat::configs); }
};

struct Forward {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  LogEntry entry;
  static constexpr MsgKind msg_kind = MsgKind::kForward;
  static constexpr const char* what = "GCS forward";
  static constexpr auto columns() {
    return fields(&Forward::shard, &Forward::epoch, &Forward::entry);
  }
  /// A forward is never answered, so a bad op in it is simply refused.
  Status check() const { return validate(entry.op); }
};

struct Ack {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  uint64_t committed = 0;  // cumulative: every seq <= committed is at the tail
  static constexpr MsgKind msg_kind = MsgKind::kAck;
  static constexpr const char* what = "GCS ack";
  static constexpr auto columns() { return fields(&Ack::shard, &Ack::epoch, &Ack::committed); }
};

struct SyncRequest {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  bool installed = false;  // false: the sender has no state yet (a joining spare)
  uint64_t applied = 0;
  static constexpr MsgKind msg_kind = MsgKind::kSyncRequest;
  static constexpr const char* what = "GCS sync request";
  static constexpr auto columns() {
    return fields(&SyncRequest::shard, &SyncRequest::epoch, &SyncRequest::installed,
                  &SyncRequest::applied);
  }
};

struct StateTransfer {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  Bytes state;  // ReplicaState, see store.hpp
  static constexpr MsgKind msg_kind = MsgKind::kStateTransfer;
  static constexpr const char* what = "GCS state transfer";
  static constexpr auto columns() {
    return fields(&StateTransfer::shard, &StateTransfer::epoch, &StateTransfer::state);
  }
};

/// The kind byte of a message, or an error for an empty / foreign message.
Expected<MsgKind> peek_kind(std::span<const std::byte> msg);

/// The whole message, kind byte first.
template <class M>
requires requires {
  M::what;
}
Bytes encode(const M& m) {
  Writer w(64);
  w.put<uint8_t>(static_cast<uint8_t>(M::msg_kind));
  put_field(w, m);
  return w.take();
}

/// Checks the kind byte and positions a reader after it (messages.cpp).
Status open_message(Reader& r, MsgKind want);

template <class M>
requires requires {
  M::what;
}
Status decode(std::span<const std::byte> msg, M& m) {
  Reader r(msg);
  PRISM_RETURN_IF_ERROR(open_message(r, M::msg_kind));
  get_field(r, m);
  PRISM_RETURN_IF_ERROR(r.finish(M::what));
  if constexpr (requires { m.check(); }) return m.check();
  return Status::ok();
}

/// encode(Forward{shard, epoch, entry}) without copying the entry.
Bytes encode_forward(uint32_t shard, uint64_t epoch, const LogEntry& entry);

}  // namespace prism::gcs
