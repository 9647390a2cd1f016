// Timeline: what ran where and when, for Chrome/Perfetto's trace viewer.
//
// Each node rank records complete events (a task on a worker, an object pulled
// over RDMA, a blocking get); at shutdown rank 0 gathers them and writes one
// Chrome trace JSON file (open it in ui.perfetto.dev or chrome://tracing).
// Recording costs one branch when the timeline is off. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::runtime {

struct TimelineEvent {
  std::string name;      // task name, "fetch obj:...", ...
  std::string category;  // "task", "transfer", "get"
  int64_t start_us = 0;  // microseconds since the Unix epoch (comparable across ranks)
  int64_t duration_us = 0;
  int32_t node = 0;    // world rank
  int32_t thread = 0;  // worker index, or -1 for the driver / progress thread
  uint64_t bytes = 0;  // transfers: bytes moved
  bool failed = false;
  std::string track;   // the row it is drawn on when not the thread's: "actor Counter 0.5"
};

class Timeline {
 public:
  explicit Timeline(bool enabled) : enabled_(enabled) {}
  bool enabled() const noexcept { return enabled_; }

  static int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void record(TimelineEvent e) {
    if (!enabled_) return;
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  std::vector<TimelineEvent> take() {
    std::lock_guard lk(mu_);
    return std::move(events_);
  }

 private:
  const bool enabled_;
  std::mutex mu_;
  std::vector<TimelineEvent> events_;
};

/// Encodes events for gathering (compact binary, common/codec.hpp).
std::vector<std::byte> encode_events(const std::vector<TimelineEvent>& events);
[[nodiscard]] Status decode_events(std::span<const std::byte> bytes,
                                   std::vector<TimelineEvent>& out);
/// Writes Chrome trace JSON ({"traceEvents": [...]}) to `path`.
[[nodiscard]] Status write_chrome_trace(const std::vector<TimelineEvent>& events, int num_nodes,
                                        const std::string& path);

}  // namespace prism::runtime
