#include "gcs/store.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace prism::gcs {
namespace {

OpResult not_found(TableId t) {
  return {Errc::kNotFound, std::string("no such row in ") + table_name(t), false, {}};
}

OpResult unknown_table(TableId t) {
  return {Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(t)), false, {}};
}

}  // namespace

// ---- the task table's runs ------------------------------------------------------

KeyedTable<TaskTable>::Rows::const_iterator KeyedTable<TaskTable>::covering(const Key& k) const {
  auto it = rows_.upper_bound(k);
  if (it == rows_.begin()) return rows_.end();
  --it;  // the last row starting at or before k
  const Key& first = it->first;
  const bool covers = first.owner_rank == k.owner_rank && first.index == k.index &&
                      k.seq - first.seq < it->second.run;
  return covers ? it : rows_.end();
}

const TaskRecord* KeyedTable<TaskTable>::find(const Key& k) const {
  auto it = covering(k);
  return it == rows_.end() ? nullptr : &it->second;
}

void KeyedTable<TaskTable>::split_at(const Key& k) {
  auto it = covering(k);
  if (it == rows_.end() || it->first == k) return;
  auto& head = const_cast<Record&>(it->second);  // map values are mutable; covering() is const
  const auto keep = static_cast<uint32_t>(k.seq - it->first.seq);
  Record tail = head;
  tail.run = head.run - keep;
  head.run = keep;
  rows_.emplace_hint(std::next(it), k, std::move(tail));
}

TaskRecord* KeyedTable<TaskTable>::isolate(const Key& k) {
  if (!find(k)) return nullptr;
  split_at(k);
  Key next = k;
  ++next.seq;
  split_at(next);
  return &rows_.find(k)->second;
}

void KeyedTable<TaskTable>::put(const Key& k, Record v) {
  Key end = k;
  end.seq += v.run;
  split_at(k);
  split_at(end);
  auto lo = rows_.lower_bound(k);
  auto hi = rows_.lower_bound(end);
  for (auto it = lo; it != hi; ++it) tasks_ -= it->second.run;
  tasks_ += v.run;
  rows_.erase(lo, hi);
  const bool finished = v.state == TaskState::kFinished || v.state == TaskState::kFailed;
  const uint32_t run = v.run;
  rows_.emplace_hint(hi, k, std::move(v));
  if (!finished) return;
  finished_.emplace_back(k, run);
  finished_tasks_ += run;
  while (finished_tasks_ > max_finished_ && !finished_.empty()) {
    const auto [old, n] = finished_.front();
    finished_.pop_front();
    finished_tasks_ -= n;
    drop_finished(old, n);
  }
}

// Drops the rows within tasks k .. k + run - 1 that are still finished (a
// later write may have changed them) and lie wholly inside that range.
void KeyedTable<TaskTable>::drop_finished(const Key& k, uint32_t run) {
  Key end = k;
  end.seq += run;
  for (auto it = rows_.lower_bound(k); it != rows_.end() && it->first < end;) {
    const auto& r = it->second;
    const bool done = r.state == TaskState::kFinished || r.state == TaskState::kFailed;
    if (done && it->first.owner_rank == k.owner_rank && it->first.index == k.index &&
        it->first.seq + r.run <= end.seq) {
      tasks_ -= r.run;
      it = rows_.erase(it);
    } else {
      ++it;
    }
  }
}

bool KeyedTable<TaskTable>::remove(const Key& k) {
  if (!isolate(k)) return false;
  rows_.erase(k);
  --tasks_;
  return true;
}

// ---- applying writes -------------------------------------------------------------

void ShardStore::apply(LogEntry& e) {
  e.result = {};
  e.notify = e.present = false;
  e.post.clear();
  e.notices.clear();

  // Session bookkeeping first: an old incarnation's write is refused the same
  // way on every replica.
  ClientSession& sess = sessions_[e.client];
  if (e.incarnation < sess.incarnation) {
    e.result = {Errc::kInvalidArgument, "stale client incarnation", false, {}};
    return;
  }
  if (e.incarnation > sess.incarnation) sess = ClientSession{e.incarnation, 0, {}};
  if (e.ack_floor > sess.floor) {
    sess.floor = e.ack_floor;
    sess.done.erase(sess.done.begin(), sess.done.lower_bound(sess.floor));
  }

  if (e.op.kind != OpKind::kBatch) {
    Outcome o = apply_one(e.op, e.client, /*want_post=*/true);
    e.result = std::move(o.result);
    e.notify = o.notify;
    e.present = o.present;
    e.post = std::move(o.post);
    if (e.notify && run_notices(e.op, e.notices)) e.notify = !e.notices.empty();
  } else {
    // One code per op; a changed row is kept for publication only if someone
    // subscribes to it (the common batch, lineage records, has no readers).
    e.result.has_value = true;
    e.result.value.resize(e.op.ops.size());
    for (size_t i = 0; i < e.op.ops.size(); ++i) {
      const WriteOp& op = e.op.ops[i];
      const bool watched = has_subscribers(op.table, op.key);
      Outcome o = apply_one(op, e.client, watched);
      e.result.value[i] = static_cast<std::byte>(o.result.code);
      if (!o.notify || run_notices(op, e.notices) || !watched) continue;
      auto same = std::find_if(e.notices.begin(), e.notices.end(), [&](const BatchNotice& n) {
        return n.table == op.table && n.key == op.key;
      });
      if (same == e.notices.end()) same = e.notices.insert(e.notices.end(), BatchNotice{});
      *same = BatchNotice{op.table, op.key, o.present, std::move(o.post)};
    }
    e.notify = !e.notices.empty();
  }

  sess.done[e.req_id] = SessionEntry{e.seq, e.result};
  while (sess.done.size() > kMaxSessionEntries) sess.done.erase(sess.done.begin());
}

// Subscribers see one row per task: a put of a run publishes each task of it
// that someone watches (every task for table-wide subscribers), not the run.
bool ShardStore::run_notices(const WriteOp& op, std::vector<BatchNotice>& out) const {
  if (op.kind != OpKind::kPut || op.table != TableId::kTasks || op.record.size() < 4) return false;
  uint32_t run = 1;  // a task record ends with its run (records.cpp)
  std::memcpy(&run, op.record.data() + op.record.size() - sizeof run, sizeof run);
  if (run <= 1) return false;
  const bool all = table_subs_.count(TableId::kTasks) > 0;
  if (!all && key_subs_.empty()) return true;  // the common case: lineage nobody watches
  auto first = decode_key<TaskTable>(op.key);
  auto rec = decode_record<TaskTable>(op.record);
  if (!first || !rec) return true;  // validated before; defensive
  TaskRecord one = *rec;
  one.run = 1;
  const Bytes row = encode_record<TaskTable>(one);
  TaskId id = *first;
  for (uint32_t i = 0; i < rec->run; ++i, ++id.seq) {
    Bytes key = encode_key<TaskTable>(id);
    if (all || key_subs_.count({TableId::kTasks, key}))
      out.push_back(BatchNotice{TableId::kTasks, std::move(key), true, row});
  }
  return true;
}

bool ShardStore::has_subscribers(TableId table, std::span<const std::byte> key) const {
  if (table_subs_.count(table)) return true;
  if (key_subs_.empty()) return false;
  return key_subs_.count({table, Bytes(key.begin(), key.end())}) > 0;
}

ShardStore::Outcome ShardStore::apply_one(const WriteOp& op, int client, bool want_post) {
  Outcome o;
  // Plain references, not a structured binding: clang 14 (the fuzz build)
  // does not let the lambdas below capture bindings.
  auto& result = o.result;
  auto& notify = o.notify;
  auto& present = o.present;
  auto& post = o.post;

  switch (op.kind) {
    case OpKind::kPut:
    case OpKind::kInsert:  // validated: an insert is never on the tasks table
      result = visit_table(
          op.table,
          [&](auto tag) -> OpResult {
            using Tag = decltype(tag);
            auto k = decode_key<Tag>(op.key);
            auto v = decode_record<Tag>(op.record);
            if (!k || !v)
              return {Errc::kInvalidArgument, "bad row", false, {}};  // validated before
            if constexpr (!std::is_same_v<Tag, TaskTable>) {  // (the task table's find covers runs)
              const auto* have = op.kind == OpKind::kInsert ? table<Tag>().find(*k) : nullptr;
              if (have)
                return {Errc::kAlreadyExists, std::string(table_name(op.table)) + " key taken",
                        true, encode_record<Tag>(*have)};
            }
            table<Tag>().put(*k, std::move(*v));
            notify = present = true;
            if (want_post) post = op.record;
            return {};
          },
          [&] { return unknown_table(op.table); });
      break;

    case OpKind::kRemove:
      result = visit_table(
          op.table,
          [&](auto tag) {
            auto k = decode_key<decltype(tag)>(op.key);
            if (!k || !table<decltype(tag)>().remove(*k)) return not_found(op.table);
            notify = true;
            return OpResult{};
          },
          [&] { return unknown_table(op.table); });
      break;

    case OpKind::kAddLocation:
    case OpKind::kRemoveLocation: {
      const bool add = op.kind == OpKind::kAddLocation;
      auto k = decode_key<ObjectTable>(op.key);  // validated before
      ObjectRecord* row = k ? objects.find(*k) : nullptr;
      bool changed = false;
      if (!row && k && add) {  // the first copy makes the row
        objects.put(*k, ObjectRecord{{}, op.size, op.owner});
        row = objects.find(*k);
        changed = true;
      }
      if (!row) {
        result = not_found(TableId::kObjects);
        break;
      }
      auto& locs = row->locations;
      auto it = std::lower_bound(locs.begin(), locs.end(), op.rank);
      const bool listed = it != locs.end() && *it == op.rank;
      if (add && !listed) locs.insert(it, op.rank), changed = true;
      if (!add && listed) locs.erase(it), changed = true;
      if (add && row->size == 0 && op.size != 0) row->size = op.size, changed = true;
      if (add && row->owner < 0 && op.owner >= 0) row->owner = op.owner, changed = true;
      notify = changed;
      present = true;
      if (want_post) post = encode_record<ObjectTable>(*row);
      break;
    }

    case OpKind::kSetTaskState: {
      auto k = decode_key<TaskTable>(op.key);
      TaskRecord* row = k ? tasks.isolate(*k) : nullptr;
      if (!row) {
        result = not_found(TableId::kTasks);
        break;
      }
      row->state = op.task_state;
      row->node = op.node;
      notify = present = true;
      if (want_post) post = encode_record<TaskTable>(*row);
      break;
    }

    case OpKind::kSubscribe:
      if (op.key.empty()) {
        table_subs_[op.table].insert(client);
      } else {
        key_subs_[{op.table, op.key}].insert(client);
        // The reply carries the row as of this write, so a subscriber that
        // checks "is it there yet?" cannot miss an update in between.
        result = get(op.table, op.key);
        if (result.code == Errc::kNotFound) result = {};
      }
      break;

    case OpKind::kUnsubscribe: {
      auto drop = [client](auto& subs, const auto& key) {
        auto it = subs.find(key);
        if (it != subs.end() && it->second.erase(client) && it->second.empty()) subs.erase(it);
      };
      if (op.key.empty())
        drop(table_subs_, op.table);
      else
        drop(key_subs_, std::pair{op.table, op.key});
      break;
    }

    case OpKind::kBatch:  // validated away (no nesting); defensive
      result = {Errc::kInvalidArgument, "nested batch", false, {}};
      break;
  }
  return o;
}

std::pair<ShardStore::Seen, const SessionEntry*> ShardStore::seen(int client, uint64_t incarnation,
                                                                  uint64_t req_id) const {
  auto it = sessions_.find(client);
  if (it == sessions_.end()) return {Seen::kNew, nullptr};
  const ClientSession& s = it->second;
  if (incarnation < s.incarnation) return {Seen::kStale, nullptr};
  if (incarnation > s.incarnation) return {Seen::kNew, nullptr};
  if (req_id < s.floor) return {Seen::kStale, nullptr};
  auto d = s.done.find(req_id);
  if (d != s.done.end()) return {Seen::kDone, &d->second};
  return {Seen::kNew, nullptr};
}

OpResult ShardStore::get(TableId table_id, std::span<const std::byte> key) const {
  return visit_table(
      table_id,
      [&](auto tag) -> OpResult {
        using Tag = decltype(tag);
        auto k = decode_key<Tag>(key);
        if (!k) return {Errc::kInvalidArgument, k.status().message(), false, {}};
        const auto* row = table<Tag>().find(*k);
        if (!row) return not_found(table_id);
        if constexpr (std::is_same_v<Tag, TaskTable>) {  // one task of its run
          TaskRecord one = *row;
          one.run = 1;
          return {Errc::kOk, {}, true, encode_record<Tag>(one)};
        }
        return {Errc::kOk, {}, true, encode_record<Tag>(*row)};
      },
      [&] { return unknown_table(table_id); });
}

OpResult ShardStore::scan(TableId table_id) const {
  return visit_table(
      table_id,
      [&](auto tag) -> OpResult {
        using Tag = decltype(tag);
        const auto& t = table<Tag>();
        Writer w(16 + t.size() * 48);
        w.put<uint32_t>(static_cast<uint32_t>(t.size()));
        t.for_each([&](const auto& k, const auto& v) {
          w.put_bytes(encode_key<Tag>(k));
          w.put_bytes(encode_record<Tag>(v));
        });
        return {Errc::kOk, {}, true, w.take()};
      },
      [&] { return unknown_table(table_id); });
}

std::vector<int> ShardStore::subscribers(TableId table_id, std::span<const std::byte> key) const {
  std::set<int> out;
  if (auto it = table_subs_.find(table_id); it != table_subs_.end())
    out.insert(it->second.begin(), it->second.end());
  if (auto it = key_subs_.find({table_id, Bytes(key.begin(), key.end())}); it != key_subs_.end())
    out.insert(it->second.begin(), it->second.end());
  return {out.begin(), out.end()};
}

void ShardStore::encode(Writer& w) const {
  for_each_table([&](auto tag) { put_field(w, table<decltype(tag)>().rows()); });
  put_field(w, key_subs_);
  put_field(w, table_subs_);
  put_field(w, sessions_);
}

void ShardStore::decode(Reader& r) {
  *this = ShardStore{};
  for_each_table([&](auto tag) {
    using Tag = decltype(tag);
    const uint32_t n = detail::get_count(r, 4);
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
      typename Tag::Key k{};
      typename Tag::Record v{};
      get_value(r, k);
      get_field(r, v);
      if (r.ok()) table<Tag>().put(k, std::move(v));  // (the task table counts its rows)
    }
  });
  get_field(r, key_subs_);
  get_field(r, table_subs_);
  get_field(r, sessions_);
  // What the field codecs leave to us: known tables, no negative rank.
  auto bad = [](TableId t, const std::set<int>& ranks) {
    return !is_valid_table(static_cast<uint8_t>(t)) || (!ranks.empty() && *ranks.begin() < 0);
  };
  for (const auto& [tk, ranks] : key_subs_)
    if (bad(tk.first, ranks)) r.fail();
  for (const auto& [t, ranks] : table_subs_)
    if (bad(t, ranks)) r.fail();
  if (!sessions_.empty() && sessions_.begin()->first < 0) r.fail();
}

}  // namespace prism::gcs
