// prism_scale_sim: the command line of the control-plane simulator.
//
//   prism_scale_sim calibrate --results benchmarks/results --pick pick.csv --out calibration.json
//   prism_scale_sim validate  --calibration calibration.json --results benchmarks/results --csv
//   v.csv prism_scale_sim sweep     --calibration calibration.json --csv sweep.csv [--workload a
//   ...] prism_scale_sim run       --calibration calibration.json --workload b --nodes 8
//   --cores-total 2 prism_scale_sim check     --calibration calibration.json   (the ctest: exits 1
//   on a failure)
//
// docs/scale-simulation.md explains the model and every number it is fed.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "sim.hpp"

using namespace scale_sim;

namespace {

using Metrics = std::map<std::string, double>;

Metrics read_csv(const std::string& path) {  // metric,value,unit rows
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  Metrics m;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string name, value;
    if (std::getline(ss, name, ',') && std::getline(ss, value, ',')) m[name] = std::stod(value);
  }
  return m;
}

// Fresh runs of bench_task_throughput (benchmarks/scale_sim/measure.sh):
// mode,node_ranks,bench,repeat,tasks_per_s,load1,off_node0 rows. at() is the
// mean rate over the repeats of (mode, node ranks, bench), or 0 if none.
struct Measured {
  std::map<std::string, std::pair<double, int>> sum;  // key -> (sum, count)
  std::map<std::string, double> off_sum;              // key -> sum of off_node0
  double load_sum = 0;
  int rows = 0;
  double at(const std::string& mode, int nodes, const std::string& bench) const {
    auto it = sum.find(mode + "/" + std::to_string(nodes) + "/" + bench);
    return it == sum.end() ? 0 : it->second.first / it->second.second;
  }
  double off_node0(const std::string& mode, int nodes, const std::string& bench) const {
    const std::string key = mode + "/" + std::to_string(nodes) + "/" + bench;
    auto it = off_sum.find(key);
    return it == off_sum.end() ? -1 : it->second / sum.at(key).second;
  }
};

Measured read_measured(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  Measured m;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string mode, nodes, bench, repeat, rate, load;
    if (!std::getline(ss, mode, ',') || !std::getline(ss, nodes, ',') ||
        !std::getline(ss, bench, ',') || !std::getline(ss, repeat, ',') ||
        !std::getline(ss, rate, ','))
      continue;
    auto& e = m.sum[mode + "/" + nodes + "/" + bench];
    e.first += std::stod(rate);
    ++e.second;
    if (std::getline(ss, load, ',') && !load.empty()) m.load_sum += std::stod(load);
    std::string off;
    if (std::getline(ss, off, ',') && !off.empty())
      m.off_sum[mode + "/" + nodes + "/" + bench] += std::stod(off);
    ++m.rows;
  }
  return m;
}

Costs load_costs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return Costs::from_json(nlohmann::json::parse(in).at("costs"));
}

// Finds x in [lo, hi] (log scale) where f(x) = target, f decreasing in x.
double bisect(const std::function<double(double)>& f, double target, double lo, double hi) {
  for (int i = 0; i < 24; ++i) {
    const double mid = std::sqrt(lo * hi);
    (f(mid) > target ? lo : hi) = mid;
  }
  return std::sqrt(lo * hi);
}

int calibrate(const std::string& results, const std::string& pick_csv,
              const std::string& balance_csv, const std::string& measured_csv,
              double remote_fraction, const std::string& out) {
  const Metrics n1 = read_csv(results + "/task_throughput_nodes1.csv");
  const Metrics n1_off = read_csv(results + "/task_throughput_nodes1_no_lineage.csv");
  const Metrics n2 = read_csv(results + "/task_throughput_nodes2.csv");
  const Metrics rt = read_csv(results + "/task_roundtrip.csv");
  const Metrics tr = read_csv(results + "/transport.csv");
  const Metrics g1 = read_csv(results + "/gcs_throughput_g1.csv");
  Costs c;
  nlohmann::json why, j_fit;
  // One node rank bound to one core runs submit + execute + get of every task.
  const double local = 1e6 / n1_off.at("single_client_tasks_async");
  c.get_us = 0.1 * local;
  c.exec_us = c.submit_us = 0.45 * local;
  why["submit_us,exec_us,get_us"] =
      "sum = 1e6 / single_client_tasks_async (1 node, no lineage); split 45/45/10 (assumed)";
  c.lineage_us = std::max(0.0, 1e6 / n1.at("single_client_tasks_async") - local);
  why["lineage_us"] = "1e6/async(1 node, lineage) - 1e6/async(1 node, no lineage)";
  c.latency_us = tr.at("ucx_am_roundtrip_8B_spinning") / 4;
  why["latency_us"] = "half of a UCX AM one-way trip (transport.csv; the other half is CPU)";
  const double one_way =
      (rt.at("task_roundtrip_remote_node") - rt.at("task_roundtrip_same_node")) / 2;
  c.msg_send_us = c.msg_recv_us = std::max(0.05, (one_way - c.latency_us) / 2);
  why["msg_send_us,msg_recv_us"] =
      "(task_roundtrip_remote - task_roundtrip_same_node)/2 - latency, split evenly";
  c.gcs_row_us = 0.8;
  why["gcs_row_us"] = "docs/gcs.md: a task row inside a batch of ~60 costs each replica ~0.8 us";
  c.gcs_write_us =
      std::max(0.1, 1e6 / g1.at("gcs_1x1_gcs_write_throughput_window256") - c.gcs_row_us);
  why["gcs_write_us"] = "1e6 / gcs write throughput (1 GCS rank, single-row puts) - gcs_row_us";
  if (!pick_csv.empty()) {  // least squares a + b * nodes over nodes >= 64
    std::ifstream in(pick_csv);
    std::string line;
    std::getline(in, line);
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 0, small = 0;
    while (std::getline(in, line)) {
      int n = 0;
      double ns = 0;
      if (std::sscanf(line.c_str(), "%d,%lf", &n, &ns) != 2) continue;
      if (n == 1) small = ns / 1000;
      if (n < 64) continue;
      sx += n, sy += ns, sxx += double(n) * n, sxy += n * ns, ++k;
    }
    if (k >= 2) {
      const double b = (k * sxy - sx * sy) / (k * sxx - sx * sx);
      c.gs_pick_per_node_us = b / 1000;
      c.gs_pick_base_us = std::max(small, (sy - b * sx) / k / 1000);
      why["gs_pick_base_us,gs_pick_per_node_us"] =
          "prism_scale_sim_pick: GlobalScheduler interchangeable()+pick() fitted a + b*nodes";
    }
  }
  if (!balance_csv.empty()) {
    // Per heartbeat: scan = a + b n; steal (n/2 pairs) = a' + (b + c / 2) n.
    // Least squares of both slopes over nodes >= 64.
    std::ifstream in(balance_csv);
    std::string line;
    std::getline(in, line);
    double sx = 0, sxx = 0, s1 = 0, s2 = 0, x1 = 0, x2 = 0, k = 0;
    while (std::getline(in, line)) {
      int n = 0;
      double scan = 0, steal = 0;
      if (std::sscanf(line.c_str(), "%d,%lf,%lf", &n, &scan, &steal) != 3 || n < 64) continue;
      sx += n, sxx += double(n) * n, s1 += scan, s2 += steal, x1 += n * scan, x2 += n * steal;
      ++k;
    }
    if (k >= 2) {
      const double d = k * sxx - sx * sx;
      const double b1 = (k * x1 - sx * s1) / d, b2 = (k * x2 - sx * s2) / d;
      c.gs_balance_per_node_us = std::max(0.0, b1) / 1000;
      // A pair computes one estimated_tasks(), as a scanned node does; when
      // the difference of the slopes is lost in the noise (the scan with
      // outstanding orders is cheaper), a pair is charged a node's cost.
      c.gs_balance_per_pair_us =
          std::max(c.gs_balance_per_node_us, std::max(0.0, 2 * (b2 - b1)) / 1000);
      why["gs_balance_per_node_us,gs_balance_per_pair_us"] =
          "prism_scale_sim_pick: GlobalScheduler::on_heartbeat (balance) per heartbeat, no idle "
          "node (scan) and an idle node among n/2 busy ones (scan + n/2 pairs), slopes in n; "
          "a pair costs at least a scanned node (assumed)";
    }
  }
  why["heartbeat_apply_us,agent_round_us,result_wire_us,spin_window_us"] =
      "assumed (small next to message costs); spin_window = --prism-spin-us default";
  // One cost no benchmark isolates is fitted; every other figure of the
  // validation is out of sample: a task inside a batched message (encode or
  // decode, each side), fitted to multi_client_tasks_async at 2 node ranks,
  // where every client spills nearly all of its tasks (its own slot is held
  // by the client).
  // The split of the local work between submitter and worker is assumed
  // even: no benchmark separates them (docs/scale-simulation.md).
  // Fresh runs of the current build without stealing (the spill path this
  // cost is about) if given, else the committed run_all.sh CSV.
  double target_a = n2.at("multi_client_tasks_async");
  std::string target_from = results + "/task_throughput_nodes2.csv";
  if (!measured_csv.empty()) {
    const Measured m = read_measured(measured_csv);
    if (m.at("spill", 2, "multi") > 0) {
      target_a = m.at("spill", 2, "multi");
      target_from = measured_csv + " (spill, 2 node ranks, multi)";
    }
  }
  c.task_wire_us = 0.3;
  // An oversubscribed host's threads keep a core for an OS time slice while
  // they have work (CFS: a few ms; the results hardly change from 0.1 to 3 ms).
  c.slice_us = 1000;
  why["slice_us"] = "assumed: an OS time slice (1 ms) on an oversubscribed host";
  auto run2 = [&](Workload w, const Costs& t) {
    Setup s = vm_setup(w, 2, false);
    s.tasks = 50000;
    return simulate(t, s);
  };
  // A core changing process: ~1 us of direct cost on a VM (assumed; with
  // time slices the results hardly depend on it).
  c.switch_us = 1.0;
  c.task_wire_us = bisect(
      [&](double x) {
        Costs t = c;
        t.task_wire_us = x;
        t.result_wire_us = x / 2;
        return run2(Workload::kPerNodeDrivers, t).tasks_per_s;
      },
      target_a, 0.01, 20);
  c.result_wire_us = c.task_wire_us / 2;
  {
    Setup s = vm_setup(Workload::kOneDriver, 2, false);
    s.tasks = 50000;
    j_fit["remote_fraction_simulated"] = simulate(c, s).remote_fraction;
  }
  j_fit["remote_fraction_measured"] = remote_fraction;
  j_fit["single_client_tasks_async_2_nodes_measured"] = n2.at("single_client_tasks_async");
  j_fit["targets"] = {{"multi_client_tasks_async_2_nodes_no_stealing", target_a}};
  j_fit["target_from"] = target_from;
  why["task_wire_us,result_wire_us"] =
      "fitted: multi_client_tasks_async at 2 node ranks without work stealing, where tasks spill "
      "(result_wire = task_wire / 2)";
  why["switch_us"] = "assumed: direct cost of a process switch on a core (VM)";
  why["wake_us"] = "assumed: CPU of a futex wake and a context switch on the woken thread";
  why["wake_latency_us"] = "DESIGN.md: waking a sleeping thread takes 7 us (futex)";
  nlohmann::json j;
  j["costs"] = c.to_json();
  j["source"] = why;
  j["measured_in"] = results;
  j["fit"] = j_fit;
  std::ofstream o(out);
  o << j.dump(2) << "\n";
  std::printf("%s\n", j.dump(2).c_str());
  return o ? 0 : 1;
}

struct Case {
  std::string name;
  Setup setup;
  std::string file, metric;
};

// The fresh runs may share the 2 cores with other sessions' work (their load
// average is in the CSV). --host-factor F scales every CPU cost by F (not the
// latencies); 0 fits F so that the single-driver rate on one node rank
// matches (a uniformly slower machine: a bound that is too low for the runs
// of several node ranks, which are not bound to one core).
Costs scaled(const Costs& c, double f) {
  Costs s = c;
  for (double* x :
       {&s.submit_us, &s.exec_us, &s.get_us, &s.lineage_us, &s.msg_send_us, &s.msg_recv_us,
        &s.task_wire_us, &s.result_wire_us, &s.gs_pick_base_us, &s.gs_pick_per_node_us,
        &s.heartbeat_apply_us, &s.gs_balance_per_node_us, &s.gs_balance_per_pair_us,
        &s.gcs_write_us, &s.gcs_row_us, &s.agent_round_us, &s.wake_us, &s.switch_us})
    *x *= f;
  return s;
}

int validate(const Costs& quiet, const std::string& results, const std::string& measured_csv,
             const std::string& csv, double host_factor) {
  const Measured m = read_measured(measured_csv);
  if (host_factor <= 0) {
    const double one = m.at("stealing", 1, "async");
    host_factor =
        one > 0 ? simulate(quiet, vm_setup(Workload::kOneDriver, 1)).tasks_per_s / one : 1.0;
  }
  const Costs c = scaled(quiet, host_factor);
  std::printf("CPU costs x %.3f\n", host_factor);
  std::vector<Case> cases;
  const std::pair<Workload, const char*> benches[] = {{Workload::kOneDriver, "async"},
                                                      {Workload::kPerNodeDrivers, "multi"},
                                                      {Workload::kNested, "nested"}};
  std::vector<std::pair<Case, double>> rows;  // case, measured
  for (const char* mode : {"stealing", "spill"})
    for (auto [w, bench] : benches)
      for (int n : {1, 2, 4, 8}) {
        const double measured = m.at(mode, n, bench);
        if (measured <= 0) continue;
        Case k{workload_name(w) + (std::string(mode) == "spill" ? "_no_stealing" : ""),
               vm_setup(w, n, std::string(mode) == "stealing"), "",
               std::to_string(m.off_node0(mode, n, bench))};
        rows.emplace_back(k, measured);
      }
  // GCS writes: the committed run_all.sh CSVs of a quiet host (the GCS path
  // did not change), against the unscaled costs.
  for (int g : {1, 3, 6}) {
    Setup s = vm_setup(Workload::kGcsWrites, 2);
    s.gcs_ranks = g;
    s.tasks = 50000;
    const std::string tag = g == 1 ? "1x1" : g == 3 ? "1x3" : "2x3";
    const double measured = read_csv(results + "/gcs_throughput_g" + std::to_string(g) + ".csv")
                                .at("gcs_" + tag + "_gcs_write_throughput_window256");
    rows.emplace_back(Case{"gcs_writes", s, "quiet", ""}, measured);
  }
  std::ofstream o(csv.empty() ? "/dev/null" : csv);
  o << "case,node_ranks,gcs_ranks,measured_per_s,simulated_per_s,sim_over_measured,"
       "remote_fraction,off_node0_fraction,off_node0_measured,pushed_fraction\n";
  std::printf("%-30s %5s %4s %11s %11s %6s %6s %6s %6s %6s\n", "case", "nodes", "gcs", "measured/s",
              "simulated/s", "ratio", "remote", "off0", "off0_m", "pushed");
  for (const auto& [k, measured] : rows) {
    const Result r = simulate(k.file == "quiet" ? quiet : c, k.setup);
    const double ratio = r.tasks_per_s / measured;
    const double off_m = k.metric.empty() ? -1 : std::stod(k.metric);
    std::printf("%-30s %5d %4d %11.0f %11.0f %6.2f %6.2f %6.2f %6.2f %6.2f\n", k.name.c_str(),
                k.setup.nodes, k.setup.gcs_ranks, measured, r.tasks_per_s, ratio, r.remote_fraction,
                r.off_node0_fraction, off_m, r.pushed_fraction);
    o << k.name << ',' << k.setup.nodes << ',' << k.setup.gcs_ranks << ',' << measured << ','
      << r.tasks_per_s << ',' << ratio << ',' << r.remote_fraction << ',' << r.off_node0_fraction
      << ',' << off_m << ',' << r.pushed_fraction << '\n';
  }
  if (m.rows > 0)
    std::printf("mean load average (1 min) over the runs: %.2f\n", m.load_sum / m.rows);
  return 0;
}

void print_header(std::ostream& o) {
  o << "workload,node_ranks,gcs_shards,gcs_ranks,spill_batch,heartbeat_us,tasks_per_s,"
       "tasks_per_s_per_node,spilled_fraction,remote_fraction,gs_util,gs_tasks_per_s,gs_heartbeats_"
       "per_s,"
       "gcs_rows_per_task,max_shard_writes_per_s,max_shard_rows_per_s,max_shard_util,"
       "gcs_backlog_writes,driver_progress_util,max_submitter_util,events,work_stealing,"
       "pushed_fraction,gs_orders_per_s,gs_pairs_per_heartbeat\n";
}

void print_row(std::ostream& o, const Setup& s, const Result& r) {
  double w = 0, rows = 0, util = 0;
  for (const auto& l : r.shards) {
    w = std::max(w, l.writes_per_s);
    rows = std::max(rows, l.rows_per_s);
    util = std::max(util, l.max_replica_util);
  }
  o << workload_name(s.workload) << ',' << s.nodes << ',' << r.shards.size() << ',' << s.gcs_ranks
    << ',' << s.spill_batch << ',' << s.heartbeat_period_us << ',' << r.tasks_per_s << ','
    << r.tasks_per_s / s.nodes << ',' << r.spilled_fraction << ',' << r.remote_fraction << ','
    << r.gs_util << ',' << r.gs_tasks_per_s << ',' << r.gs_heartbeats_per_s << ','
    << r.gcs_rows_per_task << ',' << w << ',' << rows << ',' << util << ',' << r.gcs_backlog_writes
    << ',' << r.driver_progress_util << ',' << r.max_submitter_util << ',' << r.events << ','
    << s.work_stealing << ',' << r.pushed_fraction << ',' << r.gs_orders_per_s << ','
    << r.gs_pairs_per_heartbeat << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"prism_scale_sim: discrete-event model of Prism's control plane"};
  app.require_subcommand(1);
  std::string calibration, results = "benchmarks/results", csv, pick, out = "calibration.json";
  Setup s;
  std::string workload = "b";
  std::vector<int> nodes_list{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
  std::vector<int> gcs_list{3};
  std::string balance, measured = "benchmarks/results/scale_sim_measured.csv";
  double host_factor = 1;
  std::string fit_measured;
  auto* cal = app.add_subcommand("calibrate", "derive calibration.json from benchmark CSVs");
  cal->add_option("--results", results, "directory of the benchmark CSVs");
  cal->add_option("--pick", pick, "CSV of prism_scale_sim_pick");
  cal->add_option("--balance", balance, "heartbeat CSV of prism_scale_sim_pick");
  cal->add_option("--measured", fit_measured,
                  "fit task_wire_us to these runs (measure.sh) instead of --results");
  cal->add_option("--out", out, "calibration file to write");
  double remote_fraction = 0.256;
  cal->add_option("--remote-fraction", remote_fraction,
                  "share of tasks run off the driver's node at 2 node ranks (--prism-summary)");
  auto* val = app.add_subcommand("validate", "simulate the 2-core runs and compare");
  auto* sweep = app.add_subcommand("sweep", "dedicated nodes: one CSV row per (nodes, gcs ranks)");
  auto* run = app.add_subcommand("run", "one configuration");
  auto* chk = app.add_subcommand("check", "sanity properties (exit 1 on failure)");
  for (auto* sc : {val, sweep, run, chk})
    sc->add_option("--calibration", calibration, "calibration.json")->required();
  val->add_option("--results", results, "directory of the benchmark CSVs");
  val->add_option("--measured", measured, "fresh bench_task_throughput runs (measure.sh)");
  val->add_option("--host-factor", host_factor,
                  "scale CPU costs by this (0: fit to the 1-node async run of --measured)");
  for (auto* sc : {val, sweep, run}) sc->add_option("--csv", csv, "write rows here");
  for (auto* sc : {sweep, run}) {
    sc->add_option("--workload", workload, "a (client per node), b (one driver), c (nested), gcs");
    sc->add_option("--workers", s.workers_per_node, "CPU slots per node rank");
    sc->add_option("--cores-per-node", s.cores_per_node, "cores of each node rank (dedicated)");
    sc->add_option("--cores-total", s.cores_total, "> 0: all ranks share this many cores");
    sc->add_option("--spill-batch", s.spill_batch, "spilled tasks per message (1 = one by one)");
    sc->add_option("--nested-spill-batch", s.nested_spill_batch, "the same from inside tasks");
    sc->add_option("--heartbeat-us", s.heartbeat_period_us, "load report period of a busy node");
    sc->add_option("--task-us", s.task_us, "run time of each task");
    sc->add_option("--tasks", s.tasks, "finite mode: tasks in all");
    sc->add_option("--fib", s.fib_n, "workload c: fib(n)");
    sc->add_option("--duration-us", s.duration_us, "steady mode: simulated time");
    sc->add_option("--warmup-us", s.warmup_us, "steady mode: not measured before this");
    sc->add_option("--max-outstanding", s.max_outstanding, "tasks in flight per client");
    sc->add_option("--outstanding-per-slot", s.outstanding_per_slot,
                   "tasks in flight per CPU slot (of the client's node; of all nodes for b)");
    sc->add_flag("!--no-lineage", s.lineage, "no GCS lineage rows");
    sc->add_flag("!--no-global-scheduler", s.global_scheduler, "submitters balance themselves");
    sc->add_flag("!--no-work-stealing", s.work_stealing,
                 "the old design: tasks beyond a short local queue spill to the global "
                 "scheduler (--prism-work-stealing=false)");
    sc->add_option("--push-budget-us", s.push_budget_us,
                   "work stealing: work per CPU slot of the thief in one push");
  }
  run->add_option("--nodes", s.nodes, "node ranks");
  run->add_option("--gcs-ranks", s.gcs_ranks, "GCS ranks (replicas = min(3, G))");
  sweep->add_option("--nodes", nodes_list, "node rank counts");
  sweep->add_option("--gcs-ranks", gcs_list, "GCS rank counts (3 = one chain of 3)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (cal->parsed()) return calibrate(results, pick, balance, fit_measured, remote_fraction, out);
    const Costs c = load_costs(calibration);
    if (chk->parsed()) return run_checks(c) == 0 ? 0 : 1;
    if (val->parsed()) return validate(c, results, measured, csv, host_factor);
    s.workload = parse_workload(workload);
    std::ofstream file;
    if (!csv.empty()) file.open(csv);
    std::ostream& o = csv.empty() ? std::cout : file;
    print_header(o);
    if (run->parsed()) {
      print_row(o, s, simulate(c, s));
      return 0;
    }
    for (int g : gcs_list)
      for (int n : nodes_list) {
        Setup t = s;
        t.nodes = n;
        t.gcs_ranks = g;
        const Result r = simulate(c, t);
        print_row(o, t, r);
        std::fprintf(stderr, "%s nodes=%d gcs=%d: %.0f tasks/s (%lld events)\n",
                     workload_name(t.workload).c_str(), n, g, r.tasks_per_s,
                     static_cast<long long>(r.events));
      }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prism_scale_sim: %s\n", e.what());
    return 2;
  }
}
