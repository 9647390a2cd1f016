#include "runtime/gcs_role.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/codec.hpp"
#include "common/log.hpp"
#include "runtime/protocol.hpp"

namespace prism::runtime {
namespace {

uint64_t now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// --prism-gcs-failure-timeout-ms sets the failure timeout; replicas gossip
// (heartbeat) 20 times per timeout, as the defaults do (1 s, 50 ms).
gcs::GcsServerOptions with_failure_timeout(gcs::GcsServerOptions o, const Config& config) {
  if (config.gcs_failure_timeout_ms == 1000) return o;  // the default: as the caller chose
  o.failure_timeout_us = static_cast<uint64_t>(config.gcs_failure_timeout_ms) * 1000;
  o.heartbeat_interval_us = std::max<uint64_t>(o.failure_timeout_us / 20, 250);
  return o;
}

}  // namespace

GcsRole::GcsRole(const Config& config, transport::Transport& transport, ClusterLayout layout,
                 gcs::GcsLayout gcs_layout, std::vector<scheduler::NodeResources> nodes,
                 gcs::GcsServerOptions options)
    : config_(config),
      transport_(transport),
      layout_(std::move(layout)),
      gcs_layout_(std::move(gcs_layout)),
      outbox_(transport, gcs_layout_),
      server_(std::make_unique<gcs::GcsServer>(gcs_layout_, layout_.world_rank, outbox_,
                                               with_failure_timeout(options, config))) {
  if (config_.global_scheduler && !nodes.empty() && !layout_.gcs_ranks.empty() &&
      layout_.gcs_ranks.front() == layout_.world_rank)
    global_scheduler_ = std::make_unique<scheduler::GlobalScheduler>(std::move(nodes));
  transport_.set_handler([this](int src, std::span<const std::byte> m) { on_message(src, m); });
}

GcsRole::~GcsRole() = default;

int GcsRole::run() {
  const uint64_t start = now_us();
  const uint64_t fault_at = config_.gcs_fault_rank == layout_.world_rank
                                ? start + uint64_t{config_.gcs_fault_after_ms} * 1000
                                : kNever;
  if (fault_at != kNever)
    PRISM_LOG_WARN("GCS rank {}: fault injection: silent after {} ms", layout_.world_rank,
                   config_.gcs_fault_after_ms);
  bool just_ticked = false;
  while (!stop_) {
    const int n = transport_.try_poll();  // on_message() feeds the server
    uint64_t now = now_us();
    if (now >= fault_at && !server_->silent()) {
      server_->set_silent(true);
      PRISM_LOG_WARN("GCS rank {}: now silent (fault injection)", layout_.world_rank);
    }
    just_ticked = false;
    if (!server_->silent() && now >= server_->next_deadline_us()) {
      server_->tick(now);
      ++stats_.ticks;
      just_ticked = true;
    }
    outbox_.flush();  // one bundle per destination for everything this round produced
    if (stop_ || n > 0) continue;
    // Sleep until a message arrives or the server's next deadline.
    uint64_t deadline =
        std::min(server_->silent() ? kNever : server_->next_deadline_us(), fault_at);
    now = now_us();
    int64_t timeout = deadline == kNever ? -1
                      : deadline > now   ? static_cast<int64_t>(deadline - now)
                                         : 0;
    // A deadline the tick did not move must not turn this into a busy loop.
    if (timeout == 0 && just_ticked) timeout = 1000;
    if (timeout != 0) {
      transport_.wait_for_events(timeout);
      ++stats_.wakeups;
    }
  }
  outbox_.flush();
  if (!config_.gcs_snapshot.empty()) {
    const std::string path =
        config_.gcs_snapshot + ".rank" + std::to_string(layout_.world_rank) + ".h5";
    if (Status st = gcs::write_snapshot(*server_, path); !st)
      PRISM_LOG_ERROR("GCS rank {}: snapshot {}: {}", layout_.world_rank, path, st.to_string());
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const double cpu_s = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                       1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  PRISM_LOG_INFO(
      "GCS rank {}: {:.2f} s CPU in {:.2f} s ({} page faults, {} context switches); {} messages "
      "({} dropped) in {} transport sends, {} wake-ups, {} ticks; global scheduler: {} tasks "
      "placed, {} heartbeats, {} steal orders ({} tasks, {} to nodes not yet dry)",
      layout_.world_rank, cpu_s, 1e-6 * static_cast<double>(now_us() - start), u.ru_minflt,
      u.ru_nvcsw + u.ru_nivcsw, stats_.messages, stats_.dropped, outbox_.stats().transport_sends,
      stats_.wakeups, stats_.ticks, stats_.tasks_placed, stats_.heartbeats, stats_.steal_orders,
      global_scheduler_ ? global_scheduler_->tasks_ordered_moved() : 0,
      global_scheduler_ ? global_scheduler_->orders_ahead() : 0);
  transport_.set_handler([](int, std::span<const std::byte>) {});
  return exit_code_;
}

void GcsRole::on_message(int src, std::span<const std::byte> msg) {
  if (msg.empty()) return;
  const auto first = msg[0];
  if (gcs::is_gcs_server_message(first)) {
    Status st = for_each_gcs_message(msg, [&](std::span<const std::byte> m) {
      ++stats_.messages;
      if (Status s = server_->handle(src, m); !s) {
        ++stats_.dropped;
        PRISM_LOG_DEBUG("GCS rank {}: dropped a message from rank {}: {}", layout_.world_rank, src,
                        s.to_string());
      }
    });
    if (!st)
      PRISM_LOG_WARN("GCS rank {}: dropped a bundle from rank {}: {}", layout_.world_rank, src,
                     st.to_string());
    return;
  }
  Reader r(msg);
  const auto kind = r.get<MessageKind>();
  if (kind == MessageKind::kShutdown) {
    exit_code_ = r.get<int32_t>();
    stop_ = true;
    return;
  }
  if (global_scheduler_ && (kind == MessageKind::kSpillTask || kind == MessageKind::kSpillTasks))
    return on_spill_task(src, msg);
  if (global_scheduler_ && kind == MessageKind::kNodeLoad) return on_node_load(src, msg);
  if (kind == MessageKind::kNodeLost) {  // from the driver's rank (docs/fault-tolerance.md)
    const auto rank = r.get<int32_t>();
    if (!r.ok()) return;
    lost_any_ = true;
    if (global_scheduler_) global_scheduler_->mark_lost(rank);
    return;
  }
  PRISM_LOG_WARN("GCS rank {}: dropped a message of kind {} from rank {} ({} bytes)",
                 layout_.world_rank, static_cast<int>(kind), src, msg.size());
}

// The task travels on as the SubmitTask it would have been: its bytes after
// the spill header are forwarded without decoding. The executor sends the
// result straight to the owner. A batch of spilled tasks goes on as one
// batch per chosen node.
void GcsRole::on_spill_task(int src, std::span<const std::byte> msg) {
  Reader r(msg.subspan(1));
  std::vector<Placed> placed;
  if (static_cast<MessageKind>(msg[0]) == MessageKind::kSpillTask) {
    place_spilled(src, r.rest(), placed);
  } else if (Status st = for_each_batched(
                 r, [&](std::span<const std::byte> body) { place_spilled(src, body, placed); });
             !st) {
    ++stats_.dropped;
    PRISM_LOG_WARN("global scheduler: dropped a malformed batch from rank {}: {}", src,
                   st.to_string());
  }
  // Interchangeable tasks keep the per-node counts the picks gave, but go in
  // contiguous stretches (a batch is one submitter's tasks in id order): tasks
  // placed alternately would each cost the owner's GCS agent a task row of its
  // own, where a stretch run on one node is one row (docs/gcs.md, "Runs").
  std::vector<int> order;  // nodes in the order the picks first chose them
  std::map<int, size_t> count;
  for (const auto& p : placed)
    if (p.interchangeable && count[p.node]++ == 0) order.push_back(p.node);
  auto next = order.begin();
  for (auto& p : placed) {
    if (!p.interchangeable) continue;
    while (count[*next] == 0) ++next;
    p.node = *next;
    --count[*next];
  }
  Forwards out;
  for (const auto& p : placed) {
    auto& batch = out[p.node];
    Writer& w = batch.tasks.begin();
    w.append(p.task.data(), p.task.size());
    batch.tasks.end();
    batch.ids.push_back(p.id);
  }
  for (auto& [node, batch] : out) {
    const uint32_t n = batch.tasks.count();
    Writer w = batch.tasks.take();
    if (Status st = transport_.send(node, w.buffer()); !st) {
      for (const auto& id : batch.ids)
        fail_spilled(
            id, "could not send the task to node " + std::to_string(node) + ": " + st.to_string());
      continue;
    }
    stats_.tasks_placed += n;
  }
}

// A task that cannot be placed or sent fails at its owner: never dropped.
void GcsRole::fail_spilled(const ObjectId& id, const std::string& why) {
  ObjectValue v;
  v.kind = ObjectValue::Kind::kError;
  v.error = "global scheduler: " + why;
  Writer w(64);
  encode_task_result(id, v, {}, w);
  if (Status st = transport_.send(static_cast<int>(id.owner_rank), w.buffer()); !st)
    PRISM_LOG_ERROR("global scheduler: error result to rank {}: {}", id.owner_rank, st.to_string());
}

void GcsRole::place_spilled(int src, std::span<const std::byte> body, std::vector<Placed>& placed) {
  Reader r(body);
  scheduler::TaskRequest request;
  if (Status st = decode_spill_header(r, request); !st) {
    ++stats_.dropped;
    PRISM_LOG_WARN("global scheduler: dropped a malformed spilled task from rank {}: {}", src,
                   st.to_string());
    return;
  }
  const auto task = r.rest();
  Reader id_reader(task);
  const ObjectId id = decode_object_id(id_reader);
  if (!id_reader.ok() || id.is_nil()) {
    ++stats_.dropped;
    PRISM_LOG_WARN("global scheduler: dropped a spilled task without an id from rank {}", src);
    return;
  }
  auto node = global_scheduler_->pick(request);
  if (!node) return fail_spilled(id, node.status().message());  // the submitter checked
  placed.push_back({id, task, *node, global_scheduler_->interchangeable(request)});
}

void GcsRole::on_node_load(int src, std::span<const std::byte> msg) {
  Reader r(msg.subspan(1));
  scheduler::NodeLoad load;
  if (Status st = decode_node_load(r, load); !st) {
    ++stats_.dropped;
    PRISM_LOG_WARN("global scheduler: dropped a malformed heartbeat from rank {}: {}", src,
                   st.to_string());
    return;
  }
  ++stats_.heartbeats;
  for (const auto& order : global_scheduler_->on_heartbeat(src, load)) {
    Writer w(16);
    w.put(MessageKind::kStealOrder);
    encode_steal_order(order, w);
    if (Status st = transport_.send(order.victim, w.buffer()); !st)
      PRISM_LOG_WARN("global scheduler: steal order to rank {}: {}", order.victim, st.to_string());
    else
      ++stats_.steal_orders;
  }
}

}  // namespace prism::runtime
