#include "gcs/store.hpp"

#include <algorithm>

namespace prism::gcs {
namespace {

OpResult ok_result() {
  return {};
}

OpResult not_found(TableId t) {
  return {Errc::kNotFound, std::string("no such row in ") + table_name(t), false, {}};
}

OpResult unknown_table(TableId t) {
  return {Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(t)), false, {}};
}

template <class Tag>
Bytes row_bytes(const typename Tag::Record& v) {
  return encode_record<Tag>(v);
}

// Count checks for decoding a whole store: each element takes >= min bytes.
uint32_t get_count(Reader& r, size_t min) {
  const auto n = r.get<uint32_t>();
  if (!r.ok() || static_cast<uint64_t>(n) * min > r.rest().size()) {
    r.fail();
    return 0;
  }
  return n;
}

void put_ranks(Writer& w, const std::set<int>& s) {
  w.put<uint32_t>(static_cast<uint32_t>(s.size()));
  for (int x : s) w.put<int32_t>(x);
}

void get_ranks(Reader& r, std::set<int>& s) {
  s.clear();
  const uint32_t n = get_count(r, 4);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const auto x = r.get<int32_t>();
    if (x < 0) r.fail();
    s.insert(x);
  }
}

}  // namespace

void ShardStore::apply(LogEntry& e) {
  e.result = ok_result();
  e.notify = false;
  e.present = false;
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
    Outcome out{e.result, e.notify, e.present, e.post};
    apply_one(e.op, e.client, out, /*want_post=*/true);
  } else {
    // One code per op; a changed row is kept for publication only if someone
    // subscribes to it (the common batch, lineage records, has no readers).
    e.result.has_value = true;
    e.result.value.resize(e.op.ops.size());
    for (size_t i = 0; i < e.op.ops.size(); ++i) {
      const WriteOp& op = e.op.ops[i];
      OpResult res;
      bool notify = false, present = false;
      Bytes post;
      const bool watched = has_subscribers(op.table, op.key);
      Outcome out{res, notify, present, post};
      apply_one(op, e.client, out, watched);
      e.result.value[i] = static_cast<std::byte>(res.code);
      if (!notify || !watched) continue;
      auto same = std::find_if(e.notices.begin(), e.notices.end(), [&](const BatchNotice& n) {
        return n.table == op.table && n.key == op.key;
      });
      if (same == e.notices.end()) same = e.notices.insert(e.notices.end(), BatchNotice{});
      *same = BatchNotice{op.table, op.key, present, std::move(post)};
    }
    e.notify = !e.notices.empty();
  }

  sess.done[e.req_id] = SessionEntry{e.seq, e.result};
  while (sess.done.size() > kMaxSessionEntries) sess.done.erase(sess.done.begin());
}

bool ShardStore::has_subscribers(TableId table, std::span<const std::byte> key) const {
  if (table_subs_.count(table)) return true;
  if (key_subs_.empty()) return false;
  return key_subs_.count({table, Bytes(key.begin(), key.end())}) > 0;
}

void ShardStore::apply_one(const WriteOp& op, int client, Outcome out, bool want_post) {
  auto key_of = [&]() { return std::span<const std::byte>(op.key); };
  OpResult& result = out.result;
  bool& notify = out.notify;
  bool& present = out.present;
  Bytes& post = out.post;

  switch (op.kind) {
    case OpKind::kPut:
      visit_table(
          op.table,
          [&](auto tag) {
            using Tag = decltype(tag);
            auto k = decode_key<Tag>(key_of());
            auto v = decode_record<Tag>(op.record);
            if (!k || !v) {  // validated before; defensive
              result = {Errc::kInvalidArgument, "bad put", false, {}};
              return;
            }
            table<Tag>().put(*k, std::move(*v));
            notify = present = true;
            if (want_post) post = op.record;
          },
          [&] { result = unknown_table(op.table); });
      break;

    case OpKind::kRemove:
      visit_table(
          op.table,
          [&](auto tag) {
            using Tag = decltype(tag);
            auto k = decode_key<Tag>(key_of());
            if (k && table<Tag>().remove(*k)) {
              notify = true;
            } else {
              result = not_found(op.table);
            }
          },
          [&] { result = unknown_table(op.table); });
      break;

    case OpKind::kAddLocation: {
      auto k = decode_key<ObjectTable>(key_of());
      if (!k) {
        result = OpResult::error(k.status());
        break;
      }
      ObjectRecord* row = objects.find(*k);
      bool changed = false;
      if (!row) {
        objects.put(*k, ObjectRecord{{}, op.size, op.owner});
        row = objects.find(*k);
        changed = true;
      }
      auto it = std::lower_bound(row->locations.begin(), row->locations.end(), op.rank);
      if (it == row->locations.end() || *it != op.rank) {
        row->locations.insert(it, op.rank);
        changed = true;
      }
      if (row->size == 0 && op.size != 0) row->size = op.size, changed = true;
      if (row->owner < 0 && op.owner >= 0) row->owner = op.owner, changed = true;
      notify = changed;
      present = true;
      if (want_post) post = row_bytes<ObjectTable>(*row);
      break;
    }

    case OpKind::kRemoveLocation: {
      auto k = decode_key<ObjectTable>(key_of());
      ObjectRecord* row = k ? objects.find(*k) : nullptr;
      if (!row) {
        result = not_found(TableId::kObjects);
        break;
      }
      auto it = std::lower_bound(row->locations.begin(), row->locations.end(), op.rank);
      if (it != row->locations.end() && *it == op.rank) {
        row->locations.erase(it);
        notify = true;
      }
      present = true;
      if (want_post) post = row_bytes<ObjectTable>(*row);
      break;
    }

    case OpKind::kSetTaskState: {
      auto k = decode_key<TaskTable>(key_of());
      TaskRecord* row = k ? tasks.find(*k) : nullptr;
      if (!row) {
        result = not_found(TableId::kTasks);
        break;
      }
      row->state = op.task_state;
      row->node = op.node;
      notify = present = true;
      if (want_post) post = row_bytes<TaskTable>(*row);
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
        if (result.code == Errc::kNotFound) result = ok_result();
      }
      break;

    case OpKind::kUnsubscribe:
      if (op.key.empty()) {
        auto it = table_subs_.find(op.table);
        if (it != table_subs_.end() && it->second.erase(client) && it->second.empty())
          table_subs_.erase(it);
      } else {
        auto it = key_subs_.find({op.table, op.key});
        if (it != key_subs_.end() && it->second.erase(client) && it->second.empty())
          key_subs_.erase(it);
      }
      break;

    case OpKind::kBatch:  // validated away (no nesting); defensive
      result = {Errc::kInvalidArgument, "nested batch", false, {}};
      break;
  }
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
        return {Errc::kOk, {}, true, row_bytes<Tag>(*row)};
      },
      [&] { return unknown_table(table_id); });
}

OpResult ShardStore::scan(TableId table_id) const {
  return visit_table(
      table_id,
      [&](auto tag) -> OpResult {
        using Tag = decltype(tag);
        const auto& rows = table<Tag>().rows();
        Writer w(16 + rows.size() * 48);
        w.put<uint32_t>(static_cast<uint32_t>(rows.size()));
        for (const auto& [k, v] : rows) {
          w.put_bytes(encode_key<Tag>(k));
          w.put_bytes(encode_record<Tag>(v));
        }
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

size_t ShardStore::rows(TableId table_id) const {
  return visit_table(
      table_id, [&](auto tag) -> size_t { return table<decltype(tag)>().size(); },
      [] { return size_t{0}; });
}

void ShardStore::encode(Writer& w) const {
  for (TableId t : kAllTables) {
    visit_table(
        t,
        [&](auto tag) {
          using Tag = decltype(tag);
          const auto& rows = table<Tag>().rows();
          w.put<uint32_t>(static_cast<uint32_t>(rows.size()));
          for (const auto& [k, v] : rows) {
            put_key(w, k);
            put_record(w, v);
          }
        },
        [] {});
  }
  w.put<uint32_t>(static_cast<uint32_t>(key_subs_.size()));
  for (const auto& [tk, ranks] : key_subs_) {
    w.put<uint8_t>(static_cast<uint8_t>(tk.first));
    w.put_bytes(tk.second);
    put_ranks(w, ranks);
  }
  w.put<uint32_t>(static_cast<uint32_t>(table_subs_.size()));
  for (const auto& [t, ranks] : table_subs_) {
    w.put<uint8_t>(static_cast<uint8_t>(t));
    put_ranks(w, ranks);
  }
  w.put<uint32_t>(static_cast<uint32_t>(sessions_.size()));
  for (const auto& [client, s] : sessions_) {
    w.put<int32_t>(client);
    w.put<uint64_t>(s.incarnation);
    w.put<uint64_t>(s.floor);
    w.put<uint32_t>(static_cast<uint32_t>(s.done.size()));
    for (const auto& [req, entry] : s.done) {
      w.put<uint64_t>(req);
      w.put<uint64_t>(entry.seq);
      put_result(w, entry.result);
    }
  }
}

void ShardStore::decode(Reader& r) {
  *this = ShardStore{};
  for (TableId t : kAllTables) {
    visit_table(
        t,
        [&](auto tag) {
          using Tag = decltype(tag);
          const uint32_t n = get_count(r, 4);
          for (uint32_t i = 0; i < n && r.ok(); ++i) {
            typename Tag::Key k{};
            typename Tag::Record v{};
            get_key(r, k);
            get_record(r, v);
            if (r.ok()) table<Tag>().put(k, std::move(v));
          }
        },
        [] {});
  }
  uint32_t n = get_count(r, 1 + 4 + 4);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const auto t = r.get<uint8_t>();
    if (!is_valid_table(t)) r.fail();
    auto kb = r.get_bytes();
    std::set<int> ranks;
    get_ranks(r, ranks);
    if (r.ok()) key_subs_[{static_cast<TableId>(t), Bytes(kb.begin(), kb.end())}] = ranks;
  }
  n = get_count(r, 1 + 4);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const auto t = r.get<uint8_t>();
    if (!is_valid_table(t)) r.fail();
    std::set<int> ranks;
    get_ranks(r, ranks);
    if (r.ok()) table_subs_[static_cast<TableId>(t)] = ranks;
  }
  n = get_count(r, 4 + 8 + 8 + 4);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const auto client = r.get<int32_t>();
    ClientSession s;
    s.incarnation = r.get<uint64_t>();
    s.floor = r.get<uint64_t>();
    const uint32_t m = get_count(r, 8 + 8 + 6);
    for (uint32_t j = 0; j < m && r.ok(); ++j) {
      const auto req = r.get<uint64_t>();
      SessionEntry entry;
      entry.seq = r.get<uint64_t>();
      get_result(r, entry.result);
      s.done.emplace(req, std::move(entry));
    }
    if (client < 0) r.fail();
    if (r.ok()) sessions_[client] = std::move(s);
  }
}

}  // namespace prism::gcs
