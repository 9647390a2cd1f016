// Shared by the benchmarks: timing, robust statistics and the CSV output
// (`--csv FILE` writes rows `metric,value,unit`).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace prism::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

/// The baseline of the latency benchmarks: median over 5 rounds of the mean
/// round trip of `iters` 8-byte MPI_Send/MPI_Recv ping-pongs between world
/// ranks 0 and 1 (other ranks only join the barriers). Collective.
inline double mpi_pingpong_roundtrip_us(int rank, int iters) {
  std::vector<double> rounds;
  char buf[8] = {};
  for (int round = 0; round < 5; ++round) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
      if (rank == 0) {
        MPI_Send(buf, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, 8, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(buf, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, 8, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
      }
    }
    rounds.push_back(seconds_since(t0) / iters * 1e6);
  }
  return median(rounds);
}

/// Collects figures, prints each as it comes, writes them to CSV at the end.
class Report {
 public:
  explicit Report(std::string csv_path) : path_(std::move(csv_path)) {}
  void add(const std::string& metric, double value, const std::string& unit) {
    std::printf("%-44s %14.3f %s\n", metric.c_str(), value, unit.c_str());
    std::fflush(stdout);
    rows_.push_back({metric, value, unit});
  }
  bool write() const {
    if (path_.empty()) return true;
    std::ofstream f(path_);
    f << "metric,value,unit\n";
    for (const auto& r : rows_) f << r.metric << ',' << r.value << ',' << r.unit << '\n';
    return static_cast<bool>(f);
  }

 private:
  struct Row {
    std::string metric;
    double value;
    std::string unit;
  };
  std::string path_;
  std::vector<Row> rows_;
};

}  // namespace prism::bench
