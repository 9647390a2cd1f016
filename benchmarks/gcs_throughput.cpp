// The GCS on real ranks: what recording lineage costs task throughput, how
// many writes a chain commits per second, a write's round trip, and the pause
// a client sees when a replica goes silent. One configuration per run; the
// metric names carry it (gcs_<shards>x<replicas>_...):
//
//   mpirun -n 3 ./bench_gcs_throughput --prism-gcs-ranks=1                 # 1 GCS rank
//   mpirun -n 5 ./bench_gcs_throughput --prism-gcs-ranks=3                 # chain of 3
//   mpirun -n 8 ./bench_gcs_throughput --prism-gcs-ranks=6                 # 2 shards x 3
//   mpirun -n 5 ./bench_gcs_throughput --prism-gcs-ranks=3 --prism-gcs-lineage=false   # no recording
//   mpirun -n 5 ./bench_gcs_throughput --prism-gcs-ranks=3 --prism-gcs-fault=2:3000 --failover
//
//   mpirun -n 5 ./bench_gcs_throughput --prism-gcs-ranks=3 --idle 5 --prism-log-level=info
//     (an idle job: each GCS rank logs the CPU time it used)
//
// Options: --tasks N (per round), --seconds S (write stream), --window W
// (writes in flight), --csv FILE (rows metric,value,unit).
#include <CLI/CLI.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <prism/prism.hpp>
#include <thread>

#include "bench_util.hpp"
#include "gcs/gcs.hpp"
#include "runtime/gcs_agent.hpp"

using namespace prism::bench;
namespace gcs = prism::gcs;

namespace {

int empty() { return 0; }
PRISM_REMOTE(empty);

prism::runtime::GcsAgent& agent() {
  auto* a = prism::runtime::current_gcs_agent();
  if (!a) throw std::runtime_error("no GCS agent on the driver");
  return *a;
}

// A stream of writes from the driver's GCS client: up to `window` in flight,
// each completion issues the next, until stop(). Runs on the agent thread.
class WriteStream {
 public:
  WriteStream(size_t window, uint32_t key_owner) : st_(std::make_shared<State>()) {
    st_->window = window;
    st_->owner = key_owner;
    st_->start = Clock::now();
    auto st = st_;
    agent().post([st](gcs::GcsClient& c) { pump(st, c); });
  }
  void stop() {
    {
      std::lock_guard lk(st_->mu);
      st_->stopping = true;
    }
    while (true) {
      {
        std::lock_guard lk(st_->mu);
        if (st_->in_flight == 0) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  size_t acked() {
    std::lock_guard lk(st_->mu);
    return st_->acks.size();
  }
  uint64_t failed() {
    std::lock_guard lk(st_->mu);
    return st_->failed;
  }
  // Longest time without an acknowledgement (from the start).
  double longest_gap_ms() {
    std::lock_guard lk(st_->mu);
    Clock::duration gap{};
    Clock::time_point prev = st_->start;
    for (auto t : st_->acks) {
      gap = std::max(gap, t - prev);
      prev = t;
    }
    return std::chrono::duration<double, std::milli>(gap).count();
  }
  double seconds() const { return seconds_since(st_->start); }

 private:
  struct State {
    std::mutex mu;
    size_t window = 1, in_flight = 0;
    uint32_t owner = 0;
    uint64_t next = 1, failed = 0;
    bool stopping = false;
    Clock::time_point start;
    std::vector<Clock::time_point> acks;
  };
  static void pump(const std::shared_ptr<State>& st, gcs::GcsClient& c) {
    while (true) {
      uint64_t k;
      {
        std::lock_guard lk(st->mu);
        if (st->stopping || st->in_flight >= st->window) return;
        k = st->next++;
        ++st->in_flight;
      }
      const gcs::ActorRecord rec{"bench", static_cast<int32_t>(k % 64), gcs::ActorState::kAlive, 0,
                                 "", {}};
      c.put<gcs::ActorTable>(prism::ObjectId{st->owner, 0, k}, rec, [st, &c](prism::Status s) {
        {
          std::lock_guard lk(st->mu);
          --st->in_flight;
          if (s) st->acks.push_back(Clock::now());
          else ++st->failed;
        }
        pump(st, c);
      });
    }
  }
  std::shared_ptr<State> st_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism GCS throughput on real ranks"};
  int tasks = 50000;
  double stream_seconds = 2.0;
  size_t window = 256;
  bool failover = false;
  double idle = 0;
  std::string csv;
  app.add_option("--tasks", tasks, "empty tasks per measurement round");
  app.add_option("--seconds", stream_seconds, "length of the write-throughput stream");
  app.add_option("--window", window, "GCS writes in flight in the write stream");
  app.add_flag("--failover", failover,
               "measure the pause when a replica goes silent (with --prism-gcs-fault)");
  app.add_option("--idle", idle,
                 "only sleep this long (GCS ranks log their CPU time with --prism-log-level=info)");
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.allow_extras();  // --prism-* flags are prism::run's
  CLI11_PARSE(app, argc, argv);
  return prism::run(argc, argv, [&] {
    Report report(csv);
    auto& a = agent();
    const gcs::GcsLayout& layout = a.layout();
    const std::string cfg =
        "gcs_" + std::to_string(layout.shards) + "x" + std::to_string(layout.replicas) + "_";
    report.add(cfg + "node_ranks", prism::num_nodes(), "ranks");
    report.add(cfg + "gcs_ranks", static_cast<double>(layout.ranks.size()), "ranks");
    report.add(cfg + "lineage_recorded", a.records_lineage() ? 1 : 0, "bool");

    if (idle > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(idle));
      return;
    }
    if (failover) {
      // Writes stream until the pause has come and gone, or 20 s.
      WriteStream s(32, 901);
      while (s.seconds() < 20) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (s.longest_gap_ms() > 300 && s.seconds() > 8) break;
      }
      s.stop();
      report.add(cfg + "failover_client_pause", s.longest_gap_ms(), "ms");
      report.add(cfg + "failover_writes_failed", static_cast<double>(s.failed()), "writes");
      if (!report.write()) throw std::runtime_error("cannot write " + csv);
      return;
    }

    // 1. Empty async tasks, recorded (unless --prism-gcs-lineage=false).
    auto async_all = [&] {
      std::vector<prism::ObjectRef<int>> refs;
      refs.reserve(static_cast<size_t>(tasks));
      for (int i = 0; i < tasks; ++i) refs.push_back(prism::task(empty).remote());
      for (auto& r : refs) (void)prism::get(r);
    };
    async_all();  // warm up
    (void)a.drain(60'000'000);
    std::vector<double> task_rates, recorded_rates;
    const auto before = a.stats();
    for (int round = 0; round < 3; ++round) {
      auto t0 = Clock::now();
      async_all();
      task_rates.push_back(tasks / seconds_since(t0));
      if (!a.drain(60'000'000)) throw std::runtime_error("GCS drain timed out");
      recorded_rates.push_back(tasks / seconds_since(t0));
    }
    const auto after = a.stats();
    const auto rows = after.ops_written - before.ops_written;
    const auto batches = after.writes_issued - before.writes_issued;
    report.add(cfg + "tasks_async", median(task_rates), "tasks/s");
    if (a.records_lineage()) {
      report.add(cfg + "tasks_async_until_recorded", median(recorded_rates), "tasks/s");
      report.add(cfg + "gcs_row_updates_per_task", static_cast<double>(rows) / (3.0 * tasks),
                 "updates");
      report.add(cfg + "gcs_rows_per_batched_write",
                 static_cast<double>(rows) / static_cast<double>(std::max<uint64_t>(1, batches)),
                 "rows");
    }

    // 2. One write's round trip (window 1), then write throughput.
    {
      WriteStream s(1, 902);
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(1.0, stream_seconds)));
      s.stop();
      report.add(cfg + "gcs_write_roundtrip", s.seconds() * 1e6 / std::max<size_t>(1, s.acked()),
                 "us");
    }
    {
      WriteStream s(window, 903);
      std::this_thread::sleep_for(std::chrono::duration<double>(stream_seconds));
      const double t = s.seconds();
      const size_t n = s.acked();
      s.stop();
      report.add(cfg + "gcs_write_throughput_window" + std::to_string(window), n / t, "writes/s");
    }
    if (!report.write()) throw std::runtime_error("cannot write " + csv);
  });
}
