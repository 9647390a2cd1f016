// prism-slurm-placement: where did Slurm put each rank? Run by
// run_slurm_tests.sh under slurm/prism-multi-node.sbatch on fake nodes.
//
// The run summary (--prism-summary) gives each world rank's role (driver,
// node, gcs) but not the host it ran on, and the fake nodes of the local
// cluster share one real host (same hostname), so every process prints, before
// the runtime starts, the Slurm task it is and the fake node it runs on:
//   placement: rank=<SLURM_PROCID> host=<SLURMD_NODENAME> nodeid=<SLURM_NODEID>
// (under srun --mpi=pmix, SLURM_PROCID is the MPI world rank). The driver then
// runs one task on every node rank, which ties Prism's node id and world rank
// to that Slurm task:
//   placement-driver: world_rank=W node=N rank=<SLURM_PROCID> host=H
//   placement-task: node=N world_rank=W rank=<SLURM_PROCID> host=H
// and ends with "prism-slurm-placement: OK (<n> nodes)".
#include <prism/prism.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "?";
}

// "rank=<SLURM_PROCID> host=<SLURMD_NODENAME>" of the calling process.
std::string slurm_task() {
  return "rank=" + env("SLURM_PROCID") + " host=" + env("SLURMD_NODENAME");
}

std::string where(int node) {
  return "placement-task: node=" + std::to_string(node) +
         " world_rank=" + std::to_string(prism::world_rank()) + " " + slurm_task();
}

}  // namespace

PRISM_REMOTE(where);

int main(int argc, char** argv) {
  // One write per line, flushed now: srun forwards each task's lines whole.
  std::printf("placement: %s nodeid=%s\n", slurm_task().c_str(), env("SLURM_NODEID").c_str());
  std::fflush(stdout);
  return prism::run(argc, argv, [] {
    std::printf("placement-driver: world_rank=%d node=%d %s\n", prism::world_rank(),
                prism::node_id(), slurm_task().c_str());
    const int nodes = prism::num_nodes();
    std::vector<prism::ObjectRef<std::string>> refs;
    for (int n = 0; n < nodes; ++n)
      refs.push_back(prism::task(where).options({.node = n}).remote(n));
    for (const auto& line : prism::get(refs)) std::printf("%s\n", line.c_str());
    std::printf("prism-slurm-placement: OK (%d nodes)\n", nodes);
  });
}
