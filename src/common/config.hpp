// Runtime configuration: one value passed down, never a global (STYLE.md 6).
//
// Every option NAME has a flag `--prism-NAME=V` and an environment twin
// `PRISM_NAME=V` (dashes become underscores, upper case); flags win. The
// environment reaches every rank under mpirun (-x) and srun alike, so it is
// the natural way to configure a whole job.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism {

struct Config {
  int gcs_ranks = 1;     // ranks in the GCS group (the last ranks of the world)
  int gcs_replicas = 0;  // replicas per shard chain; 0 = derived from gcs_ranks
  int num_cpus = 0;      // worker threads per node rank; 0 = its share of the host's cores
  // "host": the node ranks of a host split every core the job may use there
  // and GCS ranks float (they sleep); "launcher": keep mpirun's/srun's
  // binding, and the rank's cpuset sizes its pool.
  std::string cpu_layout = "host";
  double num_gpus = -1;                     // GPUs per node rank; <0 = discovered
  std::map<std::string, double> resources;  // custom resources, e.g. fpga=2
  uint64_t inline_threshold = 64 * 1024;    // objects up to this size travel inside messages
  uint64_t memory = 0;          // memory a node rank offers tasks; 0 = its share of the host
  uint64_t store_capacity = 0;  // bytes per node store; 0 = half the rank's memory share
  // Most bytes of freed object buffers a node store keeps mapped for reuse,
  // never more than live objects leave of the capacity; kAutoReuse = no
  // bound but that one (2 GiB if the capacity is unlimited).
  static constexpr uint64_t kAutoReuse = ~uint64_t{0};
  uint64_t store_reuse_bytes = kAutoReuse;
  std::string spill_dir;           // where spilled objects go; default <run_dir>/spill
  std::string run_dir;             // logs, timeline, snapshots; default ./prism-run-<jobid>
  std::string log_level = "warn";  // trace|debug|info|warn|error|off
  bool log_to_files = false;       // one log file per rank under run_dir
  std::string timeline;            // write a Chrome/Perfetto trace JSON here ("" = off)
  uint32_t spin_us = 50;           // how long an idle thread polls before it blocks
  int spinners = 0;         // threads per rank that may spin at once; 0 = cores / ranks on the host
  bool pin_workers = true;  // pin worker threads to cores with hwloc
  bool summary = false;     // print a run summary at shutdown
  bool gcs_lineage = true;  // node ranks record task lineage and object locations in the GCS
  bool global_scheduler = true;       // spilled tasks go through the global scheduler (GCS group)
  bool work_stealing = true;          // the global scheduler moves queued tasks to idle nodes
  int node_timeout_ms = 3000;         // a node rank silent this long is lost (0: never)
  int gcs_failure_timeout_ms = 1000;  // a GCS replica silent this long is cut out of its chain
  bool reconstruct = true;            // owners keep the lineage of results held elsewhere
  std::string exit_code_file;         // the driver's rank writes the job's exit code here
  bool send_ahead = true;  // tasks pinned to another node go there before their arguments are ready
  int local_queue = 0;  // plain tasks that may wait locally before spilling; 0 = by expected wait
  int heartbeat_us = 1000;   // at most one load report per this interval while busy
  bool group_shared_meet = true;  // a group's node ranks on one host meet in shared memory
  std::string gcs_snapshot;  // at shutdown every GCS rank writes <this>.rank<N>.h5 ("" = off)
  // Fault injection (hidden option gcs-fault=RANK:AFTER_MS, for tests and
  // benchmarks): GCS rank `gcs_fault_rank` goes silent AFTER_MS after it starts.
  int gcs_fault_rank = -1;
  uint32_t gcs_fault_after_ms = 0;
};

/// One option as documented by `--prism-help` and docs/configuration.md.
struct OptionInfo {
  std::string name;  // "gcs-ranks"
  std::string help;
  std::string default_value;
};

/// Every option Prism understands, in documentation order.
const std::vector<OptionInfo>& config_options();

/// Builds a Config from the environment, then `--prism-*` flags, which are
/// removed from argv (argc shrinks) so the user's program sees only its own
/// arguments. `env` defaults to the process environment.
/// Example: `auto cfg = parse_config(argc, argv);`
Expected<Config> parse_config(int& argc, char** argv,
                              const std::function<const char*(const char*)>& env = nullptr);

/// Parses "fpga=2,ssd=1" into a resource map.
Expected<std::map<std::string, double>> parse_resources(const std::string& text);

/// Parses a byte size such as "64K", "2GiB", "1048576".
Expected<uint64_t> parse_bytes(const std::string& text);

}  // namespace prism
