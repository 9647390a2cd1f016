// Ray's "tasks async" microbenchmarks on Prism: empty tasks submitted without
// waiting, then all gathered. Also the same from several submitters at once
// (tasks that submit tasks: "multi client tasks async") and nested tasks.
//
//   mpirun -n 4 ./bench_task_throughput [--tasks N] [--csv out.csv]
// Compare -n 4 and -n 8 on this 2-core machine: per-task time should grow
// only by the extra ranks' overhead (they sleep when idle).
// --only NAME runs one measurement: on 2 cores the GCS records of one
// measurement are still being written during the next, so run_all.sh runs
// each in its own job.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <prism/prism.hpp>

#include "bench_util.hpp"

using namespace prism::bench;

namespace {
int empty() {
  return 0;
}
PRISM_REMOTE(empty);

int submit_batch(int n) {  // a client that is itself a task
  std::vector<prism::ObjectRef<int>> refs;
  refs.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) refs.push_back(prism::task(empty).remote());
  int s = 0;
  for (int v : prism::get(refs)) s += v;
  return s + n;
}
PRISM_REMOTE(submit_batch);

long fib(int n) {
  if (n < 2) return n;
  auto a = prism::task(fib).remote(n - 1);
  auto b = prism::task(fib).remote(n - 2);
  return prism::get(a) + prism::get(b);
}
PRISM_REMOTE(fib);

double rate(int n, const std::function<void()>& body) {
  std::vector<double> r;
  for (int round = 0; round < 3; ++round) {
    auto t0 = Clock::now();
    body();
    r.push_back(n / seconds_since(t0));
  }
  return median(r);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism task throughput"};
  int tasks = 100000;
  std::string csv;
  app.add_option("--tasks", tasks, "tasks per measurement");
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  std::string only;
  app.add_option("--only", only, "run one measurement (for profiling)")
      ->check(CLI::IsMember({"async", "spread", "multi", "nested", "sync"}));
  app.allow_extras();
  CLI11_PARSE(app, argc, argv);
  return prism::run(argc, argv, [&] {
    Report report(csv);
    const int nodes = prism::num_nodes();
    report.add("node_ranks", nodes, "ranks");
    auto async_all = [&](prism::TaskOptions opts) {
      std::vector<prism::ObjectRef<int>> refs;
      refs.reserve(static_cast<size_t>(tasks));
      auto f = prism::task(empty).options(opts);
      for (int i = 0; i < tasks; ++i) refs.push_back(f.remote());
      for (auto& r : refs) (void)prism::get(r);
    };
    auto wanted = [&](const char* name) { return only.empty() || only == name; };
    {  // warm up (a tenth: its GCS records must not still be in flight when timing starts)
      const int all = tasks;
      tasks = std::max(1, tasks / 10);
      async_all({});
      tasks = all;
    }
    if (wanted("async")) {
      const double local = rate(tasks, [&] { async_all({}); });
      report.add("single_client_tasks_async", local, "tasks/s");
    }
    if (wanted("spread")) {
      const double spread =
          rate(tasks, [&] { async_all({.placement = prism::Placement::kSpread}); });
      report.add("single_client_tasks_async_spread", spread, "tasks/s");
      report.add("per_task_time_spread", 1e6 / spread, "us");
    }
    if (wanted("multi")) {
      const int per_client = tasks / nodes;
      const double multi = rate(per_client * nodes, [&] {
        std::vector<prism::ObjectRef<int>> clients;
        for (int n = 0; n < nodes; ++n)
          clients.push_back(prism::task(submit_batch).options({.node = n}).remote(per_client));
        for (auto& c : clients) (void)prism::get(c);
      });
      report.add("multi_client_tasks_async", multi, "tasks/s");
    }
    if (wanted("nested")) {
      const int fib_n = 18;  // 8361 tasks
      const double nested = rate(8361, [&] { (void)prism::get(prism::task(fib).remote(fib_n)); });
      report.add("nested_tasks_fib18", nested, "tasks/s");
    }
    if (wanted("sync")) {
      std::vector<double> sync;
      for (int i = 0; i < 3; ++i) {
        auto t0 = Clock::now();
        for (int k = 0; k < 10000; ++k) (void)prism::get(prism::task(empty).remote());
        sync.push_back(10000 / seconds_since(t0));
      }
      report.add("single_client_tasks_sync", median(sync), "tasks/s");
    }
    if (!report.write()) throw std::runtime_error("cannot write " + csv);
  });
}
