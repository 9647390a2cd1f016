// bench_soak: many tasks and actor calls in one job with flat memory (issue
// "Fault tolerance", item 8). Runs --tasks small tasks and --actor-calls
// actor calls in windows of --window outstanding ones, and reports every
// rank's resident memory (RSS) after a warm-up window and at the end, read
// from /proc on this host (ranks on other hosts are not seen).
//
//   mpirun -n 3 build/benchmarks/bench_soak --tasks 10000000 --actor-calls 1000000
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <prism/prism.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using prism::bench::Clock;
using prism::bench::Report;
using prism::bench::seconds_since;

int64_t echo(int64_t i) {
  return i;
}
PRISM_REMOTE(echo);

class Counter {
 public:
  int64_t add(int64_t k) { return n_ += k; }

 private:
  int64_t n_ = 0;
};
PRISM_ACTOR(Counter, &Counter::add);

// RSS (bytes) of every process of this job on this host, by world rank:
// processes running this binary whose environment names an MPI rank and
// this job's Open MPI job id.
std::map<int, int64_t> job_rss() {
  std::map<int, int64_t> out;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const char* jobid = std::getenv("OMPI_MCA_ess_base_jobid");
  const long page = sysconf(_SC_PAGESIZE);
  for (const auto& d : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = d.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    if (std::filesystem::read_symlink(d.path() / "exe", ec).string() != self || ec) continue;
    std::ifstream env(d.path() / "environ", std::ios::binary);
    std::string var;
    int rank = -1;
    bool same_job = jobid == nullptr;
    while (std::getline(env, var, '\0')) {
      if (var.rfind("OMPI_COMM_WORLD_RANK=", 0) == 0) rank = std::atoi(var.c_str() + 21);
      if (jobid && var == std::string("OMPI_MCA_ess_base_jobid=") + jobid) same_job = true;
    }
    if (rank < 0 || !same_job) continue;
    std::ifstream statm(d.path() / "statm");
    int64_t size = 0, resident = 0;
    if (statm >> size >> resident) out[rank] = resident * page;
  }
  return out;
}

std::string mib(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(b) / (1 << 20));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t tasks = 10'000'000, calls = 1'000'000, window = 20'000;
  int samples = 1;
  std::string csv;
  CLI::App app{"bench_soak: many tasks and actor calls, each rank's memory at start and end"};
  app.add_option("--tasks", tasks, "tasks to run");
  app.add_option("--actor-calls", calls, "actor calls to make");
  app.add_option("--window", window, "outstanding tasks or calls at a time");
  app.add_option("--samples", samples,
                 "print every rank's RSS this many times during the tasks (the growth curve)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--csv", csv, "append metric,value,unit rows to this file");
  app.allow_extras();
  CLI11_PARSE(app, argc, argv);

  return prism::run(argc, argv, [&] {
    auto run_tasks = [&](int64_t n) {
      std::vector<prism::ObjectRef<int64_t>> refs;
      for (int64_t done = 0; done < n;) {
        const int64_t k = std::min(window, n - done);
        refs.clear();
        for (int64_t i = 0; i < k; ++i) refs.push_back(prism::task(echo).remote(done + i));
        for (int64_t i = 0; i < k; ++i)
          if (prism::get(refs[static_cast<size_t>(i)]) != done + i)
            throw std::runtime_error("a task returned a wrong value");
        done += k;
      }
    };
    std::vector<prism::ActorHandle<Counter>> counters;
    for (int r = 0; r < prism::num_nodes(); ++r)
      counters.push_back(prism::actor<Counter>().options({.node = r}).remote());
    auto run_calls = [&](int64_t n) {
      std::vector<prism::ObjectRef<int64_t>> refs;
      for (int64_t done = 0; done < n;) {
        const int64_t k = std::min(window, n - done);
        refs.clear();
        for (int64_t i = 0; i < k; ++i)
          refs.push_back(
              counters[static_cast<size_t>(i) % counters.size()].call(&Counter::add).remote(1));
        for (auto& r : refs) (void)prism::get(r);
        done += k;
      }
    };
    run_tasks(window);  // warm-up: pools, buffers, connections
    run_calls(window);
    const auto before = job_rss();
    const auto t0 = Clock::now();
    for (int part = 1; part <= samples; ++part) {
      const int64_t upto = tasks * part / samples, from = tasks * (part - 1) / samples;
      run_tasks(upto - from);
      if (samples == 1) continue;
      std::string line;
      for (const auto& [rank, b] : job_rss())
        line += "  rank " + std::to_string(rank) + " " + mib(b) + " MiB";
      std::printf("soak: after %lld tasks:%s\n", static_cast<long long>(upto), line.c_str());
      std::fflush(stdout);
    }
    const double task_s = seconds_since(t0);
    const auto t1 = Clock::now();
    run_calls(calls);
    const double call_s = seconds_since(t1);
    const auto after = job_rss();
    std::printf("soak: %lld tasks in %.1f s (%.0f/s), %lld actor calls in %.1f s (%.0f/s)\n",
                static_cast<long long>(tasks), task_s, static_cast<double>(tasks) / task_s,
                static_cast<long long>(calls), call_s, static_cast<double>(calls) / call_s);
    Report report(csv);
    report.add("soak_tasks_per_s", static_cast<double>(tasks) / task_s, "1/s");
    report.add("soak_calls_per_s", static_cast<double>(calls) / call_s, "1/s");
    for (const auto& [rank, b] : before) {
      const int64_t a = after.count(rank) ? after.at(rank) : 0;
      std::printf("soak: rank %d RSS %s MiB after warm-up, %s MiB at the end (%+.1f MiB)\n", rank,
                  mib(b).c_str(), mib(a).c_str(), static_cast<double>(a - b) / (1 << 20));
      report.add("soak_rss_start_rank" + std::to_string(rank), static_cast<double>(b) / (1 << 20),
                 "MiB");
      report.add("soak_rss_end_rank" + std::to_string(rank), static_cast<double>(a) / (1 << 20),
                 "MiB");
    }
    if (!report.write()) throw std::runtime_error("soak: could not write " + csv);
    std::printf("soak: OK\n");
  });
}
