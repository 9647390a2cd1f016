// prism::run: start-up, the role split and shutdown of every rank.
#include <mpi.h>

#include <cstdio>
#include <ctime>
#include <atomic>
#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "common/config.hpp"
#include "common/log.hpp"
#include "prism/api.hpp"
#include "gcs/layout.hpp"
#include "group/mpi_inter_node.hpp"
#include "runtime/gcs_agent.hpp"
#include "runtime/gcs_role.hpp"
#include "runtime/layout.hpp"
#include "runtime/mpi_bootstrap.hpp"
#include "runtime/node_runtime.hpp"
#include "runtime/report.hpp"
#include "transport/ucx_transport.hpp"
#include "worker/core_share.hpp"

namespace prism {
namespace {

using scheduler::NodeResources;

std::vector<std::byte> encode_resources(const NodeResources& n) {
  Writer w;
  w.put(n.num_cpus);
  w.put(n.num_gpus);
  w.put(n.memory);
  w.put(static_cast<uint32_t>(n.custom.size()));
  for (const auto& [k, v] : n.custom) {
    w.put_string(k);
    w.put(v);
  }
  return w.take();
}

NodeResources decode_resources(int rank, std::span<const std::byte> b) {
  Reader r(b);
  NodeResources n;
  n.rank = rank;
  n.num_cpus = r.get<double>();
  n.num_gpus = r.get<double>();
  n.memory = r.get<uint64_t>();
  const auto k = r.get<uint32_t>();
  for (uint32_t i = 0; i < k && r.ok(); ++i) {
    auto name = r.get_string();
    n.custom[name] = r.get<double>();
  }
  return n;
}

// A run directory name every rank agrees on: the batch job id when there is
// one, else rank 0's clock (broadcast).
std::string default_run_dir(MPI_Comm comm) {
  long long stamp = static_cast<long long>(std::time(nullptr));
  MPI_Bcast(&stamp, 1, MPI_LONG_LONG, 0, comm);
  if (const char* j = std::getenv("SLURM_JOB_ID")) return std::string("prism-run-") + j;
  return "prism-run-" + std::to_string(stamp);
}

// A once-a-second "tasks finished" line for long jobs, when stderr is a
// terminal (never in logs or CI output).
class ProgressLine {
 public:
  explicit ProgressLine(runtime::NodeRuntime& rt) : rt_(rt) {
    if (!isatty(STDERR_FILENO)) return;
    thread_ = std::thread([this] {
      std::unique_lock lk(mu_);
      bool printed = false;
      while (!cv_.wait_for(lk, std::chrono::seconds(1), [this] { return done_; })) {
        auto s = rt_.stats();
        std::fprintf(stderr, "\rprism: %lu/%lu tasks finished", static_cast<unsigned long>(s.tasks_finished),
                     static_cast<unsigned long>(s.tasks_submitted));
        printed = true;
      }
      if (printed) std::fprintf(stderr, "\n");
    });
  }
  ~ProgressLine() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  runtime::NodeRuntime& rt_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

int fail_startup(int rank, const std::string& what) {
  if (rank == 0) std::fprintf(stderr, "prism: %s\n", what.c_str());
  return 2;
}

// A node rank was lost (docs/fault-tolerance.md): it will never join the
// MPI collectives that follow (the reports, the transport's and the host
// window's teardown, MPI_Finalize), so every other rank ends here, once its
// last messages have left.
[[noreturn]] void end_without_lost_ranks(transport::Transport& transport, int rank, int exit_code,
                                         const std::vector<int>& lost) {
  (void)transport.flush();
  if (rank == 0) {
    std::string ranks;
    for (int r : lost) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    std::fprintf(stderr,
                 "prism: the job went on without node rank(s) %s; it ends without its final "
                 "reports (exit code %d)\n",
                 ranks.c_str(), exit_code);
  }
  spdlog::default_logger()->flush();
  std::fflush(nullptr);
  std::_Exit(exit_code);
}

// Under Open MPI's recovery mode (prism-run --survive-node-loss) mpirun
// reports 0 whatever its processes return, so the driver's rank also
// leaves the job's exit code in a file for the launcher to return.
void record_exit_code(const Config& config, int exit_code) {
  if (config.exit_code_file.empty()) return;
  if (std::FILE* f = std::fopen(config.exit_code_file.c_str(), "w")) {
    std::fprintf(f, "%d\n", exit_code);
    std::fclose(f);
  } else {
    std::fprintf(stderr, "prism: cannot write the exit code to %s\n", config.exit_code_file.c_str());
  }
}

// A node rank's part of the job's end: the actors it ended reported dead
// (their destructors may still be running elsewhere), then its GCS agent's
// backlog written. Each wait is bounded.
void settle_records(runtime::NodeRuntime& rt, runtime::GcsAgent& agent) {
  rt.wait_for_ended_actors(2'000'000);
  (void)agent.drain(2'000'000);
}

// Everything between MPI_Init and MPI_Finalize; returns the exit code.
int run_initialized(int& argc, char** argv, const std::function<void()>& driver, int provided) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--prism-help") {
      if (rank == 0) {
        std::printf("Prism runtime options (flag --prism-NAME=V, environment PRISM_NAME=V; flags win):\n");
        for (const auto& o : config_options())
          std::printf("  --prism-%-18s %s (default: %s)\n", o.name.c_str(), o.help.c_str(),
                      o.default_value.empty() ? "none" : o.default_value.c_str());
      }
      return 0;
    }
  auto config = parse_config(argc, argv);
  if (!config) return fail_startup(rank, config.status().message());
  auto layout = runtime::make_layout(size, rank, config->gcs_ranks);
  if (!layout) return fail_startup(rank, layout.status().message());
  auto gcs_layout = gcs::GcsLayout::from_config(*config, size);
  if (!gcs_layout) return fail_startup(rank, "GCS layout: " + gcs_layout.status().message());

  runtime::MpiBootstrap boot(MPI_COMM_WORLD);
  if (config->run_dir.empty()) config->run_dir = default_run_dir(boot.comm());
  if (config->spill_dir.empty())  // per rank: a holder's files are its own
    config->spill_dir = config->run_dir + "/spill/rank-" + std::to_string(rank);
  std::string log_file;
  if (config->log_to_files) {
    std::error_code ec;
    std::filesystem::create_directories(config->run_dir, ec);
    log_file = config->run_dir + "/rank-" + std::to_string(rank) + ".log";
  }
  if (Status st = init_rank_logging(rank, layout->role(), config->log_level, log_file); !st)
    return fail_startup(rank, st.message());
  if (provided < MPI_THREAD_MULTIPLE && rank == 0)
    PRISM_LOG_WARN("MPI provides thread level {} < MULTIPLE: tasks must not call MPI concurrently",
                   provided);

  // Ranks sharing this host share its cores and memory, and one counter of
  // spinning threads in shared memory (see ProgressEngine::HostSpinBudget).
  int per_host = 1, host_rank = 0;
  MPI_Comm host;
  MPI_Comm_split_type(boot.comm(), MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
  MPI_Comm_size(host, &per_host);
  MPI_Comm_rank(host, &host_rank);
  layout->host_rank = host_rank;
  layout->ranks_on_host = per_host;
  // The node ranks of this host, and this rank's place among them.
  const int is_node = layout->is_node() ? 1 : 0;
  int node_ranks_on_host = 0, node_index_on_host = 0;
  MPI_Allreduce(&is_node, &node_ranks_on_host, 1, MPI_INT, MPI_SUM, host);
  MPI_Exscan(&is_node, &node_index_on_host, 1, MPI_INT, MPI_SUM, host);
  if (host_rank == 0) node_index_on_host = 0;  // MPI_Exscan leaves rank 0's undefined

  // The cores this rank runs on (docs/running.md, "Cores"), then the
  // resources of each node rank, from hwloc and the overrides.
  auto topo = worker::Topology::discover(/*gpus=*/layout->is_node());
  if (!topo) return fail_startup(rank, topo.status().message());
  std::unique_ptr<worker::Topology> topology = std::move(topo.value());
  const int host_cores =
      worker::job_cores_on_host(topology->num_allowed_cores(), std::getenv("SLURM_CPUS_ON_NODE"));
  int slots = topology->num_cores();
  if (config->cpu_layout == "host") {
    const auto share = worker::share_host_cores(host_cores, node_ranks_on_host,
                                                layout->is_node() ? node_index_on_host : -1);
    if (!topology->bind_process(share.first, share.count))
      PRISM_LOG_WARN("rank {}: could not bind to {} of the host's {} cores; keeping the launcher's "
                     "binding",
                     rank, share.count, host_cores);
    else
      slots = share.slots;
    layout->first_core = share.pin_from;
    if (layout->is_node() && !share.pin && config->pin_workers) {
      PRISM_LOG_INFO("rank {}: {} node ranks on {} cores: its worker floats (not pinned)", rank,
                     node_ranks_on_host, host_cores);
      config->pin_workers = false;
    }
  } else {  // the launcher's binding; ranks that see the same cores stagger their workers
    layout->first_core = host_rank * slots;
  }
  NodeResources mine;
  if (layout->is_node()) {
    mine.num_cpus = config->num_cpus > 0 ? config->num_cpus : slots;
    mine.num_gpus = config->num_gpus >= 0 ? config->num_gpus : topology->num_gpus();
    mine.memory = topology->total_memory();
    mine.custom = config->resources;
    PRISM_LOG_INFO("node rank {}: {}; {} worker slots (host: {} job cores, {} node ranks)", rank,
                   topology->describe(), mine.num_cpus, host_cores, node_ranks_on_host);
  }
  // Node ranks sharing a host share its memory: each offers its share.
  if (layout->is_node())
    mine.memory = config->memory > 0
                      ? config->memory
                      : mine.memory / static_cast<uint64_t>(std::max(1, node_ranks_on_host));
  auto gathered = boot.all_gather(encode_resources(mine));
  std::vector<NodeResources> nodes;
  for (int r = 0; r < layout->num_nodes; ++r) nodes.push_back(decode_resources(r, gathered[r]));
  MPI_Win spin_win;
  std::atomic<uint32_t>* host_busy = nullptr;
  {
    void* base = nullptr;
    MPI_Win_allocate_shared(host_rank == 0 ? 64 : 0, 1, MPI_INFO_NULL, host, &base, &spin_win);
    MPI_Aint seg_size;
    int disp;
    MPI_Win_shared_query(spin_win, 0, &seg_size, &disp, &base);
    if (host_rank == 0) new (base) std::atomic<uint32_t>(0);
    MPI_Barrier(host);
    host_busy = static_cast<std::atomic<uint32_t>*>(base);
  }
  struct HostResources {  // freed collectively on every path out of here
    MPI_Comm& comm;
    MPI_Win& win;
    ~HostResources() {
      MPI_Win_free(&win);
      MPI_Comm_free(&comm);
    }
  } host_resources{host, spin_win};
  if (config->store_capacity == 0 && layout->is_node())  // half the host's memory share
    config->store_capacity = mine.memory / 2;
  if (config->spinners == 0) config->spinners = std::max(1, host_cores / std::max(1, per_host));

  auto transport = transport::create_ucx_transport(boot);
  if (!transport) {
    std::fprintf(stderr, "prism: rank %d: %s\n", rank, transport.status().to_string().c_str());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }

  // Collective over every rank, so made here for all of them: the MPI side
  // of actor groups and MPI tasks (docs/mpi-interop.md).
  groups::MpiInterNode inter_node(MPI_COMM_WORLD, config->group_shared_meet);

  const int64_t job_start = runtime::Timeline::now_us();
  int exit_code = 0;
  if (layout->is_node()) {
    const transport::ProgressEngine::HostSpinBudget host_spin{
        host_busy, static_cast<uint32_t>(host_cores)};
    mine.rank = rank;
    // Declared before the runtime: the runtime's GCS handler and observers
    // point at it (attach_gcs_agent), so it must outlive the runtime.
    runtime::GcsAgent gcs_agent(*config, **transport, *gcs_layout, rank, mine);
    runtime::NodeRuntime rt(*config, **transport, *layout, std::move(nodes), topology.get(),
                            host_spin);
    runtime::attach_gcs_agent(rt, gcs_agent);
    rt.set_inter_node(&inter_node);
    // Threads without a Scope (ones the driver starts, pool threads polling
    // between jobs) use this rank's runtime: their API calls work and the refs
    // they drop are released (before, such releases were silently skipped).
    runtime::NodeRuntime::set_process_runtime(&rt);
    rt.start();
    gcs_agent.start();
    if (layout->is_driver()) {
      {
        runtime::NodeRuntime::Scope scope(&rt);
        ProgressLine progress(rt);
        try {
          driver();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "prism: the driver failed: %s\n", e.what());
          exit_code = 1;
        } catch (...) {
          std::fprintf(stderr, "prism: the driver failed with an unknown exception\n");
          exit_code = 1;
        }
      }
      // Let every node rank's last records reach the GCS before it shuts
      // down (bounded: a GCS that cannot answer must not hold the job), the
      // deaths of the actors they ended among them: the other node ranks
      // settle theirs (below) while this one settles its own.
      rt.ask_to_settle_records();
      settle_records(rt, gcs_agent);
      rt.wait_for_settled_records(5'000'000);
      gcs_agent.stop();
      rt.broadcast_shutdown(exit_code);
    } else {
      if (rt.wait_for_settle_request()) {
        settle_records(rt, gcs_agent);
        rt.report_records_settled();
      }
      exit_code = rt.wait_for_shutdown();
      gcs_agent.stop();
    }
    // Actors still alive end with the job: their destructors run.
    rt.kill_local_actors("ended with the job");
    if (layout->is_driver()) record_exit_code(*config, exit_code);
    runtime::NodeRuntime::set_process_runtime(nullptr);
    rt.stop();
    if (rt.lost_any()) end_without_lost_ranks(**transport, rank, exit_code, rt.lost_ranks());
    runtime::write_job_reports(boot, *layout, *config, &rt, (*transport)->stats(),
                               runtime::Timeline::now_us() - job_start);
  } else {
    runtime::GcsRole gcs(*config, **transport, *layout, *gcs_layout, std::move(nodes));
    exit_code = gcs.run();
    if (gcs.lost_any()) end_without_lost_ranks(**transport, rank, exit_code, {});
    runtime::write_job_reports(boot, *layout, *config, nullptr, (*transport)->stats(),
                               runtime::Timeline::now_us() - job_start);
  }
  std::fflush(stdout);
  {  // leave no empty spill or run directories behind (files went with the store)
    std::error_code ec;
    std::filesystem::remove(config->spill_dir, ec);
    std::filesystem::remove(std::filesystem::path(config->spill_dir).parent_path(), ec);
    std::filesystem::remove(config->run_dir, ec);
  }
  transport::destroy_ucx_transport(std::move(transport.value()), boot);
  spdlog::default_logger()->flush();
  return exit_code;
}

}  // namespace

int run(int& argc, char** argv, const std::function<void()>& driver) {
  int provided = 0, initialized = 0;
  MPI_Initialized(&initialized);
  // The runtime calls MPI from the main thread only (FUNNELED would do);
  // MULTIPLE is requested so that tasks may use MPI from worker threads.
  if (!initialized) MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  else MPI_Query_thread(&provided);
  const int exit_code = run_initialized(argc, argv, driver, provided);
  if (!initialized) MPI_Finalize();
  return exit_code;
}

}  // namespace prism
