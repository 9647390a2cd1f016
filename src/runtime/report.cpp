#include "runtime/report.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/codec.hpp"
#include "common/log.hpp"

namespace prism::runtime {
namespace {

// Gathers every rank's bytes on rank 0 (others get an empty vector).
std::vector<std::vector<std::byte>> gather_to_root(MPI_Comm comm, std::span<const std::byte> mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(rank == 0 ? size : 0), displs(rank == 0 ? size : 0);
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm);
  int total = 0;
  for (size_t i = 0; i < lens.size(); ++i) {
    displs[i] = total;
    total += lens[i];
  }
  std::vector<std::byte> all(static_cast<size_t>(total));
  MPI_Gatherv(mine.data(), len, MPI_BYTE, all.data(), lens.data(), displs.data(), MPI_BYTE, 0,
              comm);
  std::vector<std::vector<std::byte>> out(lens.size());
  for (size_t i = 0; i < lens.size(); ++i)
    out[i].assign(all.begin() + displs[i], all.begin() + displs[i] + lens[i]);
  return out;
}

// Where the rank ran: Slurm's node name when there is one (fake nodes of a
// one-host test cluster share the hostname), else the hostname.
std::string host_name() {
  if (const char* slurm = std::getenv("SLURMD_NODENAME"); slurm && *slurm) return slurm;
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}

}  // namespace

void write_job_reports(MpiBootstrap& boot, const ClusterLayout& layout, const Config& config,
                       NodeRuntime* node, const transport::TransportStats& transport,
                       int64_t wall_us) {
  const bool is_root = layout.world_rank == 0;
  if (!config.timeline.empty()) {
    auto mine = encode_events(node ? node->take_timeline() : std::vector<TimelineEvent>{});
    auto all = gather_to_root(boot.comm(), mine);
    if (is_root) {
      std::vector<TimelineEvent> events;
      for (const auto& b : all)
        if (Status st = decode_events(b, events); !st)
          PRISM_LOG_ERROR("timeline: {}", st.to_string());
      if (Status st = write_chrome_trace(events, layout.num_nodes, config.timeline); !st)
        std::fprintf(stderr, "prism: %s\n", st.to_string().c_str());
      else
        std::fprintf(stderr, "prism: timeline of %zu events written to %s\n", events.size(),
                     config.timeline.c_str());
    }
  }
  if (!config.summary) return;
  NodeStats s = node ? node->stats() : NodeStats{};
  const auto store = node ? node->store().stats() : object_store::StoreStats{};
  Writer w;
  for (uint64_t v :
       {s.tasks_submitted, s.tasks_executed, s.tasks_failed, s.busy_us, s.slots, s.bytes_fetched,
        s.objects_put, transport.messages_sent, transport.bytes_sent, transport.rdma_bytes,
        store.bytes_spilled_total, s.actors_hosted, s.actor_calls, s.tasks_pushed, s.tasks_taken})
    w.put(v);
  w.put_string(host_name());
  auto all = gather_to_root(boot.comm(), w.buffer());
  if (!is_root) return;
  std::fprintf(stderr, "prism: run summary (%.3f s, %d node ranks, %zu GCS ranks)\n",
               static_cast<double>(wall_us) / 1e6, layout.num_nodes, layout.gcs_ranks.size());
  std::fprintf(stderr, "  %-6s %-6s %10s %10s %8s %8s %12s %10s %8s %10s %9s %9s  %s\n", "rank",
               "role", "submitted", "executed", "failed", "util%", "rdma-in", "messages", "actors",
               "calls", "pushed", "taken", "host");
  uint64_t total_exec = 0, total_failed = 0, total_rdma = 0, total_spilled = 0, total_actors = 0,
           total_calls = 0;
  for (size_t r = 0; r < all.size(); ++r) {
    Reader rd(all[r]);
    uint64_t v[15];
    for (auto& x : v) x = rd.get<uint64_t>();
    const std::string host = rd.get_string();
    if (!rd.ok()) continue;
    const bool is_node = static_cast<int>(r) < layout.num_nodes;
    const double util = is_node && v[4] && wall_us > 0
                            ? 100.0 * static_cast<double>(v[3]) /
                                  (static_cast<double>(wall_us) * static_cast<double>(v[4]))
                            : 0.0;
    total_exec += v[1];
    total_failed += v[2];
    total_rdma += v[9];
    total_spilled += v[10];
    total_actors += v[11];
    total_calls += v[12];
    std::fprintf(
        stderr, "  %-6zu %-6s %10lu %10lu %8lu %8.1f %12s %10lu %8lu %10lu %9lu %9lu  %s\n", r,
        r == 0    ? "driver"
        : is_node ? "node"
                  : "gcs",
        static_cast<unsigned long>(v[0]), static_cast<unsigned long>(v[1]),
        static_cast<unsigned long>(v[2]), util, human_bytes(static_cast<double>(v[9])).c_str(),
        static_cast<unsigned long>(v[7]), static_cast<unsigned long>(v[11]),
        static_cast<unsigned long>(v[12]), static_cast<unsigned long>(v[13]),
        static_cast<unsigned long>(v[14]), host.c_str());
  }
  if (total_actors > 0)
    std::fprintf(
        stderr,
        "  actors: %lu created, %lu method calls run (columns: per rank where they lived)\n",
        static_cast<unsigned long>(total_actors), static_cast<unsigned long>(total_calls));
  std::fprintf(stderr,
               "  total: %lu tasks run, %lu failed, %s pulled over RDMA, %s spilled to disk\n",
               static_cast<unsigned long>(total_exec), static_cast<unsigned long>(total_failed),
               human_bytes(static_cast<double>(total_rdma)).c_str(),
               human_bytes(static_cast<double>(total_spilled)).c_str());
}

}  // namespace prism::runtime
