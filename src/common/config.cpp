#include "common/config.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace prism {
namespace {

struct OptionDef {
  OptionInfo info;
  std::function<Status(Config&, const std::string&)> set;
};

Expected<long long> parse_int(const std::string& name, const std::string& v, long long lo,
                              long long hi) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    return Status{Errc::kInvalidArgument, "option " + name + "='" + v + "' is not an integer in [" +
                                              std::to_string(lo) + ", " + std::to_string(hi) + "]"};
  return x;
}

Expected<double> parse_double(const std::string& name, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    return Status{Errc::kInvalidArgument, "option " + name + "='" + v + "' is not a number"};
  return x;
}

Expected<bool> parse_bool(const std::string& name, const std::string& v) {
  std::string s = v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "1" || s == "true" || s == "yes" || s == "on" || s.empty()) return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  return Status{Errc::kInvalidArgument, "option " + name + "='" + v + "' is not a boolean"};
}

template <class F>
OptionDef int_opt(const char* name, const char* help, const char* def, long long lo, long long hi,
                  F field) {
  return {{name, help, def}, [=](Config& c, const std::string& v) -> Status {
            auto x = parse_int(name, v, lo, hi);
            if (!x) return x.status();
            c.*field = static_cast<std::remove_reference_t<decltype(c.*field)>>(*x);
            return Status::ok();
          }};
}

template <class F>
OptionDef str_opt(const char* name, const char* help, const char* def, F field) {
  return {{name, help, def}, [=](Config& c, const std::string& v) -> Status {
            c.*field = v;
            return Status::ok();
          }};
}

template <class F>
OptionDef bool_opt(const char* name, const char* help, const char* def, F field) {
  return {{name, help, def}, [=](Config& c, const std::string& v) -> Status {
            auto x = parse_bool(name, v);
            if (!x) return x.status();
            c.*field = *x;
            return Status::ok();
          }};
}

OptionDef bytes_opt(const char* name, const char* help, const char* def, uint64_t Config::*field) {
  return {{name, help, def}, [=](Config& c, const std::string& v) -> Status {
            auto x = parse_bytes(v);
            if (!x)
              return {Errc::kInvalidArgument,
                      std::string("option ") + name + ": " + x.status().message()};
            c.*field = *x;
            return Status::ok();
          }};
}

const std::vector<OptionDef>& option_defs() {
  static const std::vector<OptionDef> defs = {
      int_opt("gcs-ranks", "ranks in the GCS group (taken from the end of the world)", "1", 1,
              1 << 20, &Config::gcs_ranks),
      int_opt("gcs-replicas", "replicas per GCS shard chain (0: derived from gcs-ranks)", "0", 0,
              64, &Config::gcs_replicas),
      int_opt("num-cpus", "worker threads (CPU slots) per node rank (0: its share of the cores)",
              "0", 0, 4096, &Config::num_cpus),
      {{"cpu-layout",
        "host: node ranks on a host share every core the job may use there, GCS ranks float; "
        "launcher: keep the launcher's binding (the rank's cpuset sizes its pool)",
        "host"},
       [](Config& c, const std::string& v) -> Status {
         if (v != "host" && v != "launcher")
           return {Errc::kInvalidArgument,
                   "option cpu-layout='" + v + "' must be 'host' or 'launcher'"};
         c.cpu_layout = v;
         return Status::ok();
       }},
      {{"num-gpus", "GPUs per node rank (negative: discovered)", "-1"},
       [](Config& c, const std::string& v) -> Status {
         auto x = parse_double("num-gpus", v);
         if (!x) return x.status();
         c.num_gpus = *x;
         return Status::ok();
       }},
      {{"resources", "custom resources of each node rank, e.g. fpga=2,ssd=1", ""},
       [](Config& c, const std::string& v) -> Status {
         auto r = parse_resources(v);
         if (!r) return r.status();
         c.resources = *r;
         return Status::ok();
       }},
      bytes_opt("memory",
                "memory a node rank offers tasks' memory reservations (0: its share of the host)",
                "0", &Config::memory),
      bytes_opt("inline-threshold", "objects up to this size travel inside control messages", "64K",
                &Config::inline_threshold),
      bytes_opt("store-capacity", "object store bytes per node rank (0: automatic)", "0",
                &Config::store_capacity),
      {{"store-reuse-bytes",
        "bytes of freed object buffers kept mapped for reuse (auto: up to the store capacity)",
        "auto"},
       [](Config& c, const std::string& v) -> Status {
         if (v == "auto") {
           c.store_reuse_bytes = Config::kAutoReuse;
           return Status::ok();
         }
         auto x = parse_bytes(v);
         if (!x)
           return {Errc::kInvalidArgument, "option store-reuse-bytes: " + x.status().message()};
         c.store_reuse_bytes = *x;
         return Status::ok();
       }},
      str_opt("spill-dir", "directory for objects spilled to HDF5 (default <run-dir>/spill)", "",
              &Config::spill_dir),
      str_opt("run-dir", "directory for logs, timeline and snapshots", "prism-run-<job>",
              &Config::run_dir),
      str_opt("log-level", "trace|debug|info|warn|error|off", "warn", &Config::log_level),
      bool_opt("log-to-files", "write one log file per rank under run-dir", "false",
               &Config::log_to_files),
      str_opt("timeline", "write a Chrome/Perfetto trace JSON of all tasks to this file", "",
              &Config::timeline),
      int_opt("spin-us", "microseconds an idle thread polls before it sleeps", "50", 0, 10000000,
              &Config::spin_us),
      int_opt("spinners",
              "threads per rank that may poll while waiting (0: cores / ranks on the host, min 1)",
              "0", 0, 1024, &Config::spinners),
      bool_opt("pin-workers",
               "pin worker threads to cores with hwloc (not with more node ranks than cores)",
               "true", &Config::pin_workers),
      bool_opt("summary", "print a run summary at shutdown", "false", &Config::summary),
      bool_opt("gcs-lineage",
               "record task lineage and object locations in the GCS (false: node table only)",
               "true", &Config::gcs_lineage),
      bool_opt("global-scheduler",
               "tasks a node cannot take go to the global scheduler on the first GCS rank "
               "(false: submitters balance by their own counts)",
               "true", &Config::global_scheduler),
      bool_opt("work-stealing",
               "plain one-CPU tasks queue on their submitter's node and the global scheduler "
               "moves the oldest queued ones to nodes its heartbeats show idle "
               "(docs/scheduling.md, \"Stealing\"; false: they spill once the local queue is long)",
               "true", &Config::work_stealing),
      bool_opt("group-shared-meet",
               "an actor group's node ranks that share a host start each collective by meeting "
               "in shared memory (false: with an MPI round; docs/mpi-interop.md)",
               "true", &Config::group_shared_meet),
      bool_opt("send-ahead",
               "a task pinned to another node goes there before its arguments are ready; their "
               "producers send them straight there (false: it waits at its owner)",
               "true", &Config::send_ahead),
      int_opt("local-queue",
              "plain tasks that may wait on their submitter's node before it spills (0: by "
              "expected wait, ~20 us of queued work and at least one task per CPU slot)",
              "0", 0, 1 << 20, &Config::local_queue),
      int_opt(
          "node-timeout-ms",
          "a node rank silent this long is lost: its tasks run elsewhere (docs/fault-tolerance.md; "
          "0: never declared lost)",
          "3000", 0, 3600000, &Config::node_timeout_ms),
      int_opt("gcs-failure-timeout-ms",
              "a GCS replica silent this long is cut out of its chain; replicas gossip every "
              "twentieth of it and clients retry every quarter of it (docs/gcs.md, \"Failover\")",
              "1000", 5, 600000, &Config::gcs_failure_timeout_ms),
      bool_opt("reconstruct",
               "a task's owner keeps how each result held on another node rank was made (the "
               "task and its argument objects, while the result lives) to make it again if that "
               "rank is lost (docs/fault-tolerance.md); false: such results are lost with it",
               "true", &Config::reconstruct),
      str_opt("exit-code-file",
              "the driver's rank writes the job's exit code here as it ends (prism-run "
              "--survive-node-loss returns it: mpirun then reports 0)",
              "", &Config::exit_code_file),
      int_opt("heartbeat-us",
              "a busy node rank reports its load to the global scheduler at most this often",
              "1000", 10, 10000000, &Config::heartbeat_us),
      str_opt("gcs-snapshot",
              "at shutdown every GCS rank writes its tables to PATH.rank<N>.h5 (prism-gcs-dump)",
              "", &Config::gcs_snapshot),
  };
  return defs;
}

// Accepted like the options above but not listed by --prism-help or
// config_options(): test hooks, not for users.
const std::vector<OptionDef>& hidden_option_defs() {
  static const std::vector<OptionDef> defs = {
      {{"gcs-fault", "RANK:AFTER_MS: GCS rank RANK goes silent AFTER_MS after it starts", ""},
       [](Config& c, const std::string& v) -> Status {
         const auto colon = v.find(':');
         if (colon == std::string::npos)
           return {Errc::kInvalidArgument, "option gcs-fault='" + v + "' must be RANK:AFTER_MS"};
         auto rank = parse_int("gcs-fault", v.substr(0, colon), 0, 1 << 20);
         if (!rank) return rank.status();
         auto after = parse_int("gcs-fault", v.substr(colon + 1), 0, 1 << 30);
         if (!after) return after.status();
         c.gcs_fault_rank = static_cast<int>(*rank);
         c.gcs_fault_after_ms = static_cast<uint32_t>(*after);
         return Status::ok();
       }},
  };
  return defs;
}

std::string env_name(const std::string& opt) {
  std::string e = "PRISM_";
  for (char ch : opt) e += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  return e;
}

std::string known_list() {
  std::string s;
  for (auto& d : option_defs()) s += (s.empty() ? "" : ", ") + d.info.name;
  return s;
}

}  // namespace

const std::vector<OptionInfo>& config_options() {
  static const std::vector<OptionInfo> infos = [] {
    std::vector<OptionInfo> v;
    for (auto& d : option_defs()) v.push_back(d.info);
    return v;
  }();
  return infos;
}

Expected<uint64_t> parse_bytes(const std::string& text) {
  if (text.empty()) return Status{Errc::kInvalidArgument, "empty byte size"};
  char* end = nullptr;
  errno = 0;
  double x = std::strtod(text.c_str(), &end);
  std::string unit(end);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  double mul = 1;
  if (unit == "" || unit == "b")
    mul = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    mul = 1024.0;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    mul = 1024.0 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    mul = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tb" || unit == "tib")
    mul = 1024.0 * 1024 * 1024 * 1024;
  else
    return Status{Errc::kInvalidArgument, "bad byte size '" + text + "' (use e.g. 64K, 2G)"};
  if (errno != 0 || x < 0) return Status{Errc::kInvalidArgument, "bad byte size '" + text + "'"};
  return static_cast<uint64_t>(x * mul);
}

Expected<std::map<std::string, double>> parse_resources(const std::string& text) {
  std::map<std::string, double> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status{Errc::kInvalidArgument, "resource '" + item + "' must look like name=amount"};
    auto amount = parse_double("resources", item.substr(eq + 1));
    if (!amount || *amount < 0)
      return Status{Errc::kInvalidArgument, "resource '" + item + "' needs a non-negative amount"};
    out[item.substr(0, eq)] = *amount;
  }
  return out;
}

Expected<Config> parse_config(int& argc, char** argv,
                              const std::function<const char*(const char*)>& env) {
  auto getenv_fn = env ? env : [](const char* n) -> const char* { return std::getenv(n); };
  Config cfg;
  for (const auto* defs : {&option_defs(), &hidden_option_defs()})
    for (auto& d : *defs) {
      if (const char* v = getenv_fn(env_name(d.info.name).c_str())) {
        Status st = d.set(cfg, v);
        if (!st) return Status{st.code(), st.message() + " (from " + env_name(d.info.name) + ")"};
      }
    }
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!a.starts_with("--prism-")) {
      argv[out++] = argv[i];
      continue;
    }
    std::string body(a.substr(8));
    std::string name = body, value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }  // a bare "--prism-NAME" means an empty value: true for booleans
    // Only the "=" form takes a value, so a user argument after a Prism flag is
    // never swallowed.
    const auto named = [&](const OptionDef& d) { return d.info.name == name; };
    const OptionDef* def = nullptr;
    for (const auto* defs : {&option_defs(), &hidden_option_defs()})
      if (auto it = std::find_if(defs->begin(), defs->end(), named); it != defs->end() && !def)
        def = &*it;
    if (!def)
      return Status{Errc::kInvalidArgument,
                    "unknown option --prism-" + name + " (known: " + known_list() + ")"};
    PRISM_RETURN_IF_ERROR(def->set(cfg, value));
  }
  argc = out;
  argv[argc] = nullptr;
  return cfg;
}

}  // namespace prism
