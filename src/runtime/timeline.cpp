#include "runtime/timeline.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/codec.hpp"

namespace prism::runtime {

std::vector<std::byte> encode_events(const std::vector<TimelineEvent>& events) {
  Writer w;
  w.put(static_cast<uint64_t>(events.size()));
  for (const auto& e : events) {
    w.put_string(e.name);
    w.put_string(e.category);
    w.put(e.start_us);
    w.put(e.duration_us);
    w.put(e.node);
    w.put(e.thread);
    w.put(e.bytes);
    w.put<uint8_t>(e.failed);
    w.put_string(e.track);
  }
  return w.take();
}

Status decode_events(std::span<const std::byte> bytes, std::vector<TimelineEvent>& out) {
  Reader r(bytes);
  const auto n = r.get<uint64_t>();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    TimelineEvent e;
    e.name = r.get_string();
    e.category = r.get_string();
    e.start_us = r.get<int64_t>();
    e.duration_us = r.get<int64_t>();
    e.node = r.get<int32_t>();
    e.thread = r.get<int32_t>();
    e.bytes = r.get<uint64_t>();
    e.failed = r.get<uint8_t>() != 0;
    e.track = r.get_string();
    if (r.ok()) out.push_back(std::move(e));
  }
  return r.finish("timeline events");
}

Status write_chrome_trace(const std::vector<TimelineEvent>& events, int num_nodes,
                          const std::string& path) {
  using nlohmann::json;
  json trace = json::array();
  for (int n = 0; n < num_nodes; ++n) {
    trace.push_back(
        {{"name", "process_name"},
         {"ph", "M"},
         {"pid", n},
         {"args", {{"name", n == 0 ? "node 0 (driver)" : "node " + std::to_string(n)}}}});
    trace.push_back(
        {{"name", "process_sort_index"}, {"ph", "M"}, {"pid", n}, {"args", {{"sort_index", n}}}});
  }
  for (const auto& e : events) {
    json args = {{"node", e.node}};
    if (e.bytes) args["bytes"] = e.bytes;
    if (e.failed) args["failed"] = true;
    trace.push_back(
        {{"name", e.name},
         {"cat", e.category},
         {"ph", "X"},
         {"ts", e.start_us},
         {"dur", std::max<int64_t>(e.duration_us, 1)},
         {"pid", e.node},
         {"tid", !e.track.empty() ? e.track
                 : e.thread < 0   ? "driver/progress"
                                  : "worker " + std::to_string(e.thread)},
         {"args", args}});
  }
  std::ofstream f(path);
  if (!f) return {Errc::kInvalidArgument, "cannot write timeline to '" + path + "'"};
  f << json{{"traceEvents", trace}, {"displayTimeUnit", "ms"}}.dump() << '\n';
  return f ? Status::ok() : Status{Errc::kInternal, "writing timeline '" + path + "' failed"};
}

}  // namespace prism::runtime
