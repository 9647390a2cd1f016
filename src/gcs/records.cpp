#include "gcs/records.hpp"

namespace prism::gcs {
namespace {

// A count read from the wire is trusted only if that many elements of at least
// `min_size` bytes each can still follow; otherwise the reader fails. This is
// what keeps a corrupt count from allocating gigabytes.
uint32_t get_count(Reader& r, size_t min_size) {
  const auto n = r.get<uint32_t>();
  if (!r.ok() || static_cast<uint64_t>(n) * min_size > r.rest().size()) {
    r.fail();
    return 0;
  }
  return n;
}

void put_resource_map(Writer& w, const std::map<std::string, double>& m) {
  w.put<uint32_t>(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    w.put_string(k);
    w.put<double>(v);
  }
}

void get_resource_map(Reader& r, std::map<std::string, double>& m) {
  m.clear();
  const uint32_t n = get_count(r, 4 + 8);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.get_string();
    const double v = r.get<double>();
    if (!m.emplace(std::move(k), v).second) r.fail();  // duplicate name
  }
}

}  // namespace

const char* task_state_name(TaskState s) noexcept {
  switch (s) {
    case TaskState::kPending:
      return "pending";
    case TaskState::kRunning:
      return "running";
    case TaskState::kFinished:
      return "finished";
    case TaskState::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* actor_state_name(ActorState s) noexcept {
  switch (s) {
    case ActorState::kPending:
      return "pending";
    case ActorState::kAlive:
      return "alive";
    case ActorState::kRestarting:
      return "restarting";
    case ActorState::kDead:
      return "dead";
  }
  return "unknown";
}

void put_key(Writer& w, const ObjectId& id) {
  w.put<uint32_t>(id.owner_rank);
  w.put<uint32_t>(id.index);
  w.put<uint64_t>(id.seq);
}

void put_key(Writer& w, NodeRank rank) {
  w.put<int32_t>(rank);
}

void get_key(Reader& r, ObjectId& id) {
  id.owner_rank = r.get<uint32_t>();
  id.index = r.get<uint32_t>();
  id.seq = r.get<uint64_t>();
}

void get_key(Reader& r, NodeRank& rank) {
  rank = r.get<int32_t>();
  if (rank < 0) r.fail();
}

void put_record(Writer& w, const TaskRecord& v) {
  w.put_string(v.function_name);
  w.put<uint8_t>(static_cast<uint8_t>(v.state));
  w.put<int32_t>(v.node);
  w.put<uint32_t>(static_cast<uint32_t>(v.args.size()));
  for (const auto& a : v.args) put_key(w, a);
  put_key(w, v.parent);
  w.put<uint32_t>(v.num_returns);
  w.put<uint32_t>(v.run);  // last: ShardStore::run_notices reads it in place
}

void get_record(Reader& r, TaskRecord& v) {
  v.function_name = r.get_string();
  const auto st = r.get<uint8_t>();
  if (st > static_cast<uint8_t>(TaskState::kFailed)) r.fail();
  v.state = static_cast<TaskState>(st);
  v.node = r.get<int32_t>();
  const uint32_t n = get_count(r, 16);
  v.args.assign(n, ObjectId{});
  for (auto& a : v.args) get_key(r, a);
  get_key(r, v.parent);
  v.num_returns = r.get<uint32_t>();
  v.run = r.get<uint32_t>();
  if (v.run == 0 || v.run > kTaskBlock) r.fail();
}

void put_record(Writer& w, const ObjectRecord& v) {
  w.put<uint32_t>(static_cast<uint32_t>(v.locations.size()));
  for (int32_t l : v.locations) w.put<int32_t>(l);
  w.put<uint64_t>(v.size);
  w.put<int32_t>(v.owner);
}

void get_record(Reader& r, ObjectRecord& v) {
  const uint32_t n = get_count(r, 4);
  v.locations.assign(n, 0);
  for (auto& l : v.locations) {
    l = r.get<int32_t>();
    if (l < 0) r.fail();
  }
  v.size = r.get<uint64_t>();
  v.owner = r.get<int32_t>();
}

void put_record(Writer& w, const ActorRecord& v) {
  w.put_string(v.class_name);
  w.put<int32_t>(v.node);
  w.put<uint8_t>(static_cast<uint8_t>(v.state));
  w.put<uint32_t>(v.restarts);
  w.put_string(v.name);
  put_key(w, v.actor);
}

ActorId actor_name_key(std::string_view name) noexcept {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return ActorId{kActorNameOwner, 0, h == 0 ? 1 : h};
}

void get_record(Reader& r, ActorRecord& v) {
  v.class_name = r.get_string();
  v.node = r.get<int32_t>();
  const auto st = r.get<uint8_t>();
  if (st > static_cast<uint8_t>(ActorState::kDead)) r.fail();
  v.state = static_cast<ActorState>(st);
  v.restarts = r.get<uint32_t>();
  v.name = r.get_string();
  get_key(r, v.actor);
}

void put_record(Writer& w, const NodeRecord& v) {
  put_resource_map(w, v.resources);
  put_resource_map(w, v.available);
  w.put<uint32_t>(v.queue_length);
  w.put<uint64_t>(v.last_heartbeat_us);
  w.put<uint8_t>(v.alive ? 1 : 0);
}

void get_record(Reader& r, NodeRecord& v) {
  get_resource_map(r, v.resources);
  get_resource_map(r, v.available);
  v.queue_length = r.get<uint32_t>();
  v.last_heartbeat_us = r.get<uint64_t>();
  const auto alive = r.get<uint8_t>();
  if (alive > 1) r.fail();
  v.alive = alive == 1;
}

Status validate_task_run(const TaskId& first, const TaskRecord& rec) {
  if (first.is_nil()) return {Errc::kInvalidArgument, "task row for the nil task id"};
  if (rec.run == 0 || first.seq % kTaskBlock + rec.run > kTaskBlock)
    return {Errc::kInvalidArgument, "task run of " + std::to_string(rec.run) + " from " +
                                        first.to_string() + " crosses its block of " +
                                        std::to_string(kTaskBlock)};
  return Status::ok();
}

bool follows_task_run(const TaskId& first, uint32_t run, const TaskId& next) {
  return next.owner_rank == first.owner_rank && next.index == first.index &&
         next.seq == first.seq + run && task_block(next) == task_block(first);
}

bool joins_task_run(const TaskId& first, const TaskRecord& first_rec, uint32_t run,
                    const TaskId& next, const TaskRecord& next_rec) {
  return follows_task_run(first, run, next) && next_rec == first_rec;
}

Status validate_key(TableId table, std::span<const std::byte> key) {
  return visit_table(
      table,
      [&](auto tag) -> Status {
        using Tag = decltype(tag);
        auto k = decode_key<Tag>(key);
        return k ? Status::ok() : Status{Errc::kInvalidArgument, k.status().message()};
      },
      [&]() -> Status {
        return {Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(table))};
      });
}

Status validate_record(TableId table, std::span<const std::byte> record) {
  return visit_table(
      table,
      [&](auto tag) -> Status {
        using Tag = decltype(tag);
        auto v = decode_record<Tag>(record);
        return v ? Status::ok() : Status{Errc::kInvalidArgument, v.status().message()};
      },
      [&]() -> Status {
        return {Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(table))};
      });
}

}  // namespace prism::gcs
