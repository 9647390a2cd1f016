// A whole GCS "cluster" in one thread: servers and clients exchange messages
// through a FakeNetwork that the test controls (deliver one at a time, hold,
// drop, duplicate, reorder), and time is a number the test advances.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gcs/gcs.hpp"

namespace prism::gcs::testing {

struct Envelope {
  int src = -1;
  int dst = -1;
  Bytes bytes;
  MsgKind kind() const { return static_cast<MsgKind>(bytes.empty() ? std::byte{0} : bytes[0]); }
};

/// Messages in flight, delivered only when the test says so.
class FakeNetwork {
 public:
  explicit FakeNetwork(uint64_t seed = 1) : rng_(seed) {}

  /// The Outbox a rank sends through.
  Outbox& port(int rank) {
    auto& p = ports_[rank];
    if (!p) p = std::make_unique<Port>(this, rank);
    return *p;
  }

  void post(int src, int dst, Bytes m) {
    ++sent_;
    if (cut_.count(src) || cut_.count(dst) || (drop_p_ > 0 && coin(drop_p_))) {
      ++dropped_;
      return;
    }
    Envelope e{src, dst, std::move(m)};
    if (hold_ && hold_(e)) {
      held_.push_back(std::move(e));
      return;
    }
    if (dup_p_ > 0 && coin(dup_p_)) queue_.push_back(e);
    queue_.push_back(std::move(e));
  }

  /// Next message to deliver: the oldest, or a random one when reordering.
  std::optional<Envelope> take_next() {
    if (queue_.empty()) return std::nullopt;
    size_t i = 0;
    if (reorder_) i = std::uniform_int_distribution<size_t>(0, queue_.size() - 1)(rng_);
    Envelope e = std::move(queue_[i]);
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
    return e;
  }

  std::deque<Envelope>& queue() { return queue_; }
  size_t in_flight() const { return queue_.size(); }
  void set_drop_probability(double p) { drop_p_ = p; }
  void set_duplicate_probability(double p) { dup_p_ = p; }
  void set_reorder(bool on) { reorder_ = on; }
  /// Messages matching `pred` are put aside until release_held().
  void hold(std::function<bool(const Envelope&)> pred) { hold_ = std::move(pred); }
  void release_held() {
    hold_ = nullptr;
    for (auto& e : held_) queue_.push_back(std::move(e));
    held_.clear();
  }
  size_t held() const { return held_.size(); }
  std::vector<Envelope>& held_messages() { return held_; }
  /// Every message from or to `rank` is lost.
  void cut(int rank) { cut_.insert(rank); }
  void heal(int rank) { cut_.erase(rank); }
  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }

 private:
  class Port : public Outbox {
   public:
    Port(FakeNetwork* net, int rank) : net_(net), rank_(rank) {}
    void send(int dst, Bytes msg) override { net_->post(rank_, dst, std::move(msg)); }

   private:
    FakeNetwork* net_;
    int rank_;
  };
  bool coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  std::mt19937_64 rng_;
  std::map<int, std::unique_ptr<Port>> ports_;
  std::deque<Envelope> queue_;
  std::vector<Envelope> held_;
  std::function<bool(const Envelope&)> hold_;
  std::set<int> cut_;
  double drop_p_ = 0, dup_p_ = 0;
  bool reorder_ = false;
  uint64_t sent_ = 0, dropped_ = 0;
};

inline GcsServerOptions fast_server_options() {
  GcsServerOptions o;
  o.heartbeat_interval_us = 10'000;
  o.failure_timeout_us = 100'000;
  o.retransmit_us = 20'000;
  return o;
}

inline GcsClientOptions fast_client_options() {
  GcsClientOptions o;
  o.request_timeout_us = 50'000;
  o.max_backoff_us = 200'000;
  o.max_attempts = 200;
  return o;
}

struct ClusterOptions {
  int gcs = 4;       // GCS ranks: 100, 101, ...
  int replicas = 3;  // 0 = derived
  int clients = 2;   // client ranks: 0, 1, ...
  uint64_t seed = 1;
  GcsServerOptions server = fast_server_options();
  GcsClientOptions client = fast_client_options();
};

/// Servers and clients wired through one FakeNetwork.
class Cluster {
 public:
  static constexpr int kFirstGcsRank = 100;
  static constexpr uint64_t kStep = 5'000;  // virtual microseconds per tick

  explicit Cluster(ClusterOptions o = {}) : opt(o), net(o.seed) {
    std::vector<int> ranks;
    for (int i = 0; i < o.gcs; ++i) ranks.push_back(kFirstGcsRank + i);
    auto l = GcsLayout::make(ranks, o.replicas);
    EXPECT_TRUE(l.has_value());
    layout = *l;
    for (int r : ranks) servers[r] = std::make_unique<GcsServer>(layout, r, net.port(r), o.server);
    for (int c = 0; c < o.clients; ++c) {
      GcsClientOptions co = o.client;
      co.incarnation = 1000 + static_cast<uint64_t>(c);
      clients[c] = std::make_unique<GcsClient>(layout, c, net.port(c), co);
    }
    tick_all();
  }

  GcsServer& server(int rank) { return *servers.at(rank); }
  GcsClient& client(int c = 0) { return *clients.at(c); }

  /// Delivers one message; false if none is in flight.
  bool deliver_one() {
    auto e = net.take_next();
    if (!e) return false;
    route(*e);
    return true;
  }
  /// Delivers until nothing is in flight (bounded).
  size_t deliver_all(size_t max = 1'000'000) {
    size_t n = 0;
    while (n < max && deliver_one()) ++n;
    return n;
  }
  void route(const Envelope& e) {
    if (e.bytes.empty()) return;
    if (is_gcs_server_message(e.bytes[0])) {
      auto it = servers.find(e.dst);
      if (it != servers.end()) {
        Status s = it->second->handle(e.src, e.bytes);
        if (!s) ++server_drops;
      }
    } else if (is_gcs_client_message(e.bytes[0])) {
      auto it = clients.find(e.dst);
      if (it != clients.end()) {
        Status s = it->second->handle(e.src, e.bytes);
        if (!s) ++client_drops;
      }
    }
  }
  void tick_all() {
    for (auto& [r, s] : servers) s->tick(now);
    for (auto& [r, c] : clients) c->tick(now);
  }
  void advance(uint64_t dt = kStep) {
    now += dt;
    tick_all();
  }
  /// Alternates delivering everything and advancing time until `pred` holds
  /// or `max_us` of virtual time passed.
  bool run_until(const std::function<bool()>& pred, uint64_t max_us = 20'000'000) {
    const uint64_t end = now + max_us;
    for (;;) {
      deliver_all();
      if (pred()) return true;
      if (now >= end) return false;
      advance();
    }
  }
  /// Runs for `us` of virtual time.
  void run_for(uint64_t us) {
    const uint64_t end = now + us;
    while (now < end) {
      deliver_all();
      advance();
    }
    deliver_all();
  }

  /// Issues an async call and runs until its DoneCallback fires.
  Status await(const std::function<void(DoneCallback)>& issue, uint64_t max_us = 20'000'000) {
    bool done = false;
    Status st{Errc::kTimeout, "test: no completion"};
    issue([&](Status s) {
      st = std::move(s);
      done = true;
    });
    run_until([&] { return done; }, max_us);
    return st;
  }
  template <class Tag>
  Expected<typename Tag::Record> get(const typename Tag::Key& k, int c = 0) {
    std::optional<Expected<typename Tag::Record>> out;
    client(c).get<Tag>(k, [&](Expected<typename Tag::Record> r) { out.emplace(std::move(r)); });
    run_until([&] { return out.has_value(); });
    if (!out) return Status{Errc::kTimeout, "test: get did not complete"};
    return std::move(*out);
  }

  /// The current config of a shard according to the live servers (the highest).
  ChainConfig config(int shard) const {
    ChainConfig best;
    for (const auto& [r, s] : servers)
      if (!s->silent() && supersedes(s->config(shard), best)) best = s->config(shard);
    return best;
  }
  /// Every member of `shard`'s current chain is live, installed and agrees on
  /// the config; the chain has `len` members; nothing is uncommitted.
  bool settled(int shard, size_t len) const {
    const ChainConfig c = config(shard);
    if (c.members.size() != len) return false;
    for (int m : c.members) {
      const auto& s = *servers.at(m);
      if (s.silent()) return false;
      ShardStatus st = s.shard_status(shard);
      if (!st.member || !st.installed || !(st.config == c) || st.committed != st.applied)
        return false;
    }
    for (const auto& [r, s] : servers)
      if (!s->silent() && !(s->config(shard) == c)) return false;
    return true;
  }
  bool all_settled(size_t len) const {
    for (int s = 0; s < layout.shards; ++s)
      if (!settled(s, len)) return false;
    return true;
  }

  ClusterOptions opt;
  GcsLayout layout;
  FakeNetwork net;
  std::map<int, std::unique_ptr<GcsServer>> servers;
  std::map<int, std::unique_ptr<GcsClient>> clients;
  uint64_t now = 1'000'000;
  uint64_t server_drops = 0;
  uint64_t client_drops = 0;
};

inline ObjectId oid(uint64_t seq, uint32_t owner = 0, uint32_t index = 0) {
  return ObjectId{owner, index, seq};
}

inline TaskRecord task(const std::string& fn, TaskState st = TaskState::kPending) {
  TaskRecord t;
  t.function_name = fn;
  t.state = st;
  return t;
}

}  // namespace prism::gcs::testing
