// GcsAgent, part: its services besides recording lineage — queries and
// subscriptions for the runtime and tests, and the node table's heartbeat.
#include <chrono>

#include "common/log.hpp"
#include "runtime/gcs_agent.hpp"

namespace prism::runtime {
namespace {

uint64_t wall_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

// ---- queries -------------------------------------------------------------------

void GcsAgent::lookup_object_locations(const ObjectId& id, LookupCallback done) {
  post([id, done = std::move(done)](gcs::GcsClient& c) mutable {
    c.get<gcs::ObjectTable>(id, std::move(done));
  });
}

void GcsAgent::subscribe_object_locations(const ObjectId& id, ObjectCallback on_change,
                                          DoneCallback done) {
  post([id, cb = std::move(on_change), done = std::move(done)](gcs::GcsClient& c) mutable {
    c.subscribe<gcs::ObjectTable>(
        id,
        [cb](const ObjectId& key, const std::optional<gcs::ObjectRecord>& row, uint64_t) {
          cb(key, row);
        },
        std::move(done));
  });
}

void GcsAgent::unsubscribe_object_locations(const ObjectId& id, DoneCallback done) {
  post([id, done = std::move(done)](gcs::GcsClient& c) mutable {
    c.unsubscribe<gcs::ObjectTable>(id, std::move(done));
  });
}

void GcsAgent::subscribe_node_deaths(NodeDeathCallback on_death, DoneCallback done) {
  post([this, cb = std::move(on_death), done = std::move(done)](gcs::GcsClient& c) mutable {
    death_subs_.push_back(std::move(cb));
    if (death_subs_.size() > 1) {
      if (done) done(Status::ok());
      return;
    }
    c.subscribe_all<gcs::NodeTable>(
        [this](const gcs::NodeRank& node, const std::optional<gcs::NodeRecord>& row, uint64_t) {
          if (row && row->alive) {
            dead_nodes_.erase(node);
            return;
          }
          if (!dead_nodes_.insert(node).second) return;  // already reported
          for (const auto& f : death_subs_) f(node);
        },
        std::move(done));
  });
}

void GcsAgent::flush(DoneCallback done) {
  post([this, done = std::move(done)](gcs::GcsClient&) mutable {
    flushes_.emplace_back(gen_++, std::move(done));
  });
}

// ---- the node table -------------------------------------------------------------

void GcsAgent::on_node_lost(int rank) {
  post([this, rank](gcs::GcsClient& c) {
    const gcs::NodeRank key = static_cast<gcs::NodeRank>(rank);
    c.get<gcs::NodeTable>(key, [this, key](Expected<gcs::NodeRecord> row) {
      gcs::NodeRecord rec = row ? std::move(*row) : gcs::NodeRecord{};
      rec.alive = false;
      client_.put<gcs::NodeTable>(key, rec, [key](Status st) {
        if (!st) PRISM_LOG_WARN("GCS agent: node {} death: {}", key, st.to_string());
      });
    });
  });
}

void GcsAgent::heartbeat(uint64_t now) {
  if (now < next_heartbeat_us_) return;
  next_heartbeat_us_ = now + opt_.heartbeat_interval_us;
  if (heartbeat_in_flight_) return;
  gcs::NodeRecord rec;
  rec.resources["CPU"] = resources_.num_cpus;
  rec.resources["GPU"] = resources_.num_gpus;
  rec.resources["memory"] = static_cast<double>(resources_.memory);
  for (const auto& [k, v] : resources_.custom) rec.resources[k] = v;
  rec.available = rec.resources;
  std::function<NodeLoadSample()> source;
  {
    std::lock_guard lk(mu_);
    source = load_source_;
  }
  if (source) {
    const NodeLoadSample s = source();
    if (last_load_us_ != 0 && now > last_load_us_ && s.busy_us >= last_load_.busy_us) {
      const double busy = static_cast<double>(s.busy_us - last_load_.busy_us) /
                          static_cast<double>(now - last_load_us_);
      rec.available["CPU"] = std::max(0.0, std::min(rec.resources["CPU"], s.slots - busy));
    }
    rec.queue_length = static_cast<uint32_t>(std::min<uint64_t>(s.tasks_waiting, UINT32_MAX));
    last_load_ = s;
    last_load_us_ = now;
  }
  rec.last_heartbeat_us = wall_us();
  rec.alive = true;
  heartbeat_in_flight_ = true;
  client_.put<gcs::NodeTable>(rank_, rec, [this](Status st) {
    heartbeat_in_flight_ = false;
    ++stats_.heartbeats;
    if (st)
      node_registered_ = true;
    else
      PRISM_LOG_WARN("GCS agent: node heartbeat: {}", st.to_string());
  });
}

}  // namespace prism::runtime
