// Allreduce between the members of an actor group against plain
// MPI_Allreduce on the same ranks in the same run (issue "MPI interop"):
// float sums of 1 MiB, 100 MiB and 1 GiB per member, one member per node
// rank (placement kSpread). Each member times its own allreduce between two
// group barriers, as the MPI baseline times MPI_Allreduce between two
// MPI_Barriers; the ratio is Prism's time over MPI's (best repetition each;
// MPI runs before and after Prism on this noisy machine, its best counts).
// Also: MPI_Allreduce called by the members themselves on the group's
// communicator (what the runtime's presence costs MPI, apart from
// prism::collective), and one group call's round trip from the driver
// (call + allreduce + result), which is what an application sees per step.
// First, barriers in a row between the members (and MPI_Barrier on the same
// ranks), and a small allreduce (--small-bytes): what starting a collective
// costs, where the data's size does not hide it.
//
//   mpirun -n 5 ./bench_collectives [--sizes-mib 1,100,1024] [--small-bytes 1024] [--csv out.csv]
// The last rank is Prism's GCS rank; the others are node ranks and MPI's.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <prism/mpi.hpp>
#include <prism/prism.hpp>
#include <thread>

#include "bench_util.hpp"

using namespace prism::bench;

namespace {

int reps_for(size_t bytes) {
  return bytes <= (size_t{8} << 20) ? 30 : bytes <= (size_t{256} << 20) ? 5 : 3;
}

// One member per node rank; its buffer is made once, for the largest size.
class Reducer {
 public:
  explicit Reducer(size_t max_floats) : data_(max_floats, 1.0f) {}
  // Seconds per repetition, each between two barriers; -1 if a sum came out wrong.
  std::vector<double> allreduce(size_t floats, int reps) {
    std::vector<double> times;
    std::span<float> view(data_.data(), floats);
    const float members = static_cast<float>(prism::collective::size());
    for (int r = 0; r < reps; ++r) {
      std::fill(view.begin(), view.end(), 1.0f);
      prism::collective::barrier();
      const auto t0 = Clock::now();
      prism::collective::allreduce(view);
      times.push_back(seconds_since(t0));
      if (view.front() != members || view.back() != members) times.back() = -1;
    }
    return times;
  }
  // The same, MPI_Allreduce straight on the group's communicator: what the
  // runtime's presence costs MPI itself, apart from prism::collective.
  std::vector<double> mpi_allreduce(size_t floats, int reps) {
    MPI_Comm comm = prism::mpi::communicator();
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
      std::fill(data_.begin(), data_.begin() + static_cast<long>(floats), 1.0f);
      MPI_Barrier(comm);
      const auto t0 = Clock::now();
      MPI_Allreduce(MPI_IN_PLACE, data_.data(), static_cast<int>(floats), MPI_FLOAT, MPI_SUM, comm);
      times.push_back(seconds_since(t0));
    }
    return times;
  }
  // Seconds per barrier over `n` in a row (after one to line the members up).
  double barriers(int n) {
    prism::collective::barrier();
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) prism::collective::barrier();
    return seconds_since(t0) / n;
  }
  double mpi_barriers(int n) {
    MPI_Comm comm = prism::mpi::communicator();
    MPI_Barrier(comm);
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) MPI_Barrier(comm);
    return seconds_since(t0) / n;
  }
  float one(size_t floats) {
    std::span<float> view(data_.data(), floats);
    view.front() = view.back() = 1.0f;  // (the rest may hold earlier sums: only time matters)
    prism::collective::allreduce(view);
    return view.back();
  }

 private:
  std::vector<float> data_;
};
PRISM_ACTOR(Reducer, &Reducer::allreduce, &Reducer::mpi_allreduce, &Reducer::barriers,
            &Reducer::mpi_barriers, &Reducer::one);

// Barriers in a row between members (and MPI ranks): what every collective's
// start costs, the check that all members called the same one.
constexpr int kBarriers = 200;

// MPI_Allreduce of `floats` floats on `comm`, best of `reps`.
double mpi_allreduce_s(MPI_Comm comm, size_t floats, int reps) {
  std::vector<float> buf(floats);
  int size;
  MPI_Comm_size(comm, &size);
  double best = 1e9;
  for (int r = 0; r < reps; ++r) {
    std::fill(buf.begin(), buf.end(), 1.0f);
    MPI_Barrier(comm);
    const auto t0 = Clock::now();
    for (size_t done = 0; done < floats;) {  // in pieces of < 2^31 elements, as Prism's
      const size_t n = std::min(floats - done, size_t{1} << 28);
      MPI_Allreduce(MPI_IN_PLACE, buf.data() + done, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm);
      done += n;
    }
    const double s = seconds_since(t0);
    if (buf.front() != static_cast<float>(size)) throw std::runtime_error("MPI sum is wrong");
    double slowest = 0;  // the collective ends when its slowest rank does
    MPI_Allreduce(&s, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
    best = std::min(best, slowest);
  }
  return best;
}

// Seconds per MPI_Barrier on `comm`, `kBarriers` in a row, slowest rank.
double mpi_barrier_s(MPI_Comm comm) {
  MPI_Barrier(comm);
  const auto t0 = Clock::now();
  for (int i = 0; i < kBarriers; ++i) MPI_Barrier(comm);
  const double s = seconds_since(t0) / kBarriers;
  double slowest = 0;
  MPI_Allreduce(&s, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  CLI::App app{"allreduce between actor-group members vs MPI_Allreduce"};
  std::string csv, sizes_text = "1,100,1024";
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.add_option("--sizes-mib", sizes_text, "buffer sizes per member, MiB, comma-separated");
  size_t small_bytes = 1024;
  app.add_option("--small-bytes", small_bytes,
                 "and a latency-bound allreduce of this many bytes first (0: none)");
  app.allow_extras();  // --prism-* flags go to the runtime
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    MPI_Finalize();
    return rc;
  }
  std::vector<size_t> sizes;  // bytes
  if (small_bytes >= 4) sizes.push_back(small_bytes);
  for (size_t at = 0; at <= sizes_text.size();) {
    const size_t comma = std::min(sizes_text.find(',', at), sizes_text.size());
    sizes.push_back(static_cast<size_t>(std::stod(sizes_text.substr(at, comma - at)) * (1 << 20)));
    at = comma + 1;
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int width = size - 1;  // Prism's default: one GCS rank, the last
  if (width < 2) {
    if (rank == 0) std::fprintf(stderr, "needs at least 3 ranks (2 node ranks + 1 GCS)\n");
    MPI_Finalize();
    return 2;
  }
  std::vector<double> mpi(sizes.size(), 1e9);
  double mpi_barrier = 1e9;
  auto run_mpi = [&] {
    MPI_Comm nodes;
    MPI_Comm_split(MPI_COMM_WORLD, rank < width ? 0 : MPI_UNDEFINED, rank, &nodes);
    if (nodes != MPI_COMM_NULL) {
      for (int round = 0; round < 3; ++round)
        mpi_barrier = std::min(mpi_barrier, mpi_barrier_s(nodes));
      for (size_t k = 0; k < sizes.size(); ++k)
        mpi[k] = std::min(mpi[k], mpi_allreduce_s(nodes, sizes[k] / 4, reps_for(sizes[k])));
      MPI_Comm_free(&nodes);
    }
    // The GCS rank waits sleeping: a plain MPI_Barrier would poll a core.
    MPI_Request done;
    MPI_Ibarrier(MPI_COMM_WORLD, &done);
    for (int flag = 0; MPI_Test(&done, &flag, MPI_STATUS_IGNORE), !flag;)
      if (rank >= width) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  run_mpi();

  std::vector<double> prism_s(sizes.size(), 1e9), call_s(sizes.size(), 1e9),
      inside_s(sizes.size(), 1e9);
  double prism_barrier = 1e9, inside_barrier = 1e9;
  bool wrong = false;
  int rc = prism::run(argc, argv, [&] {
    const size_t max_floats = *std::max_element(sizes.begin(), sizes.end()) / 4;
    auto group = prism::actor_group<Reducer>(static_cast<size_t>(width), max_floats)
                     .options({.placement = prism::Placement::kSpread})
                     .remote();
    // Each round's figure is its slowest member's.
    auto slowest = [&](auto method) {
      double s = 0;
      for (auto& r : group.call(method).remote(kBarriers)) s = std::max(s, prism::get(r));
      return s;
    };
    for (int round = 0; round < 3; ++round) {
      prism_barrier = std::min(prism_barrier, slowest(&Reducer::barriers));
      inside_barrier = std::min(inside_barrier, slowest(&Reducer::mpi_barriers));
    }
    for (size_t k = 0; k < sizes.size(); ++k) {
      const size_t floats = sizes[k] / 4;
      // Best repetition of the slowest member; alternated, twice each.
      auto best = [&](auto method, double& into) {
        std::vector<std::vector<double>> times;
        for (auto& r : group.call(method).remote(floats, reps_for(sizes[k])))
          times.push_back(prism::get(r));
        for (int rep = 0; rep < reps_for(sizes[k]); ++rep) {
          double slowest = 0;
          for (const auto& t : times) {
            if (t[static_cast<size_t>(rep)] < 0) wrong = true;
            slowest = std::max(slowest, t[static_cast<size_t>(rep)]);
          }
          into = std::min(into, slowest);
        }
      };
      for (int round = 0; round < 2; ++round) {
        best(&Reducer::allreduce, prism_s[k]);
        best(&Reducer::mpi_allreduce, inside_s[k]);
      }
      for (int rep = 0; rep < std::min(5, reps_for(sizes[k])); ++rep) {
        const auto t0 = Clock::now();
        for (auto& r : group.call(&Reducer::one).remote(floats))
          if (prism::get(r) != static_cast<float>(width)) wrong = true;
        call_s[k] = std::min(call_s[k], seconds_since(t0));
      }
    }
  });
  if (rc == 0) {
    run_mpi();
    if (rank == 0) {
      Report report(csv);
      report.add("members", width, "actors (one per node rank)");
      report.add("barrier_mpi_us", mpi_barrier * 1e6, "us");
      report.add("barrier_prism_us", prism_barrier * 1e6, "us");
      report.add("barrier_mpi_inside_members_us", inside_barrier * 1e6, "us");
      for (size_t k = 0; k < sizes.size(); ++k) {
        const size_t b = sizes[k];
        const std::string m = "allreduce_" + (b % (1 << 20) == 0 ? std::to_string(b >> 20) + "MiB"
                                              : b % 1024 == 0    ? std::to_string(b >> 10) + "KiB"
                                                                 : std::to_string(b) + "B");
        report.add(m + "_mpi_ms", mpi[k] * 1e3, "ms");
        report.add(m + "_prism_ms", prism_s[k] * 1e3, "ms");
        report.add(m + "_prism_over_mpi", prism_s[k] / mpi[k], "ratio");
        report.add(m + "_mpi_inside_members_ms", inside_s[k] * 1e3, "ms");
        report.add(m + "_group_call_ms", call_s[k] * 1e3, "ms");
      }
      if (wrong) {
        std::fprintf(stderr, "a sum came out wrong\n");
        rc = 1;
      }
      if (!report.write()) rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}
