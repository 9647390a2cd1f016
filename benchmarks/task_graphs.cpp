// Dependent task graphs against MPI doing the same graph in the same run
// (issue "Dependent task graphs at MPI speed"):
//
//   stencil  width W = node ranks, S steps: cell (s, p) needs cells p-1, p,
//            p+1 of step s-1 (clamped); cell p runs on node p. MPI: rank p
//            computes its cell and swaps it with its neighbours (Isend/Irecv).
//   chain    L links, link i needs link i-1 and runs on node i mod W. MPI:
//            the value hops from rank to rank, each computing its link.
//   tree     a fan-out of 2^D leaves then a binary fan-in of combines, all
//            placed by the scheduler. MPI: each rank its share of leaves,
//            combines locally, then log2(W) rounds of send-and-combine.
//
// Every task burns the same known number of floating-point operations (a
// dependent multiply-add chain), swept over task sizes. For each graph and
// size: Prism's and MPI's wall time, Prism's efficiency against MPI (MPI's
// time / Prism's), and the smallest task size at which Prism still reaches
// 50% of MPI.
//
//   mpirun -n 3 ./bench_task_graphs [--sizes 5,20,100,500] [--csv out.csv]
// The last rank is Prism's GCS rank; MPI's baseline uses the other ranks.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <prism/prism.hpp>
#include <thread>

#include "bench_util.hpp"

using namespace prism::bench;

namespace {

// Two floating-point operations per iteration; `x` keeps it from being
// optimized away and makes each task's result depend on its inputs.
double burn(double x, uint64_t iters) {
  double a = 1.0000001, b = 1e-9;
  for (uint64_t i = 0; i < iters; ++i) x = x * a + b;
  return x;
}

double cell(double left, double mid, double right, uint64_t iters) {
  return burn((left + mid + right) / 3.0, iters);
}
PRISM_REMOTE(cell);

double link(double prev, uint64_t iters) {
  return burn(prev, iters);
}
PRISM_REMOTE(link);

double leaf(double seed, uint64_t iters) {
  return burn(seed, iters);
}
PRISM_REMOTE(leaf);

double combine(double a, double b, uint64_t iters) {
  return burn(a + b, iters);
}
PRISM_REMOTE(combine);

// Iterations of burn() per microsecond on this rank.
double calibrate() {
  uint64_t iters = 1000;
  for (;;) {
    auto t0 = Clock::now();
    volatile double r = burn(1.0, iters);
    (void)r;
    const double s = seconds_since(t0);
    if (s > 0.02) return static_cast<double>(iters) / (s * 1e6);
    iters *= 4;
  }
}

struct Shape {
  int steps = 0, links = 0, depth = 0;
};

// ---- MPI versions (on `comm`, the node ranks) ----

double mpi_stencil(MPI_Comm comm, int steps, uint64_t iters) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  double mine = 1.0 + rank, left = mine, right = mine;
  MPI_Barrier(comm);
  auto t0 = Clock::now();
  for (int s = 0; s < steps; ++s) {
    mine = burn((left + mine + right) / 3.0, iters);
    MPI_Request req[4];
    int n = 0;
    if (rank > 0) {
      MPI_Isend(&mine, 1, MPI_DOUBLE, rank - 1, 0, comm, &req[n++]);
      MPI_Irecv(&left, 1, MPI_DOUBLE, rank - 1, 0, comm, &req[n++]);
    } else {
      left = mine;
    }
    if (rank + 1 < size) {
      MPI_Isend(&mine, 1, MPI_DOUBLE, rank + 1, 0, comm, &req[n++]);
      MPI_Irecv(&right, 1, MPI_DOUBLE, rank + 1, 0, comm, &req[n++]);
    } else {
      right = mine;
    }
    MPI_Waitall(n, req, MPI_STATUSES_IGNORE);
  }
  MPI_Barrier(comm);
  return seconds_since(t0);
}

double mpi_chain(MPI_Comm comm, int links, uint64_t iters) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  double v = 1.0;
  MPI_Barrier(comm);
  auto t0 = Clock::now();
  for (int i = 0; i < links; ++i) {
    const int at = i % size, prev = (i + size - 1) % size;
    if (rank != at) continue;
    if (i > 0 && size > 1) MPI_Recv(&v, 1, MPI_DOUBLE, prev, 0, comm, MPI_STATUS_IGNORE);
    v = burn(v, iters);
    if (i + 1 < links && size > 1) MPI_Send(&v, 1, MPI_DOUBLE, (i + 1) % size, 0, comm);
  }
  MPI_Barrier(comm);
  return seconds_since(t0);
}

double mpi_tree(MPI_Comm comm, int depth, uint64_t iters) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int leaves = 1 << depth;
  MPI_Barrier(comm);
  auto t0 = Clock::now();
  // Leaves i with i % size == rank, combined pairwise locally as far as
  // possible (the same combines the task tree does, on whichever rank holds
  // both halves), then across ranks.
  std::vector<double> level(static_cast<size_t>(leaves), 0.0);
  for (int i = rank; i < leaves; i += size) level[static_cast<size_t>(i)] = burn(1.0 + i, iters);
  int width = leaves, stride = 1;
  while (width > 1) {
    // Combine (j, j + stride) for j a multiple of 2*stride; owner of j = (j / stride) % size.
    for (int j = 0; j + stride < leaves; j += 2 * stride) {
      const int owner_j = (j / stride) % size, owner_k = ((j + stride) / stride) % size;
      const int into = (j / (2 * stride)) % size;
      double a = level[static_cast<size_t>(j)], b = level[static_cast<size_t>(j + stride)];
      if (owner_j != into && rank == owner_j) MPI_Send(&a, 1, MPI_DOUBLE, into, 1, comm);
      if (owner_k != into && rank == owner_k) MPI_Send(&b, 1, MPI_DOUBLE, into, 2, comm);
      if (rank == into) {
        if (owner_j != into) MPI_Recv(&a, 1, MPI_DOUBLE, owner_j, 1, comm, MPI_STATUS_IGNORE);
        if (owner_k != into) MPI_Recv(&b, 1, MPI_DOUBLE, owner_k, 2, comm, MPI_STATUS_IGNORE);
        level[static_cast<size_t>(j)] = burn(a + b, iters);
      }
    }
    width /= 2;
    stride *= 2;
  }
  MPI_Barrier(comm);
  return seconds_since(t0);
}

// ---- Prism versions (the driver) ----

double prism_stencil(int width, int steps, uint64_t iters) {
  auto t0 = Clock::now();
  std::vector<prism::ObjectRef<double>> prev;
  for (int p = 0; p < width; ++p) prev.push_back(prism::put(1.0 + p));
  for (int s = 0; s < steps; ++s) {
    std::vector<prism::ObjectRef<double>> next;
    for (int p = 0; p < width; ++p) {
      const auto& l = prev[static_cast<size_t>(std::max(0, p - 1))];
      const auto& r = prev[static_cast<size_t>(std::min(width - 1, p + 1))];
      next.push_back(
          prism::task(cell).options({.node = p}).remote(l, prev[static_cast<size_t>(p)], r, iters));
    }
    prev = std::move(next);
  }
  for (auto& r : prev) (void)prism::get(r);
  return seconds_since(t0);
}

double prism_chain(int width, int links, uint64_t iters) {
  auto t0 = Clock::now();
  auto v = prism::put(1.0);
  for (int i = 0; i < links; ++i)
    v = prism::task(link).options({.node = i % width}).remote(v, iters);
  (void)prism::get(v);
  return seconds_since(t0);
}

double prism_tree(int depth, uint64_t iters) {
  auto t0 = Clock::now();
  std::vector<prism::ObjectRef<double>> level;
  for (int i = 0; i < (1 << depth); ++i) level.push_back(prism::task(leaf).remote(1.0 + i, iters));
  while (level.size() > 1) {
    std::vector<prism::ObjectRef<double>> up;
    for (size_t j = 0; j + 1 < level.size(); j += 2)
      up.push_back(prism::task(combine).remote(level[j], level[j + 1], iters));
    level = std::move(up);
  }
  (void)prism::get(level.front());
  return seconds_since(t0);
}

std::vector<double> parse_sizes(const std::string& s) {
  std::vector<double> out;
  size_t at = 0;
  while (at < s.size()) {
    const size_t comma = s.find(',', at);
    out.push_back(std::stod(s.substr(at, comma - at)));
    at = comma == std::string::npos ? s.size() : comma + 1;
  }
  return out;
}

// The graph's size for tasks of `us` microseconds: about `budget_ms` of work per run.
Shape shape_for(double us, int width, double budget_ms) {
  Shape sh;
  const double tasks = budget_ms * 1000.0 / us;
  sh.steps = static_cast<int>(std::clamp(tasks / width, 20.0, 4000.0));
  sh.links = static_cast<int>(std::clamp(tasks, 20.0, 4000.0));
  sh.depth = static_cast<int>(std::clamp(std::log2(std::max(2.0, tasks / 2)), 3.0, 11.0));
  return sh;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Dependent task graphs: Prism vs MPI"};
  std::string csv, sizes_text = "2,5,10,20,50,100,200,500,1000";
  double budget_ms = 150;
  app.add_option("--sizes", sizes_text, "task sizes to sweep, microseconds");
  app.add_option("--budget-ms", budget_ms, "work per graph run, milliseconds of one core");
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.allow_extras();
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    MPI_Finalize();
    return rc;
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int gcs_ranks = [] {
    const char* g = std::getenv("PRISM_GCS_RANKS");
    return g ? std::max(1, std::atoi(g)) : 1;
  }();
  const int width = size - gcs_ranks;
  if (width < 1) {
    if (rank == 0) std::fprintf(stderr, "needs at least %d ranks\n", gcs_ranks + 1);
    MPI_Finalize();
    return 2;
  }
  auto sizes = parse_sizes(sizes_text);
  std::sort(sizes.begin(), sizes.end());
  // Calibrated on rank 0 alone (the others wait: on few cores they would
  // slow it down), used everywhere: the same FLOPs for both.
  double per_us = rank == 0 ? calibrate() : 0;
  MPI_Bcast(&per_us, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Comm nodes;
  MPI_Comm_split(MPI_COMM_WORLD, rank < width ? 0 : MPI_UNDEFINED, rank, &nodes);
  // The machine is shared and noisy: MPI runs before and after Prism, and
  // each side's best round counts.
  std::vector<std::array<double, 3>> mpi(sizes.size(), {1e9, 1e9, 1e9});
  auto run_mpi = [&] {
    MPI_Comm nodes;
    MPI_Comm_split(MPI_COMM_WORLD, rank < width ? 0 : MPI_UNDEFINED, rank, &nodes);
    for (size_t k = 0; k < sizes.size() && rank < width; ++k) {
      const auto iters = static_cast<uint64_t>(sizes[k] * per_us);
      const Shape sh = shape_for(sizes[k], width, budget_ms);
      for (int round = 0; round < 2; ++round) {
        mpi[k][0] = std::min(mpi[k][0], mpi_stencil(nodes, sh.steps, iters));
        mpi[k][1] = std::min(mpi[k][1], mpi_chain(nodes, sh.links, iters));
        mpi[k][2] = std::min(mpi[k][2], mpi_tree(nodes, sh.depth, iters));
      }
    }
    if (nodes != MPI_COMM_NULL) MPI_Comm_free(&nodes);
    // The GCS rank(s) wait meanwhile, sleeping between tests: a plain
    // MPI_Barrier polls, and would take a core from the MPI baseline.
    MPI_Request done;
    MPI_Ibarrier(MPI_COMM_WORLD, &done);
    for (int flag = 0; MPI_Test(&done, &flag, MPI_STATUS_IGNORE), !flag;)
      if (rank >= width) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  run_mpi();

  std::vector<std::array<double, 3>> prism_s(sizes.size(), {1e9, 1e9, 1e9});
  int rc = prism::run(argc, argv, [&] {
    for (size_t k = 0; k < sizes.size(); ++k) {
      const auto iters = static_cast<uint64_t>(sizes[k] * per_us);
      const Shape sh = shape_for(sizes[k], width, budget_ms);
      (void)prism_stencil(width, 5, iters);  // warm: functions timed, workers awake
      for (int round = 0; round < 3; ++round) {
        prism_s[k][0] = std::min(prism_s[k][0], prism_stencil(width, sh.steps, iters));
        prism_s[k][1] = std::min(prism_s[k][1], prism_chain(width, sh.links, iters));
        prism_s[k][2] = std::min(prism_s[k][2], prism_tree(sh.depth, iters));
      }
    }
  });
  if (rc == 0) {
    run_mpi();
    if (rank == 0) {
      Report report(csv);
      report.add("node_ranks", width, "ranks");
      report.add("flops_per_us", 2 * per_us, "flop/us");
      const char* names[3] = {"stencil", "chain", "tree"};
      // The smallest task size from which on every size keeps half of MPI (-1: none).
      double half[3] = {-1, -1, -1};
      for (size_t g = 0; g < 3; ++g)
        for (size_t k = sizes.size(); k-- > 0 && mpi[k][g] / prism_s[k][g] >= 0.5;)
          half[g] = sizes[k];
      for (size_t k = 0; k < sizes.size(); ++k) {
        char size_tag[32];
        std::snprintf(size_tag, sizeof size_tag, "%gus", sizes[k]);
        for (size_t g = 0; g < 3; ++g) {
          const std::string m = std::string(names[g]) + "_" + size_tag;
          report.add(m + "_prism_s", prism_s[k][g], "s");
          report.add(m + "_mpi_s", mpi[k][g], "s");
          report.add(m + "_efficiency_vs_mpi", mpi[k][g] / prism_s[k][g], "fraction");
        }
      }
      for (int g = 0; g < 3; ++g)
        report.add(std::string(names[g]) + "_smallest_task_at_half_mpi", half[g], "us");
      if (!report.write()) rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}
