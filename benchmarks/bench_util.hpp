// Shared by the benchmarks: timing, robust statistics and the CSV output
// (`--csv FILE` writes rows `metric,value,unit`).
#pragma once

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
