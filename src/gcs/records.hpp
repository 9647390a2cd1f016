// The GCS tables, one description each: a tag type (TaskTable, ...) names its
// key, record, wire id, name and key column, and the record lists its fields
// in `columns()` (gcs/columns.hpp). The server, the client and snapshots
// visit every table through AllTables; how to add a table or a column:
// docs/gcs.md. GcsClient's calls are templates over the tag:
//   client.put<ActorTable>(actor_id, ActorRecord{...}, done);
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/codec.hpp"
#include "common/ids.hpp"
#include "common/status.hpp"
#include "gcs/columns.hpp"
#include "gcs/layout.hpp"

namespace prism::gcs {

using Bytes = std::vector<std::byte>;

/// An actor is named by the id of its creation task's first return.
using ActorId = ObjectId;
/// Node table key: the node's world rank.
using NodeRank = int32_t;

enum class TaskState : uint8_t { kPending = 0, kRunning = 1, kFinished = 2, kFailed = 3 };
template <>
struct EnumNames<TaskState> {
  static constexpr std::array names{"pending", "running", "finished", "failed"};
};

/// Task table row: what ran, where, and its lineage (enough to re-run it).
///
/// A row may stand for a *run* of tasks: `run` tasks with consecutive
/// sequence numbers from its key on (same owner and index) that share every
/// other field. A driver that submits a million identical tasks then costs
/// the GCS a thousand rows, not a million. Runs never cross a task block
/// (kTaskBlock consecutive sequence numbers, which all live on one shard);
/// reads of one task (get) always answer with run = 1, and scans and
/// snapshots list one row per task.
struct TaskRecord {
  std::string function_name;  // registered name (PRISM_REMOTE)
  TaskState state = TaskState::kPending;
  int32_t node = -1;           // node rank running/ran it; -1 = not placed
  std::vector<ObjectId> args;  // argument object ids (lineage)
  TaskId parent;               // creating task; nil for the driver's tasks
  uint32_t num_returns = 1;
  uint32_t run = 1;  // tasks this row stands for (see above)
  friend bool operator==(const TaskRecord&, const TaskRecord&) = default;
  static constexpr auto columns() {
    return std::tuple{
        column("function", &TaskRecord::function_name),
        column("state", &TaskRecord::state),
        column("node", &TaskRecord::node),
        column("args", &TaskRecord::args),
        column("parent", &TaskRecord::parent),
        column("num_returns", &TaskRecord::num_returns),
        // Last: ShardStore::run_notices reads it in place. Snapshots list tasks one by one.
        wire_only(
            "run", &TaskRecord::run, +[](const uint32_t& n) { return n >= 1 && n <= kTaskBlock; }),
    };
  }
};

inline uint64_t task_block(const TaskId& id) noexcept {
  return id.seq / kTaskBlock;
}
/// Ok if the row `rec` may be written under `first`: its run is at least one
/// task and ends inside first's block.
Status validate_task_run(const TaskId& first, const TaskRecord& rec);
/// Whether task `next` comes right after the run of `run` tasks that starts at
/// `first`: the next sequence number of the same owner and index, in the same
/// block (the id half of joins_task_run).
bool follows_task_run(const TaskId& first, uint32_t run, const TaskId& next);
/// Whether task `next` (row `next_rec`) can join the run of `run` tasks that
/// starts at `first` (row `first_rec`): it follows the run, with an equal row.
bool joins_task_run(const TaskId& first, const TaskRecord& first_rec, uint32_t run,
                    const TaskId& next, const TaskRecord& next_rec);

/// Object table row.
struct ObjectRecord {
  std::vector<int32_t> locations;  // node ranks holding a copy, ascending, no duplicates
  uint64_t size = 0;               // bytes
  int32_t owner = -1;              // owner rank (reference counting, lineage)
  friend bool operator==(const ObjectRecord&, const ObjectRecord&) = default;
  static constexpr auto columns() {
    return std::tuple{
        column(
            "locations", &ObjectRecord::locations,
            +[](const std::vector<int32_t>& v) {
              for (int32_t r : v)
                if (r < 0) return false;
              return true;
            }),
        column("size", &ObjectRecord::size),
        column("owner", &ObjectRecord::owner),
    };
  }
};

enum class ActorState : uint8_t { kPending = 0, kAlive = 1, kRestarting = 2, kDead = 3 };
template <>
struct EnumNames<ActorState> {
  static constexpr std::array names{"pending", "alive", "restarting", "dead"};
};

/// Actor table row, written by the actor's owner (the rank that created it).
///
/// A named actor also has a *name row*, keyed by actor_name_key(name): its
/// `name` is the name, `actor` the actor's id and `class_name` the class key
/// the runtime checks in get_actor(); it is inserted (OpKind::kInsert) before
/// the actor is placed, so a taken name is refused at creation.
struct ActorRecord {
  std::string class_name;
  int32_t node = -1;
  ActorState state = ActorState::kPending;
  uint32_t restarts = 0;
  std::string name;  // the actor's job-wide name ("": none)
  ActorId actor;     // name rows: the actor named; actor rows: nil (the key is the id)
  friend bool operator==(const ActorRecord&, const ActorRecord&) = default;
  static constexpr auto columns() {
    return std::tuple{
        column("class_name", &ActorRecord::class_name),
        column("node", &ActorRecord::node),
        column("state", &ActorRecord::state),
        column("restarts", &ActorRecord::restarts),
        column("name", &ActorRecord::name),
        column("actor", &ActorRecord::actor),
    };
  }
};

/// Owner rank of the keys of actor name rows (no rank has it).
inline constexpr uint32_t kActorNameOwner = 0xFFFFFFFFu;
/// The actor table key of the name row of `name`: a 64-bit hash of it (the
/// row holds the name itself, so a collision is seen, and refused, as taken).
ActorId actor_name_key(std::string_view name) noexcept;
inline bool is_actor_name_key(const ActorId& key) noexcept {
  return key.owner_rank == kActorNameOwner;
}

/// Node table row, written by the node's heartbeat (and alive=false by
/// whoever declares it dead; subscribers of the node table see that).
struct NodeRecord {
  std::map<std::string, double> resources;  // totals: "CPU", "GPU", custom
  std::map<std::string, double> available;  // load: what is free now
  uint32_t queue_length = 0;                // load: tasks queued, not running
  uint64_t last_heartbeat_us = 0;
  bool alive = true;
  friend bool operator==(const NodeRecord&, const NodeRecord&) = default;
  static constexpr auto columns() {
    return std::tuple{
        column("resources", &NodeRecord::resources),
        column("available", &NodeRecord::available),
        column("queue_length", &NodeRecord::queue_length),
        column("last_heartbeat_us", &NodeRecord::last_heartbeat_us),
        column("alive", &NodeRecord::alive),
    };
  }
};

/// Reads a key or record (its field codec); a rank (the node table's key)
/// is never negative.
template <class T>
void get_value(Reader& r, T& v) {
  get_field(r, v);
  if constexpr (std::is_same_v<T, NodeRank>)
    if (v < 0) r.fail();
}

// ---- Table tags ------------------------------------------------------------

/// A string as a template argument (a table's name).
template <size_t N>
struct Name {
  constexpr Name(const char (&s)[N]) { std::copy_n(s, N, chars); }  // NOLINT: implicit
  char chars[N];
};

/// A table's tag: its key and record types, its wire id, its name (snapshot
/// group, dump section) and the name of its key column.
template <class K, class R, TableId Id, Name N, Name KeyColumn = "id">
struct Table {
  using Key = K;
  using Record = R;
  static constexpr TableId id = Id;
  static constexpr const char* name = N.chars;
  static constexpr const char* key_column = KeyColumn.chars;
};

struct TaskTable : Table<TaskId, TaskRecord, TableId::kTasks, "tasks"> {};
struct ObjectTable : Table<ObjectId, ObjectRecord, TableId::kObjects, "objects"> {};
struct ActorTable : Table<ActorId, ActorRecord, TableId::kActors, "actors"> {};
struct NodeTable : Table<NodeRank, NodeRecord, TableId::kNodes, "nodes", "rank"> {};

/// Every table, in TableId order.
using AllTables = std::tuple<TaskTable, ObjectTable, ActorTable, NodeTable>;

/// Calls f(Tag{}) for every table, in order.
template <class F>
void for_each_table(F&& f) {
  std::apply([&](auto... tag) { (f(tag), ...); }, AllTables{});
}

/// Returns `f(Tag{})` for the tag of `table`, `on_unknown()` for other values.
template <class F, class G>
auto visit_table(TableId table, F&& f, G&& on_unknown) {
  return std::apply(
      [&](auto... tag) {
        std::optional<decltype(on_unknown())> out;
        ((table == decltype(tag)::id && (out.emplace(f(tag)), true)) || ...);
        return out ? std::move(*out) : on_unknown();
      },
      AllTables{});
}

/// A key or record as bytes (a Writer reserving `reserve`), and back;
/// `what` names it in errors.
template <class T>
Bytes encode_value(const T& v, size_t reserve) {
  Writer w(reserve);
  put_field(w, v);
  return w.take();
}
template <class T>
Expected<T> decode_value(std::span<const std::byte> b, const std::string& what) {
  Reader r(b);
  T v{};
  get_value(r, v);
  if (Status s = r.finish(what); !s) return s;
  return v;
}
template <class Tag>
Bytes encode_key(const typename Tag::Key& k) {
  return encode_value(k, 16);
}
template <class Tag>
Bytes encode_record(const typename Tag::Record& v) {
  return encode_value(v, 64);
}
template <class Tag>
Expected<typename Tag::Key> decode_key(std::span<const std::byte> b) {
  return decode_value<typename Tag::Key>(b, std::string(Tag::name) + " key");
}
template <class Tag>
Expected<typename Tag::Record> decode_record(std::span<const std::byte> b) {
  return decode_value<typename Tag::Record>(b, std::string(Tag::name) + " record");
}

/// Ok if `key` is a well-formed key of `table` (unknown tables: kNotFound).
Status validate_key(TableId table, std::span<const std::byte> key);
/// Ok if `record` decodes as a record of `table`.
Status validate_record(TableId table, std::span<const std::byte> record);

}  // namespace prism::gcs
