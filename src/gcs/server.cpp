#include "gcs/server.hpp"

#include <algorithm>
#include <set>
#include <utility>

namespace prism::gcs {
namespace {

Status dropped(std::string why) {
  return {Errc::kInvalidArgument, std::move(why)};
}

// The request id of a request that failed to decode, when its first bytes are
// intact, so the client can be told instead of retrying forever.
bool peek_req_id(std::span<const std::byte> msg, uint64_t& id) {
  if (msg.size() < 1 + sizeof(uint64_t)) return false;
  Reader r(msg.subspan(1));
  id = r.get<uint64_t>();
  return r.ok();
}

}  // namespace

GcsServer::GcsServer(GcsLayout layout, int my_rank, Outbox& out, GcsServerOptions options)
    : layout_(std::move(layout)), rank_(my_rank), out_(out), opt_(options) {
  configs_.resize(static_cast<size_t>(layout_.shards));
  for (int s = 0; s < layout_.shards; ++s) {
    configs_[static_cast<size_t>(s)] = layout_.initial_chain(s);
    if (configs_[static_cast<size_t>(s)].contains(rank_))  // all start from the same empty state
      replicas_.emplace(
          s, std::make_unique<Replica>(Replica{.shard = s, .installed = true, .joined_epoch = 1}));
  }
}

GcsServer::~GcsServer() = default;

const ChainConfig& GcsServer::config(int shard) const {
  static const ChainConfig kNone{};
  if (shard < 0 || shard >= layout_.shards) return kNone;
  return configs_[static_cast<size_t>(shard)];
}

ShardStatus GcsServer::shard_status(int shard) const {
  auto it = replicas_.find(shard);
  if (it == replicas_.end()) return {config(shard)};
  const Replica& r = *it->second;
  return {config(shard), true, r.installed, r.applied, r.committed, r.log.size()};
}

const ShardStore* GcsServer::store(int shard) const {
  auto it = replicas_.find(shard);
  return it != replicas_.end() && it->second->installed ? &it->second->store : nullptr;
}

std::vector<int> GcsServer::shards_served() const {
  std::vector<int> out;
  for (const auto& [s, r] : replicas_) out.push_back(s);
  return out;
}

GcsServer::Replica* GcsServer::replica(int shard) {
  auto it = replicas_.find(shard);
  return it == replicas_.end() ? nullptr : it->second.get();
}

void GcsServer::set_silent(bool silent) {
  if (silent_ && !silent) {
    // Back from the dead: our own silence says nothing about the peers, and
    // our view of the chains may be stale until a peer's heartbeat arrives.
    revived_ = true;
    fresh_view_ = layout_.ranks.size() == 1;
  }
  silent_ = silent;
}

bool GcsServer::alive(int rank) const {
  if (rank == rank_) return true;
  auto it = last_heard_.find(rank);
  if (it == last_heard_.end()) return false;
  return now_ - it->second < opt_.failure_timeout_us;
}

// ---- dispatch ---------------------------------------------------------------

Status GcsServer::handle(int src, std::span<const std::byte> msg) {
  if (silent_) return {Errc::kShutdown, "server is silent (fault injection)"};
  auto kind = peek_kind(msg);
  if (!kind) return kind.status();
  if (src != rank_ && layout_.is_gcs_rank(src)) last_heard_[src] = now_;
  switch (*kind) {
    case MsgKind::kWriteRequest:
      return handle_write(src, msg);
    case MsgKind::kReadRequest:
      return handle_read(src, msg);
    case MsgKind::kHeartbeat:
      return handle_heartbeat(src, msg);
    case MsgKind::kForward:
      return from_peer(src, msg, &ChainConfig::predecessor, true, &GcsServer::handle_forward);
    case MsgKind::kAck:
      return from_peer(src, msg, &ChainConfig::successor, false, &GcsServer::handle_ack);
    case MsgKind::kSyncRequest:
      return from_peer(src, msg, &ChainConfig::successor, true, &GcsServer::handle_sync);
    case MsgKind::kStateTransfer:
      return from_peer(src, msg, &ChainConfig::predecessor, false, &GcsServer::handle_state);
    default:
      break;
  }
  return {Errc::kMalformedMessage,
          "GCS message kind " + std::to_string(static_cast<int>(*kind)) + " is not for a server"};
}

void GcsServer::reply(int client, uint64_t req_id, uint64_t seq, OpResult result) {
  out_.send(client, encode(Reply{req_id, seq, std::move(result)}));
}

void GcsServer::redirect(int client, uint64_t req_id, int shard) {
  out_.send(client, encode(Redirect{req_id, static_cast<uint32_t>(shard),
                                    configs_[static_cast<size_t>(shard)]}));
}

// ---- client requests --------------------------------------------------------

// The checks a client request passes before it is served: it decodes, its
// shard exists and its keys belong there (`bad`: why not), and this rank
// serves the shard in that role (the head for writes, the tail for reads;
// else a Redirect) and is ready. Returns the replica, or nullptr when the
// request was answered, or must be retried by the client (`st`).
template <class Req, class Bad>
GcsServer::Replica* GcsServer::admit(int src, std::span<const std::byte> msg, Req& req,
                                     bool at_head, Status& st, Bad bad) {
  if (Status s = decode(msg, req); !s) {
    uint64_t id = 0;
    if (peek_req_id(msg, id)) reply(src, id, 0, OpResult::error(s));
    st = s;
    return nullptr;
  }
  Status why = req.shard < static_cast<uint32_t>(layout_.shards)
                   ? bad(req)
                   : Status{Errc::kInvalidArgument, "no shard " + std::to_string(req.shard)};
  if (!why) {
    reply(src, req.req_id, 0, OpResult::error(why));
    return nullptr;
  }
  const int shard = static_cast<int>(req.shard);
  Replica* rep = replica(shard);
  const ChainConfig& cfg = configs_[static_cast<size_t>(shard)];
  if (!rep || (at_head ? cfg.head() : cfg.tail()) != rank_) {
    redirect(src, req.req_id, shard);
    return nullptr;
  }
  if (!rep->installed || !fresh_view_) {
    st = {Errc::kShutdown, "shard not ready here yet (client retries)"};
    return nullptr;
  }
  return rep;
}

Status GcsServer::handle_write(int src, std::span<const std::byte> msg) {
  WriteRequest req;
  Status st;
  Replica* rep = admit(src, msg, req, /*at_head=*/true, st, [&](const WriteRequest& q) {
    PRISM_RETURN_IF_ERROR(validate(q.op));
    const int shard = static_cast<int>(q.shard);
    bool foreign = !q.op.key.empty() && layout_.shard_of(q.op.table, q.op.key) != shard;
    for (const WriteOp& sub : q.op.ops)
      foreign = foreign || layout_.shard_of(sub.table, sub.key) != shard;
    return foreign ? Status{Errc::kInvalidArgument, "key does not belong to shard"} : Status::ok();
  });
  if (!rep) return st;
  auto [seen, done] = rep->store.seen(src, req.incarnation, req.req_id);
  if (seen == ShardStore::Seen::kStale) return dropped("stale duplicate request");
  if (seen == ShardStore::Seen::kDone) {
    // A retry. Answer it if the first attempt committed; otherwise the tail
    // answers when it does.
    if (done->seq <= rep->committed) reply(src, req.req_id, done->seq, done->result);
    return Status::ok();
  }
  append_and_pass(*rep, LogEntry{rep->applied + 1, src, req.incarnation, req.req_id, req.ack_floor,
                                 std::move(req.op)});
  return Status::ok();
}

Status GcsServer::handle_read(int src, std::span<const std::byte> msg) {
  ReadRequest req;
  Status st;
  Replica* rep = admit(src, msg, req, /*at_head=*/false, st, [&](const ReadRequest& q) {
    if (!is_valid_table(static_cast<uint8_t>(q.table)))
      return Status{Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(q.table))};
    if (q.kind != ReadKind::kGet) return Status::ok();
    PRISM_RETURN_IF_ERROR(validate_key(q.table, q.key));
    return layout_.shard_of(q.table, q.key) == static_cast<int>(q.shard)
               ? Status::ok()
               : Status{Errc::kInvalidArgument, "key does not belong to shard"};
  });
  if (!rep) return st;
  reply(
      src, req.req_id, 0,
      req.kind == ReadKind::kGet ? rep->store.get(req.table, req.key) : rep->store.scan(req.table));
  return Status::ok();
}

// ---- membership ---------------------------------------------------------------

Status GcsServer::handle_heartbeat(int src, std::span<const std::byte> msg) {
  if (src == rank_ || !layout_.is_gcs_rank(src)) return dropped("heartbeat from a non-GCS rank");
  Heartbeat hb;
  PRISM_RETURN_IF_ERROR(decode(msg, hb));
  bool sender_behind = false;
  for (const auto& [shard, cfg] : hb.configs) {
    if (shard >= static_cast<uint32_t>(layout_.shards)) continue;
    adopt(static_cast<int>(shard), cfg);
    if (supersedes(configs_[shard], cfg)) sender_behind = true;
  }
  if (hb.configs.size() < static_cast<size_t>(layout_.shards)) sender_behind = true;
  fresh_view_ = true;
  if (sender_behind) out_.send(src, heartbeat_bytes());
  return Status::ok();
}

bool GcsServer::adopt(int shard, const ChainConfig& cfg) {
  auto& cur = configs_[static_cast<size_t>(shard)];
  if (cfg.members.empty() || cfg.joined.size() != cfg.members.size() || !supersedes(cfg, cur))
    return false;
  for (int m : cfg.members)
    if (!layout_.is_gcs_rank(m)) return false;
  cur = cfg;
  auto it = replicas_.find(shard);
  const uint64_t joined = cfg.joined_at(rank_);
  if (joined == 0) {  // not (or no longer) a member: drop the shard's state
    if (it != replicas_.end()) replicas_.erase(it);
    return true;
  }
  if (it != replicas_.end() && it->second->joined_epoch != joined) {
    // We were cut out and re-added while not looking: our state may hold
    // writes that never committed. Start over as a joining spare.
    replicas_.erase(it);
    it = replicas_.end();
  }
  if (it == replicas_.end())
    it = replicas_
             .emplace(shard,
                      std::make_unique<Replica>(Replica{.shard = shard, .joined_epoch = joined}))
             .first;
  on_config_change(*it->second);
  return true;
}

void GcsServer::on_config_change(Replica& rep) {
  const ChainConfig& cfg = cfg_of(rep);
  rep.reorder.clear();  // they came from the old predecessor; it resends on sync
  rep.last_progress_us = now_;
  rep.state_sent_to = -1;
  if (cfg.head() != rank_) send_sync(rep);
  if (!rep.installed) return;
  if (cfg.tail() == rank_) commit_through(rep, rep.applied);  // we are the tail now
  send_ack(rep);
}

void GcsServer::coordinate(int shard) {
  const ChainConfig& cfg = configs_[static_cast<size_t>(shard)];
  int coordinator = -1;
  for (int m : cfg.members)
    if (alive(m)) {
      coordinator = m;
      break;
    }
  if (coordinator != rank_ || !fresh_view_) return;
  // Only a replica holding the shard's state may reconfigure: the config it
  // proposes contains itself, so the newest config always has a member with
  // every committed write, even when false suspicions (a congested network)
  // make coordinators cut out live replicas. Installed members form a prefix
  // of the chain (spares join at the tail and install from their
  // predecessor), so an uninstalled first-live member means the shard's data
  // is gone with its installed members anyway.
  const auto self_it = replicas_.find(shard);
  const Replica* self = self_it == replicas_.end() ? nullptr : self_it->second.get();
  if (!self || !self->installed) return;
  ChainConfig next;
  next.epoch = cfg.epoch + 1;
  for (size_t i = 0; i < cfg.members.size(); ++i) {
    if (!alive(cfg.members[i])) continue;
    next.members.push_back(cfg.members[i]);
    next.joined.push_back(i < cfg.joined.size() ? cfg.joined[i] : 1);
  }
  if (next.members.size() < static_cast<size_t>(layout_.replicas)) {
    const int spare = pick_spare(shard);
    if (spare >= 0) {
      next.members.push_back(spare);
      next.joined.push_back(next.epoch);
    }
  }
  if (next.members == cfg.members) return;
  adopt(shard, next);
  gossip_pending_ = true;
}

int GcsServer::pick_spare(int shard) const {
  std::set<int> busy;
  for (const auto& c : configs_) busy.insert(c.members.begin(), c.members.end());
  std::vector<int> candidates;
  for (int r : layout_.ranks)
    if (!busy.count(r) && alive(r)) candidates.push_back(r);
  if (candidates.empty()) return -1;
  // Shards prefer different spares, so two chains that fail together rarely
  // pick the same one (if they do, that rank simply serves both).
  return candidates[static_cast<size_t>(shard) % candidates.size()];
}

Bytes GcsServer::heartbeat_bytes() const {
  Heartbeat hb;
  for (int s = 0; s < layout_.shards; ++s)
    hb.configs.emplace_back(static_cast<uint32_t>(s), configs_[static_cast<size_t>(s)]);
  return encode(hb);
}

void GcsServer::broadcast_heartbeat() {
  const Bytes hb = heartbeat_bytes();
  for (int r : layout_.ranks)
    if (r != rank_) out_.send(r, hb);
  last_heartbeat_us_ = now_;
  gossip_pending_ = false;
}

// ---- replication --------------------------------------------------------------

void GcsServer::append_and_pass(Replica& rep, LogEntry e) {
  rep.store.apply(e);
  rep.applied = e.seq;
  rep.log.push_back(std::move(e));
  const ChainConfig& cfg = cfg_of(rep);
  if (cfg.tail() == rank_) {
    commit_through(rep, rep.applied);
    return;
  }
  const int succ = cfg.successor(rank_);
  if (succ >= 0)
    out_.send(succ, encode_forward(static_cast<uint32_t>(rep.shard), cfg.epoch, rep.log.back()));
}

void GcsServer::drain_reorder(Replica& rep) {
  while (!rep.reorder.empty()) {
    auto it = rep.reorder.begin();
    if (it->first <= rep.applied) {
      rep.reorder.erase(it);
      continue;
    }
    if (it->first != rep.applied + 1) break;
    LogEntry e = std::move(it->second);
    rep.reorder.erase(it);
    append_and_pass(rep, std::move(e));
  }
}

void GcsServer::commit_through(Replica& rep, uint64_t upto) {
  if (upto <= rep.committed) return;
  const auto shard = static_cast<uint32_t>(rep.shard);
  // The log is in seq order and keeps up to log_retain committed entries for
  // catch-up: start after them, not at the front (a tail commits on every
  // write, and walking 1,024 retained entries each time was ~4% of the GCS
  // rank's CPU at 10,000 task rows a second).
  const auto first = std::partition_point(
      rep.log.begin(), rep.log.end(), [&](const LogEntry& e) { return e.seq <= rep.committed; });
  for (auto it = first; it != rep.log.end(); ++it) {
    const LogEntry& e = *it;
    if (e.seq > upto) break;
    reply(e.client, e.req_id, e.seq, e.result);
    if (!e.notify) continue;
    auto publish = [&](TableId table, const Bytes& key, bool present, const Bytes& post) {
      const auto subs = rep.store.subscribers(table, key);
      if (subs.empty()) return;
      const Bytes n = encode(Notify{shard, e.seq, table, key, present, post});
      for (int s : subs) out_.send(s, n);
    };
    if (e.op.kind != OpKind::kBatch && e.notices.empty())
      publish(e.op.table, e.op.key, e.present, e.post);
    for (const BatchNotice& b : e.notices)  // a batch, or a run of tasks
      publish(b.table, b.key, b.present, b.post);
  }
  rep.committed = upto;
  rep.last_progress_us = now_;
  send_ack(rep);
  trim_log(rep);
}

void GcsServer::send_ack(Replica& rep) {
  const ChainConfig& cfg = cfg_of(rep);
  const int pred = cfg.predecessor(rank_);
  if (pred < 0 || rep.committed == 0) return;
  out_.send(pred, encode(Ack{static_cast<uint32_t>(rep.shard), cfg.epoch, rep.committed}));
}

void GcsServer::trim_log(Replica& rep) {
  // Committed entries are kept for a successor's catch-up. A GCS of one rank
  // has no successor and no spare, ever: it keeps none (lineage batches carry
  // ~50 task rows each, so 1,024 retained ones held ~8.5 MB in
  // bench_task_graphs: 2,200 page faults of its 7,000).
  const uint64_t retain = layout_.ranks.size() > 1 ? opt_.log_retain : 0;
  while (!rep.log.empty() && rep.log.front().seq + retain <= rep.committed) rep.log.pop_front();
}

void GcsServer::resend_after(Replica& rep, uint64_t after) {
  const ChainConfig& cfg = cfg_of(rep);
  const int succ = cfg.successor(rank_);
  rep.last_progress_us = now_;
  if (succ < 0) return;
  for (const LogEntry& e : rep.log)
    if (e.seq > after)
      out_.send(succ, encode_forward(static_cast<uint32_t>(rep.shard), cfg.epoch, e));
}

void GcsServer::send_sync(Replica& rep) {
  const ChainConfig& cfg = cfg_of(rep);
  const int pred = cfg.predecessor(rank_);
  rep.last_sync_us = now_;
  if (pred < 0) return;
  out_.send(pred, encode(SyncRequest{static_cast<uint32_t>(rep.shard), cfg.epoch, rep.installed,
                                     rep.applied}));
}

void GcsServer::send_state(Replica& rep, int to) {
  const ChainConfig& cfg = cfg_of(rep);
  if (rep.state_sent_to == to && rep.state_sent_epoch == cfg.epoch &&
      now_ - rep.state_sent_us < 2 * opt_.retransmit_us)
    return;  // one is on its way
  Writer w(4096);
  w.put<uint64_t>(rep.applied);
  w.put<uint64_t>(rep.committed);
  rep.store.encode(w);
  w.put<uint32_t>(static_cast<uint32_t>(rep.log.size()));
  for (const LogEntry& e : rep.log) put_entry(w, e, /*with_outcome=*/true);
  out_.send(to, encode(StateTransfer{static_cast<uint32_t>(rep.shard), cfg.epoch, w.take()}));
  rep.state_sent_to = to;
  rep.state_sent_epoch = cfg.epoch;
  rep.state_sent_us = now_;
}

Status GcsServer::install_state(Replica& rep, std::span<const std::byte> state) {
  Reader r(state);
  const auto applied = r.get<uint64_t>();
  const auto committed = r.get<uint64_t>();
  ShardStore store;
  store.decode(r);
  const auto n = r.get<uint32_t>();
  std::deque<LogEntry> log;
  if (!r.ok() || static_cast<size_t>(n) * 40 > r.rest().size()) r.fail();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    LogEntry e;
    get_entry(r, e, /*with_outcome=*/true);
    if (!log.empty() && e.seq != log.back().seq + 1) r.fail();
    log.push_back(std::move(e));
  }
  PRISM_RETURN_IF_ERROR(r.finish("GCS shard state"));
  if (committed > applied || (!log.empty() && log.back().seq != applied))
    return {Errc::kMalformedMessage, "GCS shard state is inconsistent"};
  rep.store = std::move(store);
  rep.applied = applied;
  rep.committed = committed;
  rep.log = std::move(log);
  rep.installed = true;
  rep.last_progress_us = now_;
  drain_reorder(rep);
  const ChainConfig& cfg = cfg_of(rep);
  if (cfg.tail() == rank_) commit_through(rep, rep.applied);
  send_ack(rep);
  return Status::ok();
}

// The checks a message between replicas passes before `handler` acts on it:
// it comes from a GCS rank, decodes, names a shard served here, and carries
// this chain's epoch from the neighbour `from` names (the predecessor for
// forwards and state, the successor for acks and syncs). A sender of a
// forward or a sync from an older epoch (`tell_old`) is sent our configs: its
// chain moved on.
template <class M>
Status GcsServer::from_peer(int src, std::span<const std::byte> msg,
                            int (ChainConfig::*from)(int) const, bool tell_old,
                            Status (GcsServer::*handler)(int, Replica&, M&)) {
  auto drop = [](const char* why) { return dropped(std::string(M::what) + why); };
  if (!layout_.is_gcs_rank(src)) return drop(" from a non-GCS rank");
  M m;
  PRISM_RETURN_IF_ERROR(decode(msg, m));
  Replica* rep = replica(static_cast<int>(m.shard));
  if (!rep) return drop(" for a shard not served here");
  const ChainConfig& cfg = cfg_of(*rep);
  if (m.epoch < cfg.epoch && tell_old) out_.send(src, heartbeat_bytes());
  if (m.epoch != cfg.epoch)
    return drop(m.epoch < cfg.epoch ? " from an old epoch" : " from a newer epoch");
  if (src != (cfg.*from)(rank_)) return drop(" from outside the chain");
  return (this->*handler)(src, *rep, m);
}

Status GcsServer::handle_forward(int /*src*/, Replica& rep, Forward& f) {
  if (!rep.installed || f.entry.seq > rep.applied + 1) {
    if (f.entry.seq > rep.applied && rep.reorder.size() < opt_.reorder_limit)
      rep.reorder.emplace(f.entry.seq, std::move(f.entry));
    return Status::ok();
  }
  if (f.entry.seq <= rep.applied) {
    send_ack(rep);  // a retransmission: our ack may have been lost
    return Status::ok();
  }
  append_and_pass(rep, std::move(f.entry));
  drain_reorder(rep);
  return Status::ok();
}

Status GcsServer::handle_ack(int /*src*/, Replica& rep, Ack& a) {
  if (!rep.installed) return dropped("ack before state");
  const uint64_t c = std::min(a.committed, rep.applied);
  if (c > rep.committed) {
    rep.committed = c;
    rep.last_progress_us = now_;
    trim_log(rep);
    send_ack(rep);
  }
  return Status::ok();
}

Status GcsServer::handle_sync(int src, Replica& rep, SyncRequest& q) {
  if (!rep.installed) return dropped("sync before our own state");
  // Catch up from the log when it reaches back far enough, else ship it all.
  const bool log_covers =
      q.applied == rep.applied || (!rep.log.empty() && rep.log.front().seq <= q.applied + 1);
  if (q.installed && q.applied <= rep.applied && log_covers)
    resend_after(rep, q.applied);
  else
    send_state(rep, src);
  return Status::ok();
}

Status GcsServer::handle_state(int /*src*/, Replica& rep, StateTransfer& st) {
  if (rep.installed && Reader(st.state).get<uint64_t>() <= rep.applied)
    return Status::ok();  // a late duplicate
  return install_state(rep, st.state);
}

// ---- time ---------------------------------------------------------------------

void GcsServer::tick(uint64_t now_us) {
  if (silent_) return;
  if (!started_) {
    started_ = true;
    now_ = now_us;
    for (int r : layout_.ranks)
      if (r != rank_) last_heard_[r] = now_;
    broadcast_heartbeat();
    return;
  }
  if (now_us < now_) return;
  if (revived_ || (opt_.stall_guard && now_us - now_ > opt_.failure_timeout_us / 2)) {
    revived_ = false;
    for (auto& [r, t] : last_heard_) t = now_us;
    fresh_view_ = layout_.ranks.size() == 1;
    stale_since_us_ = now_us;
  }
  now_ = now_us;
  // A peer's heartbeat normally refreshes our view; if none comes for a whole
  // failure timeout, the peers are gone and our own view is all there is.
  if (!fresh_view_ && now_ - stale_since_us_ >= opt_.failure_timeout_us) fresh_view_ = true;

  std::vector<int> served = shards_served();
  for (int s : served) coordinate(s);

  for (auto& [s, rp] : replicas_) {
    Replica& rep = *rp;
    const ChainConfig& cfg = cfg_of(rep);
    if (rep.installed && cfg.successor(rank_) >= 0 && rep.committed < rep.applied &&
        now_ - rep.last_progress_us >= opt_.retransmit_us)
      resend_after(rep, rep.committed);
    if (!rep.installed && cfg.predecessor(rank_) >= 0 &&
        now_ - rep.last_sync_us >= opt_.retransmit_us)
      send_sync(rep);
  }
  if (gossip_pending_ || now_ - last_heartbeat_us_ >= opt_.heartbeat_interval_us)
    broadcast_heartbeat();
}

uint64_t GcsServer::next_deadline_us() const {
  if (!started_) return 0;
  uint64_t d = last_heartbeat_us_ + opt_.heartbeat_interval_us;
  for (const auto& [s, rp] : replicas_) {
    const Replica& rep = *rp;
    const ChainConfig& cfg = cfg_of(rep);
    if (rep.installed && cfg.successor(rank_) >= 0 && rep.committed < rep.applied)
      d = std::min(d, rep.last_progress_us + opt_.retransmit_us);
    if (!rep.installed && cfg.predecessor(rank_) >= 0)
      d = std::min(d, rep.last_sync_us + opt_.retransmit_us);
    for (int m : cfg.members) {
      auto it = last_heard_.find(m);
      if (it != last_heard_.end() && alive(m))
        d = std::min(d, it->second + opt_.failure_timeout_us);
    }
  }
  return d;
}

}  // namespace prism::gcs
