#include "gcs/client.hpp"

#include <chrono>
#include <limits>
#include <memory>

namespace prism::gcs {
namespace {

uint64_t wall_clock_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

DoneCallback or_nothing(DoneCallback d) {
  return d ? d : [](Status) {};
}

}  // namespace

GcsClient::GcsClient(GcsLayout layout, int my_rank, Outbox& out, GcsClientOptions options)
    : layout_(std::move(layout)), rank_(my_rank), out_(out), opt_(options) {
  if (opt_.incarnation == 0) opt_.incarnation = wall_clock_us();
  if (opt_.max_attempts < 1) opt_.max_attempts = 1;
  view_.resize(static_cast<size_t>(layout_.shards));
  write_hint_.assign(static_cast<size_t>(layout_.shards), -1);
  read_hint_.assign(static_cast<size_t>(layout_.shards), -1);
  for (int s = 0; s < layout_.shards; ++s) view_[static_cast<size_t>(s)] = layout_.initial_chain(s);
}

const ChainConfig& GcsClient::view(int shard) const {
  static const ChainConfig kNone{};
  if (shard < 0 || shard >= layout_.shards) return kNone;
  return view_[static_cast<size_t>(shard)];
}

// ---- sending and retrying ------------------------------------------------------

uint64_t GcsClient::ack_floor() const {
  return pending_.empty() ? next_req_id_ : pending_.begin()->first;
}

uint64_t GcsClient::backoff(int attempts) const {
  uint64_t t = opt_.request_timeout_us;
  for (int i = 1; i < attempts && t < opt_.max_backoff_us; ++i) t *= 2;
  return std::min(t, std::max(opt_.max_backoff_us, opt_.request_timeout_us));
}

int GcsClient::target_of(const Pending& p) const {
  // Order: the head (writes) or tail (reads) of our view, the other members,
  // then every other GCS rank; any of them can redirect us.
  const ChainConfig& c = view_[p.shard];
  std::vector<int> order;
  const int hint = (p.is_write ? write_hint_ : read_hint_)[p.shard];
  const int primary = p.is_write ? c.head() : c.tail();
  if (hint >= 0) order.push_back(hint);
  if (primary >= 0 && primary != hint) order.push_back(primary);
  for (int m : c.members)
    if (m != primary && m != hint) order.push_back(m);
  for (int r : layout_.ranks)
    if (!c.contains(r) && r != hint) order.push_back(r);
  return order[static_cast<size_t>(p.rotation) % order.size()];
}

void GcsClient::transmit(Pending& p) {
  ++p.attempts;
  p.deadline = now_ + backoff(p.attempts);
  p.last_target = target_of(p);
  out_.send(p.last_target, p.msg);
}

void GcsClient::write(uint32_t shard, WriteOp op, RawCallback done) {
  submit(/*is_write=*/true, shard,
         encode(WriteRequest{0, opt_.incarnation, ack_floor(), shard, std::move(op)}),
         std::move(done));
}

void GcsClient::read(uint32_t shard, ReadKind kind, TableId table, Bytes key, RawCallback done) {
  submit(/*is_write=*/false, shard, encode(ReadRequest{0, shard, kind, table, std::move(key)}),
         std::move(done));
}

void GcsClient::submit(bool is_write, uint32_t shard, Bytes msg, RawCallback done) {
  const uint64_t id = next_req_id_++;
  // The request id sits right after the kind byte in both request layouts.
  Writer w;
  w.put<uint64_t>(id);
  std::memcpy(msg.data() + 1, w.buffer().data(), sizeof(uint64_t));
  Pending p;
  p.is_write = is_write;
  p.shard = shard < static_cast<uint32_t>(layout_.shards) ? shard : 0;
  p.msg = std::move(msg);
  p.done = std::move(done);
  transmit(pending_.emplace(id, std::move(p)).first->second);
}

void GcsClient::tick(uint64_t now_us) {
  if (!ticked_) {
    // Requests made before the first tick were stamped with time 0.
    ticked_ = true;
    now_ = now_us;
    for (auto& [id, p] : pending_) p.deadline = now_ + backoff(p.attempts);
    return;
  }
  if (now_us > now_) now_ = now_us;
  std::vector<uint64_t> due;
  for (const auto& [id, p] : pending_)
    if (p.deadline <= now_) due.push_back(id);
  for (uint64_t id : due) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // completed by an earlier callback
    Pending& p = it->second;
    if (p.attempts >= opt_.max_attempts) {
      RawCallback done = std::move(p.done);
      pending_.erase(it);
      if (done) done({Errc::kTimeout, "GCS request unanswered after retries", false, {}}, 0);
      continue;
    }
    ++p.rotation;
    transmit(p);
  }
}

uint64_t GcsClient::next_deadline_us() const {
  uint64_t d = std::numeric_limits<uint64_t>::max();
  for (const auto& [id, p] : pending_) d = std::min(d, p.deadline);
  return d;
}

// ---- receiving -------------------------------------------------------------------

Status GcsClient::handle(int src, std::span<const std::byte> msg) {
  auto kind = peek_kind(msg);
  if (!kind) return kind.status();
  switch (*kind) {
    case MsgKind::kReply: {
      Reply r;
      PRISM_RETURN_IF_ERROR(decode(msg, r));
      auto it = pending_.find(r.req_id);
      if (it == pending_.end()) return Status::ok();  // a duplicate reply
      const Pending& p = it->second;
      if (p.attempts > 1) {
        // Answered after retries: most likely by the rank the last attempt
        // went to. If that is not our view's head/tail, the chain moved
        // without telling us: try that rank first from now on.
        const ChainConfig& c = view_[p.shard];
        const int primary = p.is_write ? c.head() : c.tail();
        (p.is_write ? write_hint_ : read_hint_)[p.shard] =
            p.last_target != primary ? p.last_target : -1;
      }
      RawCallback done = std::move(it->second.done);
      pending_.erase(it);
      if (done) done(r.result, r.seq);
      return Status::ok();
    }
    case MsgKind::kRedirect: {
      Redirect r;
      PRISM_RETURN_IF_ERROR(decode(msg, r));
      if (r.shard >= static_cast<uint32_t>(layout_.shards) || r.config.members.empty() ||
          r.config.joined.size() != r.config.members.size())
        return {Errc::kMalformedMessage, "redirect to an unknown shard"};
      for (int m : r.config.members)
        if (!layout_.is_gcs_rank(m)) return {Errc::kMalformedMessage, "redirect to a non-GCS rank"};
      if (!supersedes(r.config, view_[r.shard])) {
        // A rank we tried first on a hint says it is not the head/tail after
        // all: drop the hint and go to our view's primary at once. Any other
        // stale redirect waits for the timeout.
        auto it = pending_.find(r.req_id);
        if (it != pending_.end() && it->second.shard == r.shard && it->second.last_target == src) {
          auto& hint = (it->second.is_write ? write_hint_ : read_hint_)[r.shard];
          if (hint == src) {
            hint = -1;
            it->second.rotation = 0;
            transmit(it->second);
          }
        }
        return Status::ok();
      }
      view_[r.shard] = r.config;
      write_hint_[r.shard] = read_hint_[r.shard] = -1;
      auto it = pending_.find(r.req_id);
      if (it != pending_.end() && it->second.shard == r.shard) {
        it->second.rotation = 0;
        transmit(it->second);
      }
      return Status::ok();
    }
    case MsgKind::kNotify: {
      Notify n;
      PRISM_RETURN_IF_ERROR(decode(msg, n));
      if (!layout_.is_gcs_rank(src))
        return {Errc::kInvalidArgument, "notification from a non-GCS rank"};
      // Copy the callbacks before calling: a callback may unsubscribe.
      RawNotifyCallback key_cb, table_cb;
      if (auto it = key_subs_.find({n.table, n.key}); it != key_subs_.end()) {
        if (n.seq > it->second.last_seq) {
          it->second.last_seq = n.seq;
          key_cb = it->second.cb;
        }
      }
      if (auto it = table_subs_.find(n.table); it != table_subs_.end()) table_cb = it->second;
      if (key_cb) key_cb(n);
      if (table_cb) table_cb(n);
      return Status::ok();
    }
    default:
      break;
  }
  return {Errc::kMalformedMessage,
          "GCS message kind " + std::to_string(static_cast<int>(*kind)) + " is not for a client"};
}

// ---- operations ------------------------------------------------------------------

RawCallback GcsClient::status_of(DoneCallback done) {
  return [done = or_nothing(std::move(done))](const OpResult& r, uint64_t) { done(r.status()); };
}

void GcsClient::write_keyed(WriteOp op, RawCallback done) {
  const auto shard = static_cast<uint32_t>(layout_.shard_of(op.table, op.key));
  write(shard, std::move(op), std::move(done));
}

void GcsClient::add_object_location(const ObjectId& id, int32_t rank, uint64_t size, int32_t owner,
                                    DoneCallback done) {
  write_keyed({.kind = OpKind::kAddLocation,
               .table = TableId::kObjects,
               .key = encode_key<ObjectTable>(id),
               .rank = rank,
               .size = size,
               .owner = owner},
              status_of(std::move(done)));
}

void GcsClient::remove_object_location(const ObjectId& id, int32_t rank, DoneCallback done) {
  write_keyed({.kind = OpKind::kRemoveLocation,
               .table = TableId::kObjects,
               .key = encode_key<ObjectTable>(id),
               .rank = rank},
              status_of(std::move(done)));
}

void GcsClient::set_task_state(const TaskId& id, TaskState state, int32_t node, DoneCallback done) {
  write_keyed({.kind = OpKind::kSetTaskState,
               .table = TableId::kTasks,
               .key = encode_key<TaskTable>(id),
               .task_state = state,
               .node = node},
              status_of(std::move(done)));
}

void GcsClient::subscribe_key(TableId table, Bytes key, RawNotifyCallback cb, DoneCallback done) {
  // Register before sending: a notification may overtake the reply.
  auto& sub = key_subs_[{table, key}];
  sub.cb = cb;
  write_keyed(
      make_op(OpKind::kSubscribe, table, key),
      [this, table, key, done = or_nothing(std::move(done))](const OpResult& r, uint64_t seq) {
        if (r.code == Errc::kOk && r.has_value) {
          auto it = key_subs_.find({table, key});
          if (it != key_subs_.end() && seq > it->second.last_seq) {
            it->second.last_seq = seq;
            Notify n{0, seq, table, key, true, r.value};
            RawNotifyCallback cb = it->second.cb;
            cb(n);
          }
        }
        done(r.status());
      });
}

void GcsClient::each_shard(const std::function<void(uint32_t, RawCallback)>& send,
                           std::function<void(Expected<std::vector<Bytes>>)> done) {
  struct Join {
    int left;
    std::vector<Bytes> values;
    Status first_error;
    std::function<void(Expected<std::vector<Bytes>>)> done;
  };
  auto join = std::make_shared<Join>(Join{layout_.shards, {}, Status::ok(), std::move(done)});
  for (int s = 0; s < layout_.shards; ++s) {
    send(static_cast<uint32_t>(s), [join](const OpResult& r, uint64_t) {
      if (r.code != Errc::kOk) {
        if (join->first_error.is_ok()) join->first_error = r.status();
      } else {
        join->values.push_back(r.value);
      }
      if (--join->left > 0) return;
      if (!join->first_error.is_ok()) return join->done(join->first_error);
      join->done(std::move(join->values));
    });
  }
}

void GcsClient::write_all_shards(const WriteOp& op, DoneCallback done) {
  each_shard([&](uint32_t s, RawCallback cb) { write(s, op, std::move(cb)); },
             [done = or_nothing(std::move(done))](Expected<std::vector<Bytes>> r) {
               done(r ? Status::ok() : r.status());
             });
}

}  // namespace prism::gcs
