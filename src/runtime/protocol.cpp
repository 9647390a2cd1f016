#include "runtime/protocol.hpp"

#include <cstring>

namespace prism::runtime {
namespace {

constexpr size_t kMaxArgs = 1024;
constexpr size_t kMaxGroupMembers = 1 << 20;

void encode_location(const RemoteLocation& l, Writer& w) {
  w.put(l.holder);
  w.put(l.size);
}

void decode_location(Reader& r, RemoteLocation& l) {
  l.holder = r.get<uint32_t>();
  l.size = r.get<uint64_t>();
}

constexpr uint32_t kMaxCustomResources = 256;
constexpr uint32_t kMaxContainedRefs = 1 << 20;  // per result or argument, against corrupt counts

void encode_custom(const std::map<std::string, double>& custom, Writer& w) {
  w.put(static_cast<uint32_t>(custom.size()));
  for (const auto& [k, v] : custom) {
    w.put_string(k);
    w.put(v);
  }
}

Status decode_custom(Reader& r, std::map<std::string, double>& custom) {
  const auto n = r.get<uint32_t>();
  if (!r.ok() || n > kMaxCustomResources)
    return {Errc::kMalformedMessage, "bad custom resource count"};
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    auto k = r.get_string();
    custom[k] = r.get<double>();
  }
  return r.ok() ? Status::ok() : r.finish("custom resources");
}

void encode_demand(const scheduler::ResourceDemand& d, Writer& w) {
  w.put(d.num_cpus);
  w.put(d.num_gpus);
  w.put(d.memory);
  encode_custom(d.custom, w);
}

Status decode_demand(Reader& r, scheduler::ResourceDemand& d) {
  d.num_cpus = r.get<double>();
  d.num_gpus = r.get<double>();
  d.memory = r.get<uint64_t>();
  if (Status st = decode_custom(r, d.custom); !st) return st;
  if (!(d.num_cpus >= 0) || !(d.num_gpus >= 0))
    return {Errc::kMalformedMessage, "task spec: negative resource amount"};
  return Status::ok();
}

}  // namespace

Writer& MessageBatch::begin() {
  if (count_ == 0) {
    w_.put(kind_);
    w_.put<uint32_t>(0);  // the count, patched by end()
  }
  body_at_ = w_.size();
  w_.put<uint32_t>(0);  // the body's length, patched by end()
  return w_;
}

void MessageBatch::end() {
  const auto len = static_cast<uint32_t>(w_.size() - body_at_ - sizeof(uint32_t));
  std::memcpy(w_.buffer().data() + body_at_, &len, sizeof len);
  ++count_;
  std::memcpy(w_.buffer().data() + 1, &count_, sizeof count_);
}

Writer MessageBatch::take() {
  Writer out;
  std::swap(out, w_);
  count_ = 0;
  return out;
}

Status for_each_batched(Reader& r, const std::function<void(std::span<const std::byte>)>& f) {
  const auto n = r.get<uint32_t>();
  std::vector<std::span<const std::byte>> bodies;
  for (uint32_t i = 0; i < n && r.ok(); ++i) bodies.push_back(r.get_bytes());
  if (Status st = r.finish("message batch of " + std::to_string(n)); !st) return st;
  for (const auto& b : bodies) f(b);
  return Status::ok();
}

void encode_spill_header(const scheduler::TaskRequest& q, Writer& w) {
  w.put(q.num_cpus);
  w.put(q.num_gpus);
  w.put(q.memory);
  encode_custom(q.custom, w);
  w.put<int32_t>(q.data_node);
  w.put(q.data_bytes);
  w.put_string(q.name);
}

Status decode_spill_header(Reader& r, scheduler::TaskRequest& q) {
  q.num_cpus = r.get<double>();
  q.num_gpus = r.get<double>();
  q.memory = r.get<uint64_t>();
  if (Status st = decode_custom(r, q.custom); !st) return st;
  q.data_node = r.get<int32_t>();
  q.data_bytes = r.get<uint64_t>();
  q.name = r.get_string();
  return r.ok() ? Status::ok() : r.finish("spill header");
}

void encode_node_load(const scheduler::NodeLoad& l, Writer& w) {
  w.put(l.queued);
  w.put(l.running);
  w.put(l.received_from_global);
  w.put(l.movable);
  w.put(l.pushes_received);
  w.put<uint8_t>(l.ask_ahead ? 1 : 0);
}

Status decode_node_load(Reader& r, scheduler::NodeLoad& l) {
  l.queued = r.get<uint32_t>();
  l.running = r.get<uint32_t>();
  l.received_from_global = r.get<uint64_t>();
  l.movable = r.get<uint32_t>();
  l.pushes_received = r.get<uint64_t>();
  const auto ahead = r.get<uint8_t>();
  l.ask_ahead = ahead == 1;
  if (r.ok() && l.movable > l.queued)
    return Status(Errc::kMalformedMessage, "node load: more movable tasks than queued");
  if (r.ok() && ahead > 1) return Status(Errc::kMalformedMessage, "node load: bad ask-ahead flag");
  return r.finish("node load");
}

void encode_steal_order(const scheduler::StealOrder& o, Writer& w) {
  w.put<int32_t>(o.thief);
  w.put(o.count);
}

Status decode_steal_order(Reader& r, scheduler::StealOrder& o) {
  o.thief = r.get<int32_t>();
  o.count = r.get<uint32_t>();
  if (r.ok() && o.thief < 0)
    return Status(Errc::kMalformedMessage, "steal order: no node to push to");
  return r.finish("steal order");
}

void encode_message(const KillActorMsg& m, Writer& w) {
  w.put(MessageKind::kKillActor);
  encode_object_id(m.actor, w);
  w.put_string(m.reason);
  w.put<uint8_t>(m.crash ? 1 : 0);
}

Status decode_message(Reader& r, KillActorMsg& m) {
  m.actor = decode_object_id(r);
  m.reason = r.get_string();
  m.crash = r.get_flag();
  return r.finish("kill actor");
}

void encode_message(const ActorDiedMsg& m, Writer& w) {
  w.put(MessageKind::kActorDied);
  encode_object_id(m.actor, w);
  w.put_string(m.reason);
  w.put<uint32_t>(m.incarnation);
  w.put<uint8_t>(m.restartable ? 1 : 0);
}

Status decode_message(Reader& r, ActorDiedMsg& m) {
  m.actor = decode_object_id(r);
  m.reason = r.get_string();
  m.incarnation = r.get<uint32_t>();
  m.restartable = r.get_flag();
  return r.finish("actor died");
}

void encode_message(const ActorCheckpointMsg& m, Writer& w) {
  w.put(MessageKind::kActorCheckpoint);
  encode_object_id(m.actor, w);
  w.put<uint32_t>(m.incarnation);
  w.put<uint64_t>(m.calls);
  w.put_bytes(m.image);
}

Status decode_message(Reader& r, ActorCheckpointMsg& m) {
  m.actor = decode_object_id(r);
  m.incarnation = r.get<uint32_t>();
  m.calls = r.get<uint64_t>();
  m.image = r.get_bytes();
  return r.finish("actor checkpoint");
}

void encode_message(const ObjectLostMsg& m, Writer& w) {
  w.put(MessageKind::kObjectLost);
  encode_object_id(m.object, w);
  w.put_string(m.why);
}

Status decode_message(Reader& r, ObjectLostMsg& m) {
  m.object = decode_object_id(r);
  m.why = r.get_string();
  return r.finish("object lost");
}

void encode_object_id(const ObjectId& id, Writer& w) {
  w.put(id.owner_rank);
  w.put(id.index);
  w.put(id.seq);
}

ObjectId decode_object_id(Reader& r) {
  ObjectId id;
  id.owner_rank = r.get<uint32_t>();
  id.index = r.get<uint32_t>();
  id.seq = r.get<uint64_t>();
  return id;
}

void encode_task(const TaskSpec& t, Writer& w) {
  encode_object_id(t.id, w);
  w.put_string(t.function);
  w.put_string(t.name);
  encode_demand(t.resources, w);
  w.put(static_cast<uint32_t>(t.args.size()));
  for (const auto& a : t.args) {
    w.put(a.kind);
    switch (a.kind) {
      case WireArg::Kind::kValue:
        w.put_bytes(a.value);
        break;
      case WireArg::Kind::kValueWithRefs:
        w.put_bytes(a.value);
        w.put(static_cast<uint32_t>(a.contained.size()));
        for (const auto& rid : a.contained) encode_object_id(rid, w);
        break;
      case WireArg::Kind::kRef:
        encode_object_id(a.ref, w);
        break;
      case WireArg::Kind::kRemoteValue:
      case WireArg::Kind::kPendingRef:
        encode_object_id(a.ref, w);
        encode_location(a.location, w);
        break;
    }
  }
  w.put(t.kind);
  switch (t.kind) {
    case TaskKind::kFunction:
      break;
    case TaskKind::kActorCall:
      encode_object_id(t.actor, w);
      w.put<int32_t>(t.caller_rank);
      encode_object_id(t.caller_actor, w);
      w.put<uint64_t>(t.call_seq);
      w.put<uint8_t>(t.skip ? 1 : 0);
      w.put<uint32_t>(t.actor_incarnation);
      break;
    case TaskKind::kActorCreation:
      encode_demand(t.held, w);
      w.put<uint32_t>(t.max_concurrency);
      w.put_string(t.actor_name);
      w.put<int32_t>(t.max_task_retries);
      w.put<uint32_t>(t.checkpoint_interval);
      w.put_bytes(t.checkpoint);
      break;
  }
  w.put<uint8_t>(t.group.is_nil() ? 0 : 1);
  if (!t.group.is_nil()) {
    encode_object_id(t.group, w);
    w.put<uint32_t>(t.group_index);
    w.put<uint32_t>(static_cast<uint32_t>(t.group_nodes.size()));
    for (int32_t n : t.group_nodes) w.put<int32_t>(n);
    w.put_string(t.group_label);
  }
  w.put<uint32_t>(t.attempt);
}

Status decode_task(Reader& r, TaskSpec& t) {
  t.id = decode_object_id(r);
  t.function = r.get_string();
  t.name = r.get_string();
  if (Status st = decode_demand(r, t.resources); !st) return st;
  const auto n = r.get<uint32_t>();
  // Each argument takes at least its kind byte: a count beyond the bytes left
  // is refused before resize() builds that many (88-byte) WireArgs.
  if (!r.ok() || n > kMaxArgs || n > r.rest().size())
    return {Errc::kMalformedMessage, "task spec: bad argument count " + std::to_string(n)};
  t.args.resize(n);
  for (auto& a : t.args) {
    const auto kind = r.get<uint8_t>();
    if (kind > static_cast<uint8_t>(WireArg::Kind::kPendingRef))
      return {Errc::kMalformedMessage, "task spec: bad argument kind " + std::to_string(kind)};
    a.kind = static_cast<WireArg::Kind>(kind);
    switch (a.kind) {
      case WireArg::Kind::kValue:
      case WireArg::Kind::kValueWithRefs: {
        auto b = r.get_bytes();
        a.value.assign(b.begin(), b.end());
        if (a.kind == WireArg::Kind::kValue) break;
        const auto n = r.get<uint32_t>();
        if (n > kMaxContainedRefs)
          return {Errc::kMalformedMessage,
                  "task argument: " + std::to_string(n) + " contained refs"};
        for (uint32_t k = 0; k < n && r.ok(); ++k) a.contained.push_back(decode_object_id(r));
        break;
      }
      case WireArg::Kind::kRef:
        a.ref = decode_object_id(r);
        break;
      case WireArg::Kind::kRemoteValue:
      case WireArg::Kind::kPendingRef:
        a.ref = decode_object_id(r);
        decode_location(r, a.location);
        break;
    }
  }
  const auto kind = r.get<uint8_t>();
  if (kind > static_cast<uint8_t>(TaskKind::kActorCall))
    return {Errc::kMalformedMessage, "task spec: bad kind " + std::to_string(kind)};
  t.kind = static_cast<TaskKind>(kind);
  switch (t.kind) {
    case TaskKind::kFunction:
      break;
    case TaskKind::kActorCall: {
      t.actor = decode_object_id(r);
      t.caller_rank = r.get<int32_t>();
      t.caller_actor = decode_object_id(r);
      t.call_seq = r.get<uint64_t>();
      const auto skip = r.get<uint8_t>();
      if (skip > 1 || (r.ok() && (t.actor.is_nil() || t.call_seq == 0 || t.caller_rank < 0)))
        return {Errc::kMalformedMessage, "actor call: bad actor, caller or sequence number"};
      t.skip = skip == 1;
      t.actor_incarnation = r.get<uint32_t>();
      break;
    }
    case TaskKind::kActorCreation:
      if (Status st = decode_demand(r, t.held); !st) return st;
      t.max_concurrency = r.get<uint32_t>();
      t.actor_name = r.get_string();
      t.max_task_retries = r.get<int32_t>();
      t.checkpoint_interval = r.get<uint32_t>();
      {
        auto cp = r.get_bytes();
        t.checkpoint.assign(cp.begin(), cp.end());
      }
      if (r.ok() && (t.max_concurrency == 0 || t.max_task_retries < -1))
        return {Errc::kMalformedMessage, "actor creation: max_concurrency 0 or max_task_retries " +
                                             std::to_string(t.max_task_retries)};
      break;
  }
  const auto in_group = r.get<uint8_t>();
  if (in_group > 1 || (in_group == 1 && t.kind == TaskKind::kActorCall))
    return {Errc::kMalformedMessage, "task spec: bad group flag"};
  if (in_group == 1) {
    t.group = decode_object_id(r);
    t.group_index = r.get<uint32_t>();
    const auto n = r.get<uint32_t>();
    // resize() below allocates 4 bytes a member before reading them: the
    // members must be in the message.
    if (!r.ok() || n == 0 || n > kMaxGroupMembers || t.group_index >= n || t.group.is_nil() ||
        size_t{n} * sizeof(int32_t) > r.rest().size())
      return {Errc::kMalformedMessage, "task spec: bad group (" + std::to_string(n) + " members)"};
    t.group_nodes.resize(n);
    for (auto& node : t.group_nodes) node = r.get<int32_t>();
    t.group_label = r.get_string();
  }
  t.attempt = r.get<uint32_t>();
  if (!r.ok()) return r.finish("task spec");
  if (t.id.is_nil() || t.function.empty())
    return {Errc::kMalformedMessage, "task spec: nil id or empty function name"};
  return Status::ok();
}

void encode_task_result(const ObjectId& id, const ObjectValue& v,
                        std::span<const ObjectId> contained, Writer& w, uint32_t attempt) {
  w.put(MessageKind::kTaskResult);
  encode_object_id(id, w);
  encode_object_value(v, w);
  w.put(static_cast<uint32_t>(contained.size()));
  for (const auto& rid : contained) encode_object_id(rid, w);
  w.put<uint32_t>(attempt);
}

Status decode_task_result(Reader& r, ObjectId& id, ObjectValue& v, std::vector<ObjectId>& contained,
                          uint32_t* attempt) {
  id = decode_object_id(r);
  PRISM_RETURN_IF_ERROR(decode_object_value(r, v));
  const auto n = r.get<uint32_t>();
  if (n > kMaxContainedRefs)
    return {Errc::kMalformedMessage, "task result: " + std::to_string(n) + " contained refs"};
  for (uint32_t i = 0; i < n && r.ok(); ++i) contained.push_back(decode_object_id(r));
  const auto a = r.get<uint32_t>();
  if (attempt) *attempt = a;
  return r.finish("task result");
}

void encode_object_value(const ObjectValue& v, Writer& w) {
  w.put(v.kind);
  switch (v.kind) {
    case ObjectValue::Kind::kInline:
      w.put_bytes(v.bytes);
      break;
    case ObjectValue::Kind::kRemote:
      encode_location(v.location, w);
      break;
    case ObjectValue::Kind::kError:
      w.put_string(v.error);
      w.put<uint8_t>(static_cast<uint8_t>((v.task_exception ? 1 : 0) | (v.lost_input ? 2 : 0) |
                                          (v.actor_gone ? 4 : 0)));
      break;
  }
}

Status decode_object_value(Reader& r, ObjectValue& v) {
  const auto kind = r.get<uint8_t>();
  if (!r.ok() || kind > 2) return {Errc::kMalformedMessage, "object value: bad kind"};
  v.kind = static_cast<ObjectValue::Kind>(kind);
  switch (v.kind) {
    case ObjectValue::Kind::kInline: {
      auto b = r.get_bytes();
      v.bytes.assign(b);
      break;
    }
    case ObjectValue::Kind::kRemote:
      decode_location(r, v.location);
      break;
    case ObjectValue::Kind::kError:
      v.error = r.get_string();
      {
        const auto flags = r.get<uint8_t>();
        v.task_exception = (flags & 1) != 0;
        v.lost_input = (flags & 2) != 0;
        v.actor_gone = (flags & 4) != 0;
      }
      break;
  }
  return r.ok() ? Status::ok() : r.finish("object value");
}

std::vector<std::byte> encode_actor_location(const ActorLocation& l) {
  Writer w(12);
  w.put<int32_t>(l.node);
  w.put<uint32_t>(l.incarnation);
  w.put<int32_t>(l.max_task_retries);
  return w.take();
}

std::optional<ActorLocation> actor_location(const ObjectValue& v) {
  if (v.kind != ObjectValue::Kind::kInline || v.bytes.size() != 12) return std::nullopt;
  Reader r(v.bytes.span());
  ActorLocation l;
  l.node = r.get<int32_t>();
  l.incarnation = r.get<uint32_t>();
  l.max_task_retries = r.get<int32_t>();
  if (!r.ok()) return std::nullopt;
  return l;
}

void encode_resource_demand(const scheduler::ResourceDemand& d, Writer& w) {
  encode_demand(d, w);
}

Status decode_resource_demand(Reader& r, scheduler::ResourceDemand& d) {
  return decode_demand(r, d);
}

}  // namespace prism::runtime
