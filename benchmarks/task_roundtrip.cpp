// Empty-task round trip from the driver to a task on another node rank and
// back, beside an MPI ping-pong round trip between the same two ranks,
// measured in the same run (issue #2's first benchmark).
//
//   mpirun -n 3 ./bench_task_roundtrip [--iters N] [--csv out.csv]
//
// The MPI baseline runs before prism::run starts the runtime (the benchmark
// initializes MPI itself; prism::run then leaves MPI to it).
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <prism/prism.hpp>

#include "bench_util.hpp"

using namespace prism::bench;

namespace {
int empty() {
  return 0;
}
PRISM_REMOTE(empty);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism task round trip vs MPI ping-pong"};
  int iters = 20000;
  std::string csv;
  app.add_option("--iters", iters, "round trips per measurement round");
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.allow_extras();  // --prism-* flags are prism::run's
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    MPI_Finalize();
    return rc;
  }
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const double mpi_rtt = mpi_pingpong_roundtrip_us(rank, iters);

  int rc = prism::run(argc, argv, [&] {
    Report report(csv);
    if (prism::num_nodes() < 2) throw std::runtime_error("needs 2 node ranks: mpirun -n 3");
    auto remote = prism::task(empty).options({.node = 1});
    auto local = prism::task(empty).options({.node = 0});
    for (int i = 0; i < 1000; ++i) (void)prism::get(remote.remote());  // warm up
    std::vector<double> rounds, local_rounds;
    for (int round = 0; round < 5; ++round) {
      auto t0 = Clock::now();
      for (int i = 0; i < iters; ++i) (void)prism::get(remote.remote());
      rounds.push_back(seconds_since(t0) / iters * 1e6);
      t0 = Clock::now();
      for (int i = 0; i < iters; ++i) (void)prism::get(local.remote());
      local_rounds.push_back(seconds_since(t0) / iters * 1e6);
    }
    const double task_rtt = median(rounds);
    report.add("mpi_pingpong_roundtrip_8B", mpi_rtt, "us");
    report.add("task_roundtrip_remote_node", task_rtt, "us");
    report.add("task_roundtrip_remote_over_mpi_ratio", task_rtt / mpi_rtt, "x");
    report.add("task_roundtrip_same_node", median(local_rounds), "us");
    if (!report.write()) throw std::runtime_error("cannot write " + csv);
  });
  MPI_Finalize();
  return rc;
}
