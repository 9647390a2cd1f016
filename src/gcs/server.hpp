// GcsServer: one GCS rank's part of the Global Control Store.
//
// Driven entirely by its caller: handle() for every GCS server message that
// arrives (first byte 0x40..0x4F), tick() with the current time at least every
// few heartbeat intervals. No threads, no sockets, no MPI inside: messages go
// out through the Outbox. See gcs/gcs.hpp for the protocol.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "common/status.hpp"
#include "gcs/layout.hpp"
#include "gcs/messages.hpp"
#include "gcs/outbox.hpp"
#include "gcs/store.hpp"

namespace prism::gcs {

/// Timing of the server. Defaults suit ranks that block on an event fd and
/// call tick() from a timer (next_deadline_us()); tests shrink them.
struct GcsServerOptions {
  uint64_t heartbeat_interval_us = 50'000;  // how often configs+liveness are gossiped
  uint64_t failure_timeout_us = 1'000'000;  // silence after which a peer is cut out
  uint64_t retransmit_us = 100'000;         // resend unacknowledged writes / sync requests
  size_t log_retain = 1024;                 // committed entries kept for a successor's catch-up
  size_t reorder_limit = 4096;              // forwards buffered ahead of a gap
  /// A tick arriving more than failure_timeout_us/2 after the previous one
  /// means this process stalled (descheduled, stopped in a debugger): peers
  /// are given a fresh timeout instead of being cut out for our own silence.
  bool stall_guard = true;
};

/// One shard as seen from one server, for tests, snapshots and monitoring.
struct ShardStatus {
  ChainConfig config;
  bool member = false;
  bool installed = false;  // holds the shard's state (a joining spare does not yet)
  uint64_t applied = 0;    // last write applied here
  uint64_t committed = 0;  // last write known to be at the tail
  size_t log_size = 0;
};

/// A GCS rank. Not thread-safe: call handle(), tick() and the accessors from
/// one thread (the rank's progress loop).
/// Example:
///   gcs::GcsServer server(layout, my_rank, outbox);
///   transport.set_handler([&](int src, auto msg) {
///     if (gcs::is_gcs_server_message(msg[0])) (void)server.handle(src, msg); });
///   for (;;) { transport.wait_for_events(server.next_deadline_us() - now_us());
///              transport.try_poll(); server.tick(now_us()); }
class GcsServer {
 public:
  /// `my_rank` must be one of layout.ranks. Sends nothing until the first tick.
  GcsServer(GcsLayout layout, int my_rank, Outbox& out, GcsServerOptions options = {});
  ~GcsServer();
  GcsServer(const GcsServer&) = delete;
  GcsServer& operator=(const GcsServer&) = delete;

  /// Processes one message from `src`. A malformed or unexpected message is
  /// dropped and the returned Status says why (nothing is logged); a bad
  /// request that can be answered gets an error reply and returns ok.
  Status handle(int src, std::span<const std::byte> msg);

  /// Advances timers: heartbeats, failure detection, chain reconfiguration,
  /// retransmission. `now_us` must not go backwards.
  void tick(uint64_t now_us);

  /// When tick() next has something to do (absolute, same clock as tick).
  uint64_t next_deadline_us() const;

  /// Fault injection: a silent server ignores every message and tick, so its
  /// peers see it as crashed. Turning silence off gives every peer a fresh
  /// timeout; the server then learns from heartbeats whether it was cut out
  /// (it drops that shard's state and becomes a spare).
  void set_silent(bool silent);
  bool silent() const noexcept { return silent_; }

  int rank() const noexcept { return rank_; }
  const GcsLayout& layout() const noexcept { return layout_; }
  /// This server's view of shard `shard`'s chain.
  const ChainConfig& config(int shard) const;
  ShardStatus shard_status(int shard) const;
  /// The shard's state here, or nullptr unless this server is a member that
  /// holds the state.
  const ShardStore* store(int shard) const;
  /// Shards this server is a member of.
  std::vector<int> shards_served() const;

 private:
  struct Replica {
    int shard = 0;
    bool installed = false;
    uint64_t joined_epoch = 0;  // epoch at which this rank joined the chain
    ShardStore store{};
    uint64_t applied = 0;
    uint64_t committed = 0;
    std::deque<LogEntry> log{};              // ascending seq; ends at `applied`
    std::map<uint64_t, LogEntry> reorder{};  // forwards that arrived ahead of a gap
    uint64_t last_progress_us = 0;         // last ack progress / retransmission
    uint64_t last_sync_us = 0;             // last SyncRequest sent
    int state_sent_to = -1;                // throttles repeated state transfers
    uint64_t state_sent_epoch = 0;
    uint64_t state_sent_us = 0;
  };

  template <class Req, class Bad>
  Replica* admit(int src, std::span<const std::byte> msg, Req& req, bool at_head, Status& st,
                 Bad bad);
  Status handle_write(int src, std::span<const std::byte> msg);
  Status handle_read(int src, std::span<const std::byte> msg);
  Status handle_heartbeat(int src, std::span<const std::byte> msg);
  template <class M>
  Status from_peer(int src, std::span<const std::byte> msg, int (ChainConfig::*from)(int) const,
                   bool tell_old, Status (GcsServer::*handler)(int, Replica&, M&));
  Status handle_forward(int src, Replica& rep, Forward& f);
  Status handle_ack(int src, Replica& rep, Ack& a);
  Status handle_sync(int src, Replica& rep, SyncRequest& q);
  Status handle_state(int src, Replica& rep, StateTransfer& st);

  bool adopt(int shard, const ChainConfig& cfg);
  void on_config_change(Replica& rep);
  void coordinate(int shard);
  int pick_spare(int shard) const;
  bool alive(int rank) const;
  void broadcast_heartbeat();
  Bytes heartbeat_bytes() const;

  void append_and_pass(Replica& rep, LogEntry e);
  void drain_reorder(Replica& rep);
  void commit_through(Replica& rep, uint64_t upto);
  void send_ack(Replica& rep);
  void resend_after(Replica& rep, uint64_t after);
  void send_sync(Replica& rep);
  void send_state(Replica& rep, int to);
  Status install_state(Replica& rep, std::span<const std::byte> state);
  void trim_log(Replica& rep);
  void reply(int client, uint64_t req_id, uint64_t seq, OpResult result);
  void redirect(int client, uint64_t req_id, int shard);
  Replica* replica(int shard);
  const ChainConfig& cfg_of(const Replica& rep) const {
    return configs_[static_cast<size_t>(rep.shard)];
  }

  GcsLayout layout_;
  int rank_;
  Outbox& out_;
  GcsServerOptions opt_;
  std::vector<ChainConfig> configs_;                  // every shard's chain, as known here
  std::map<int, std::unique_ptr<Replica>> replicas_;  // shards this rank is a member of
  std::map<int, uint64_t> last_heard_;                // GCS peer -> time of its last message
  uint64_t now_ = 0;
  bool started_ = false;
  uint64_t last_heartbeat_us_ = 0;
  bool silent_ = false;
  bool gossip_pending_ = false;  // a config changed: heartbeat at once
  bool fresh_view_ = true;       // false after a stall until a peer's heartbeat arrives
  bool revived_ = false;         // silence just ended: restart peers' timeouts next tick
  uint64_t stale_since_us_ = 0;  // when fresh_view_ last became false
};

}  // namespace prism::gcs
