// Calibration keys (calibration.json), workload names and the validation
// layout of the simulator.
#include <stdexcept>

#include "sim.hpp"

namespace scale_sim {

// clang-format off
#define SCALE_SIM_COSTS(X) \
  X(submit_us) X(exec_us) X(get_us) X(lineage_us) X(msg_send_us) X(msg_recv_us) X(latency_us) \
  X(task_wire_us) X(result_wire_us) X(gs_pick_base_us) X(gs_pick_per_node_us) \
  X(heartbeat_apply_us) X(gs_balance_per_node_us) X(gs_balance_per_pair_us) X(gcs_write_us) \
  X(gcs_row_us) X(agent_round_us) X(wake_us) X(wake_latency_us) X(switch_us) X(spin_window_us) \
  X(slice_us)
// clang-format on

nlohmann::json Costs::to_json() const {
  nlohmann::json j;
#define X(name) j[#name] = name;
  SCALE_SIM_COSTS(X)
#undef X
  return j;
}

Costs Costs::from_json(const nlohmann::json& j) {
  Costs c;
#define X(name) \
  if (j.contains(#name)) c.name = j.at(#name).get<double>();
  SCALE_SIM_COSTS(X)
#undef X
  return c;
}

std::string workload_name(Workload w) {
  switch (w) {
    case Workload::kPerNodeDrivers:
      return "a_per_node_drivers";
    case Workload::kOneDriver:
      return "b_one_driver";
    case Workload::kNested:
      return "c_nested";
    case Workload::kGcsWrites:
      return "gcs_writes";
  }
  return "?";
}

Workload parse_workload(const std::string& name) {
  if (name == "a" || name == "a_per_node_drivers") return Workload::kPerNodeDrivers;
  if (name == "b" || name == "b_one_driver") return Workload::kOneDriver;
  if (name == "c" || name == "c_nested") return Workload::kNested;
  if (name == "gcs" || name == "gcs_writes") return Workload::kGcsWrites;
  throw std::invalid_argument("unknown workload '" + name + "' (a, b, c or gcs)");
}

void check_setup(const Setup& s) {
  if (s.nodes < 1 || s.workers_per_node < 1 || s.gcs_ranks < 1 || s.spill_batch < 1 ||
      s.nested_spill_batch < 1 || s.forward_batch < 1 || s.result_batch < 1 ||
      s.gcs_batch_rows < 1 || s.heartbeat_period_us <= 0 || s.agent_flush_us <= 0)
    throw std::invalid_argument("setup: counts, batches and periods must be positive");
  if (s.gcs_replicas > s.gcs_ranks) throw std::invalid_argument("setup: replicas > gcs ranks");
  if (s.duration_us <= 0 && s.tasks < 1 && s.workload != Workload::kNested)
    throw std::invalid_argument("setup: no work (tasks or duration)");
}

// The validation layout: every rank on the 2-core VM, one CPU slot per node
// rank, one GCS rank, 100,000 tasks (bench_task_throughput --tasks 100000).
Setup vm_setup(Workload w, int nodes, bool stealing) {
  Setup s;
  s.workload = w;
  s.nodes = nodes;
  s.workers_per_node = 1;
  s.cores_total = 2;
  s.gcs_ranks = 1;
  s.tasks = 100000;
  s.work_stealing = stealing;
  return s;
}

}  // namespace scale_sim
