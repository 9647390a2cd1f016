// What a GCS rank runs: a gcs::GcsServer over the rank's Transport, until the
// driver's shutdown message arrives.
//
// The loop (run()) polls the transport and hands every GCS message to the
// server (bundles are unpacked, runtime/gcs_wire.hpp), sends what the round
// produced as one bundle per destination, ticks the server when its next
// deadline is due, and otherwise sleeps in the transport's event wait until a
// message arrives or the deadline comes: an idle GCS rank wakes only for its
// heartbeats (every 50 ms) and uses ~0 CPU.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "gcs/gcs.hpp"
#include "runtime/gcs_wire.hpp"
#include "runtime/layout.hpp"
#include "runtime/protocol.hpp"
#include "scheduler/global_scheduler.hpp"
#include "transport/transport.hpp"

namespace prism::runtime {

/// Counters of one GCS rank, for logs and tests.
struct GcsRoleStats {
  uint64_t messages = 0;  // GCS messages handled (after unbundling)
  uint64_t dropped = 0;   // of those, rejected by the server (Status returned)
  uint64_t wakeups = 0;   // returns from the event wait
  uint64_t ticks = 0;
  uint64_t tasks_placed = 0;  // by the global scheduler
  uint64_t heartbeats = 0;
  uint64_t steal_orders = 0;  // sent to busy nodes (work stealing)
};

/// One GCS rank. Not thread-safe: construct, run() and destroy on the main
/// thread. Example (run.cpp): `GcsRole gcs(config, transport, layout, *gcs_layout); rc = gcs.run();`
class GcsRole {
 public:
  /// `nodes`: every node rank's resources; the first GCS rank runs the global
  /// scheduler over them (unless config.global_scheduler is off).
  GcsRole(const Config& config, transport::Transport& transport, ClusterLayout layout,
          gcs::GcsLayout gcs_layout, std::vector<scheduler::NodeResources> nodes = {},
          gcs::GcsServerOptions options = {});
  ~GcsRole();
  GcsRole(const GcsRole&) = delete;
  GcsRole& operator=(const GcsRole&) = delete;

  /// Serves until shutdown; returns the job's exit code. Writes the snapshot
  /// file (config.gcs_snapshot) before it returns.
  int run();
  const GcsRoleStats& stats() const noexcept { return stats_; }
  /// Whether the driver's rank reported a node rank lost (shutdown then
  /// skips the MPI collectives, which would wait for it forever).
  bool lost_any() const noexcept { return lost_any_; }

 private:
  void on_message(int src, std::span<const std::byte> msg);
  // Global scheduler: place a spilled task / take a node's heartbeat.
  void on_spill_task(int src, std::span<const std::byte> msg);
  struct Forward {  // the tasks placed on one node by one spill message
    MessageBatch tasks{MessageKind::kSubmitTasks};
    std::vector<ObjectId> ids;
  };
  using Forwards = std::map<int, Forward>;
  // A spilled task and where it goes. `interchangeable`: any node would do
  // (no explicit node, placement or large argument; every node can run it).
  struct Placed {
    ObjectId id;
    std::span<const std::byte> task;  // into the spill message
    int node = -1;
    bool interchangeable = false;
  };
  // Picks a node for one spilled task (appends to `placed`; a task that
  // cannot be placed fails at its owner).
  void place_spilled(int src, std::span<const std::byte> body, std::vector<Placed>& placed);
  void fail_spilled(const ObjectId& id, const std::string& why);
  void on_node_load(int src, std::span<const std::byte> msg);

  const Config config_;
  transport::Transport& transport_;
  ClusterLayout layout_;
  gcs::GcsLayout gcs_layout_;
  GcsOutbox outbox_;
  std::unique_ptr<gcs::GcsServer> server_;
  GcsRoleStats stats_;
  std::unique_ptr<scheduler::GlobalScheduler> global_scheduler_;  // first GCS rank only
  bool stop_ = false;
  bool lost_any_ = false;
  int exit_code_ = 0;
};

}  // namespace prism::runtime
