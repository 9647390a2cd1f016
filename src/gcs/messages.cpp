#include "gcs/messages.hpp"

#include <algorithm>

namespace prism::gcs {
constexpr uint32_t kMaxChainLength = 1024;  // sanity bound on decoded configs

Status open_message(Reader& r, MsgKind want) {
  auto k = r.get<uint8_t>();
  if (!r.ok()) return {Errc::kMalformedMessage, "empty GCS message"};
  if (k != static_cast<uint8_t>(want))
    return {Errc::kMalformedMessage, "GCS message kind " + std::to_string(k) + ", expected " +
                                         std::to_string(static_cast<int>(want))};
  return Status::ok();
}

Status validate(const WriteOp& op) {
  if (op.kind == OpKind::kBatch) {
    if (op.ops.empty() || op.ops.size() > kMaxBatchOps)
      return {Errc::kInvalidArgument, "a batch holds 1.." + std::to_string(kMaxBatchOps) +
                                          " ops, not " + std::to_string(op.ops.size())};
    for (const WriteOp& sub : op.ops) {
      if (sub.kind == OpKind::kSubscribe || sub.kind == OpKind::kUnsubscribe ||
          sub.kind == OpKind::kBatch)
        return {Errc::kInvalidArgument, "a batch holds puts, removes and updates only"};
      PRISM_RETURN_IF_ERROR(validate(sub));
    }
    return Status::ok();
  }
  if (!op.ops.empty()) return {Errc::kInvalidArgument, "sub-ops outside a batch"};
  if (!is_valid_table(static_cast<uint8_t>(op.table)))
    return {Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(op.table))};
  const bool table_wide_ok = op.kind == OpKind::kSubscribe || op.kind == OpKind::kUnsubscribe;
  if (!(table_wide_ok && op.key.empty())) PRISM_RETURN_IF_ERROR(validate_key(op.table, op.key));
  switch (op.kind) {
    case OpKind::kPut:
      if (op.table == TableId::kTasks) {  // the row may stand for a run of tasks
        auto k = decode_key<TaskTable>(op.key);
        auto v = decode_record<TaskTable>(op.record);
        if (!v) return {Errc::kInvalidArgument, v.status().message()};
        return validate_task_run(*k, *v);  // the key was validated above
      }
      return validate_record(op.table, op.record);
    case OpKind::kInsert:
      if (op.table == TableId::kTasks)
        return {Errc::kInvalidArgument, "insert does not apply to the tasks table (runs)"};
      return validate_record(op.table, op.record);
    case OpKind::kAddLocation:
    case OpKind::kRemoveLocation:
      if (op.table != TableId::kObjects)
        return {Errc::kInvalidArgument, "location ops apply to the objects table only"};
      if (op.rank < 0) return {Errc::kInvalidArgument, "negative location rank"};
      return Status::ok();
    case OpKind::kSetTaskState:
      if (op.table != TableId::kTasks)
        return {Errc::kInvalidArgument, "set_task_state applies to the tasks table only"};
      if (static_cast<uint8_t>(op.task_state) > static_cast<uint8_t>(TaskState::kFailed))
        return {Errc::kInvalidArgument, "bad task state"};
      return Status::ok();
    case OpKind::kRemove:
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe:
    case OpKind::kBatch:
      return Status::ok();
  }
  return {Errc::kInvalidArgument, "unknown op " + std::to_string(static_cast<int>(op.kind))};
}

Expected<std::vector<Errc>> batch_codes(const OpResult& r) {
  if (r.code != Errc::kOk) return r.status();
  if (!r.has_value) return Status{Errc::kMalformedMessage, "batch result without codes"};
  std::vector<Errc> codes;
  codes.reserve(r.value.size());
  for (std::byte b : r.value) {
    if (static_cast<uint8_t>(b) > static_cast<uint8_t>(kLastErrc))
      return Status{Errc::kMalformedMessage, "bad code in a batch result"};
    codes.push_back(static_cast<Errc>(b));
  }
  return codes;
}

Expected<MsgKind> peek_kind(std::span<const std::byte> msg) {
  if (msg.empty()) return Status{Errc::kMalformedMessage, "empty GCS message"};
  if (!is_gcs_message(msg[0]))
    return Status{Errc::kMalformedMessage,
                  "not a GCS message (kind " + std::to_string(static_cast<int>(msg[0])) + ")"};
  return static_cast<MsgKind>(msg[0]);
}

// ---- building blocks --------------------------------------------------------

namespace {

// The fields an op of `kind` carries after its kind, table and key, in wire
// order: f(&WriteOp::field) for each. (A kBatch's sub-ops follow them.)
template <class F>
void for_each_op_field(OpKind kind, F&& f) {
  switch (kind) {
    case OpKind::kPut:
    case OpKind::kInsert:
      return f(&WriteOp::record);
    case OpKind::kAddLocation:
      f(&WriteOp::rank);
      f(&WriteOp::size);
      return f(&WriteOp::owner);
    case OpKind::kRemoveLocation:
      return f(&WriteOp::rank);
    case OpKind::kSetTaskState:
      f(&WriteOp::task_state);
      return f(&WriteOp::node);
    case OpKind::kRemove:
    case OpKind::kSubscribe:
    case OpKind::kUnsubscribe:
    case OpKind::kBatch:
      return;
  }
}

// Structural decoding only: the table byte is kept as is (validate() turns an
// unknown table into an error reply), but an unknown op kind fails the reader
// because the rest of the layout depends on it.
void get_op(Reader& r, WriteOp& op, bool nested) {
  const auto kind = r.get<uint8_t>();
  if (!is_valid_op(kind)) return r.fail();
  op = WriteOp{};
  op.kind = static_cast<OpKind>(kind);
  op.table = static_cast<TableId>(r.get<uint8_t>());
  get_field(r, op.key);
  for_each_op_field(op.kind, [&](auto field) { get_field(r, op.*field); });
  if (op.kind != OpKind::kBatch) return;
  // One level only; every op takes at least 6 bytes (kind, table, key length).
  const auto n = r.get<uint32_t>();
  if (nested || !r.ok() || n > kMaxBatchOps || static_cast<size_t>(n) * 6 > r.rest().size())
    return r.fail();
  op.ops.resize(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) get_op(r, op.ops[i], /*nested=*/true);
}

// A flag byte (0 or 1), then `b` when the flag is set.
void put_maybe(Writer& w, bool set, const Bytes& b) {
  put_field(w, set);
  if (set) put_field(w, b);
}
void get_maybe(Reader& r, bool& set, Bytes& b) {
  get_field(r, set);
  b.clear();
  if (set) get_field(r, b);
}

}  // namespace

void put_field(Writer& w, const WriteOp& op) {
  w.put<uint8_t>(static_cast<uint8_t>(op.kind));
  w.put<uint8_t>(static_cast<uint8_t>(op.table));
  put_field(w, op.key);
  for_each_op_field(op.kind, [&](auto field) { put_field(w, op.*field); });
  if (op.kind != OpKind::kBatch) return;
  w.put<uint32_t>(static_cast<uint32_t>(op.ops.size()));
  for (const WriteOp& sub : op.ops) put_field(w, sub);
}

void get_field(Reader& r, WriteOp& op) {
  get_op(r, op, /*nested=*/false);
}

void put_field(Writer& w, const OpResult& res) {
  w.put<uint8_t>(static_cast<uint8_t>(res.code));
  w.put_string(res.message);
  put_maybe(w, res.has_value, res.value);
}

void get_field(Reader& r, OpResult& res) {
  const auto code = r.get<uint8_t>();
  if (code > static_cast<uint8_t>(kLastErrc)) r.fail();
  res.code = static_cast<Errc>(code);
  res.message = r.get_string();
  get_maybe(r, res.has_value, res.value);
}

void put_entry(Writer& w, const LogEntry& e, bool with_outcome) {
  put_field(w, e);
  if (!with_outcome) return;
  put_field(w, e.result);
  w.put<uint8_t>(static_cast<uint8_t>((e.notify ? 1 : 0) | (e.present ? 2 : 0)));
  if (e.present) put_field(w, e.post);
  if (e.op.kind != OpKind::kBatch) return;
  w.put<uint32_t>(static_cast<uint32_t>(e.notices.size()));
  for (const BatchNotice& n : e.notices) {
    put_field(w, n.table);
    put_field(w, n.key);
    put_maybe(w, n.present, n.post);
  }
}

void get_entry(Reader& r, LogEntry& e, bool with_outcome) {
  e = LogEntry{};
  get_field(r, e);
  if (!with_outcome) return;
  get_field(r, e.result);
  const auto flags = r.get<uint8_t>();
  if (flags > 3) r.fail();
  e.notify = (flags & 1) != 0;
  e.present = (flags & 2) != 0;
  if (e.present) get_field(r, e.post);
  if (e.op.kind != OpKind::kBatch || !r.ok()) return;
  const auto n = r.get<uint32_t>();
  if (!r.ok() || n > e.op.ops.size() || static_cast<size_t>(n) * 6 > r.rest().size()) {
    r.fail();
    return;
  }
  e.notices.resize(n);
  for (BatchNotice& b : e.notices) {
    get_field(r, b.table);
    if (!is_valid_table(static_cast<uint8_t>(b.table))) r.fail();
    get_field(r, b.key);
    get_maybe(r, b.present, b.post);
  }
}

void put_field(Writer& w, const ChainConfig& c) {
  w.put<uint64_t>(c.epoch);
  w.put<uint32_t>(static_cast<uint32_t>(c.members.size()));
  for (size_t i = 0; i < c.members.size(); ++i) {
    w.put<int32_t>(c.members[i]);
    w.put<uint64_t>(i < c.joined.size() ? c.joined[i] : 0);
  }
}

void get_field(Reader& r, ChainConfig& c) {
  c.epoch = r.get<uint64_t>();
  const auto n = r.get<uint32_t>();
  if (!r.ok() || n > kMaxChainLength || static_cast<size_t>(n) * 12 > r.rest().size()) {
    r.fail();
    c.members.clear();
    c.joined.clear();
    return;
  }
  c.members.resize(n);
  c.joined.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    c.members[i] = r.get<int32_t>();
    c.joined[i] = r.get<uint64_t>();
    if (c.members[i] < 0 || c.joined[i] == 0 || c.joined[i] > c.epoch) r.fail();
  }
  auto sorted = c.members;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) r.fail();
}

// ---- messages ---------------------------------------------------------------

Bytes encode_forward(uint32_t shard, uint64_t epoch, const LogEntry& entry) {
  Writer w(96 + entry.op.key.size() + entry.op.record.size());
  w.put<uint8_t>(static_cast<uint8_t>(MsgKind::kForward));
  w.put<uint32_t>(shard);
  w.put<uint64_t>(epoch);
  put_entry(w, entry, /*with_outcome=*/false);
  return w.take();
}

}  // namespace prism::gcs
