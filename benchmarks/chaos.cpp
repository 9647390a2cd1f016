// bench_chaos: a long mixed run of tasks, nested tasks, objects and actors
// with faults injected at random, every result checked against a serial
// computation (issue "Fault tolerance", item 6; docs/fault-tolerance.md).
//
// Faults: task exceptions (a task fails its first k runs, k random; it
// retries exceptions), nested tasks that fail the same way, actor methods
// that throw (the caller calls again), actor crashes (prism::kill as a
// crash: the actor restarts from its checkpoint, and at the end each
// actor's checkpointed state must match), and, with --kill-node, one node rank
// killed with SIGKILL a third of the way in (run it under
// `prism-run --survive-node-loss`): its tasks run again, its objects are
// made again from lineage, its actors restart. Prints the faults survived
// per minute; exits non-zero if any result is wrong or missing.
//
//   launch/prism-run --survive-node-loss -n 5 build/benchmarks/bench_chaos --duration-s 60
//   --kill-node
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <prism/prism.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void maybe_fail(int fails, const char* what) {
  if (prism::attempt() < fails)
    throw std::runtime_error(std::string("injected fault in ") + what + ", run " +
                             std::to_string(prism::attempt() + 1));
}

int64_t square(int64_t x, int fails) {
  maybe_fail(fails, "square");
  return x * x;
}
PRISM_REMOTE(square);

// Nested: one child per element (each failing `child_fails` times).
int64_t sum_of_squares(std::vector<int64_t> xs, int fails, int child_fails) {
  maybe_fail(fails, "sum_of_squares");
  std::vector<prism::ObjectRef<int64_t>> kids;
  for (int64_t x : xs)
    kids.push_back(prism::task(square)
                       .options({.max_retries = 5, .retry_exceptions = true})
                       .remote(x, child_fails));
  int64_t s = 0;
  for (auto& k : kids) s += prism::get(k);
  return s;
}
PRISM_REMOTE(sum_of_squares);

// Objects: a block big enough to stay in its maker's store (1 MiB), and a
// task that reads it (made again from lineage if its holder is lost).
std::vector<double> make_block(int64_t seed, int n, int fails) {
  maybe_fail(fails, "make_block");
  std::vector<double> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>((seed + i) % 97);
  return v;
}
PRISM_REMOTE(make_block);

double block_sum(const std::vector<double>& v, int fails) {
  maybe_fail(fails, "block_sum");
  return std::accumulate(v.begin(), v.end(), 0.0);
}
PRISM_REMOTE(block_sum);

// Deletes the spill files under $PRISM_SPILL_DIR (a store losing objects):
// their owners make them again from lineage when they are read.
int delete_spill_files() {
  int n = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(
           std::getenv("PRISM_SPILL_DIR"), std::filesystem::directory_options::none, ec))
    if (f.path().extension() == ".h5" && std::filesystem::remove(f.path(), ec)) ++n;
  return n;
}
PRISM_REMOTE(delete_spill_files);

int die_now() {
  ::kill(::getpid(), SIGKILL);
  return 0;
}
PRISM_REMOTE(die_now);

// A stateless-result actor (restarts give the same answers): scale(x) = k x.
// Keeps the sum of what it scaled in checkpoints: after crashes and
// restarts it must equal the sum of the calls that succeeded.
class Scaler {
 public:
  explicit Scaler(int64_t k) : k_(k) {}
  int64_t scale(int64_t x, bool fail) {
    if (fail) throw std::runtime_error("injected fault in Scaler.scale");
    sum_ += x;
    return k_ * x;
  }
  int64_t sum() const { return sum_; }
  void save_checkpoint(prism::Checkpoint& cp) const { cp.write("sum", sum_); }
  void load_checkpoint(const prism::Checkpoint& cp) { sum_ = cp.read<int64_t>("sum"); }

 private:
  int64_t k_;
  int64_t sum_ = 0;
};
PRISM_ACTOR(Scaler, &Scaler::scale, &Scaler::sum);

struct Tally {
  uint64_t items = 0, checked = 0, wrong = 0, unexpected = 0;
  uint64_t task_faults = 0, actor_faults = 0, actor_crashes = 0, lost_runs = 0, lost_copies = 0;
};

double serial_block_sum(int64_t seed, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += static_cast<double>((seed + i) % 97);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double duration_s = 60, fault_rate = 0.3;
  bool kill_node = false, lose_spills = false;
  std::string csv;
  uint64_t seed = 12345;
  CLI::App app{"bench_chaos: mixed work under injected faults, checked against serial results"};
  app.add_option("--duration-s", duration_s, "how long to run (s)");
  app.add_option("--fault-rate", fault_rate, "probability that an item carries a fault");
  app.add_flag("--kill-node", kill_node, "kill the last node rank a third of the way in");
  app.add_flag("--lose-spills", lose_spills,
               "keep 12 blocks alive per round and delete spilled ones now and then (needs "
               "PRISM_SPILL_DIR, and a small store: PRISM_STORE_CAPACITY=4M)");
  app.add_option("--seed", seed, "random seed");
  app.add_option("--csv", csv, "append metric,value,unit rows to this file");
  app.allow_extras();
  CLI11_PARSE(app, argc, argv);

  if (lose_spills && !std::getenv("PRISM_SPILL_DIR")) {
    std::fprintf(stderr, "chaos: --lose-spills needs PRISM_SPILL_DIR (where the ranks spill)\n");
    return 2;
  }

  return prism::run(argc, argv, [&] {
    const int nodes = prism::num_nodes();
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    auto fails = [&](int max) {  // 0 most of the time, else 1..max
      return u(rng) < fault_rate ? 1 + static_cast<int>(rng() % static_cast<uint64_t>(max)) : 0;
    };
    const prism::TaskOptions retrying{.max_retries = 5, .retry_exceptions = true};
    std::vector<prism::ActorHandle<Scaler>> scalers;
    for (int i = 0; i < 2 * nodes; ++i)
      scalers.push_back(prism::actor<Scaler>(int64_t{i + 2})
                            .options({.placement = prism::Placement::kSpread,
                                      .max_restarts = -1,
                                      .max_task_retries = -1})
                            .remote());
    std::vector<int64_t> scaled_sum(scalers.size(), 0);  // what each one scaled, serially
    Tally t;
    // One item: its value must equal the serial one; an error is a failure.
    const auto check = [&t](const auto& expect, const auto& ref, const std::string& what) {
      ++t.items;
      try {
        if (prism::get(ref) == expect)
          ++t.checked;
        else
          ++t.wrong;
      } catch (const std::exception& e) {
        ++t.unexpected;
        std::fprintf(stderr, "chaos: %s failed: %s\n", what.c_str(), e.what());
      }
    };
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::duration<double>(duration_s);
    bool killed = !kill_node || nodes < 3;
    int64_t round = 0;
    std::printf("chaos: %d node ranks, %.0f s, fault rate %.2f%s\n", nodes, duration_s, fault_rate,
                kill_node ? ", one node rank killed" : "");
    while (Clock::now() < deadline) {
      ++round;
      if (!killed && Clock::now() > t0 + std::chrono::duration<double>(duration_s / 3)) {
        killed = true;  // its result never comes: dropped unread
        (void)prism::task(die_now).options({.node = nodes - 1, .max_retries = 0}).remote();
        ++t.lost_runs;
      }
      struct Square {
        int64_t x;
        prism::ObjectRef<int64_t> ref;
      };
      std::vector<Square> squares;
      std::vector<std::pair<int64_t, prism::ObjectRef<int64_t>>> sums;
      std::vector<std::pair<double, prism::ObjectRef<double>>> blocks;
      for (int i = 0; i < 16; ++i) {
        const int64_t x = round * 100 + i;
        const int f = fails(2);
        t.task_faults += static_cast<uint64_t>(f);
        squares.push_back({x, prism::task(square).options(retrying).remote(x, f)});
      }
      for (int i = 0; i < 2; ++i) {
        std::vector<int64_t> xs{round, round + 1, round + 2, round + 3};
        const int f = fails(2), cf = fails(1);
        t.task_faults += static_cast<uint64_t>(f + 4 * cf);
        int64_t expect = 0;
        for (int64_t x : xs) expect += x * x;
        sums.emplace_back(expect, prism::task(sum_of_squares).options(retrying).remote(xs, f, cf));
      }
      // Blocks (1 MiB objects from lineage-keeping tasks). With --lose-spills
      // more of them live at once, some spill, and the spill files are
      // deleted now and then before the blocks are read.
      std::vector<std::pair<int64_t, prism::ObjectRef<std::vector<double>>>> made;
      const int num_blocks = lose_spills ? 12 : 2;
      for (int i = 0; i < num_blocks; ++i) {
        const int64_t s = round * 7 + i;
        const int fm = fails(1), fs = fails(1);
        t.task_faults += static_cast<uint64_t>(fm);
        made.emplace_back(s, prism::task(make_block)
                                 .options({.placement = prism::Placement::kSpread,
                                           .max_retries = 5,
                                           .retry_exceptions = true})
                                 .remote(s, 1 << 17, fm));
        if (!lose_spills) {
          t.task_faults += static_cast<uint64_t>(fs);
          blocks.emplace_back(
              serial_block_sum(s, 1 << 17),
              prism::task(block_sum).options(retrying).remote(made.back().second, fs));
          made.pop_back();
        }
      }
      if (lose_spills) {
        std::vector<prism::ObjectRef<std::vector<double>>> refs;
        for (const auto& [s, ref] : made) refs.push_back(ref);
        prism::wait(refs, refs.size(), std::chrono::seconds(60));
        if (u(rng) < fault_rate) {  // on a node rank that is alive (not the one killed)
          const int on = static_cast<int>(rng() % static_cast<uint64_t>(std::max(1, nodes - 1)));
          t.lost_copies += static_cast<uint64_t>(
              prism::get(prism::task(delete_spill_files).options({.node = on}).remote()));
        }
        for (const auto& [s, ref] : made) {
          const int fs = fails(1);
          t.task_faults += static_cast<uint64_t>(fs);
          blocks.emplace_back(serial_block_sum(s, 1 << 17),
                              prism::task(block_sum).options(retrying).remote(ref, fs));
        }
      }
      for (const auto& sq : squares)
        check(sq.x * sq.x, sq.ref, "square(" + std::to_string(sq.x) + ")");
      for (const auto& [expect, ref] : sums) check(expect, ref, "sum_of_squares");
      for (const auto& [expect, ref] : blocks) check(expect, ref, "block_sum");
      // Actor calls: a method that throws, or an actor lost with its node
      // rank, fails the call; the caller calls again (at most 5 times).
      // An actor crash now and then (prism::kill as a crash): it restarts
      // from its checkpoint and the call made next goes to the new instance.
      const size_t crash = u(rng) < fault_rate ? rng() % scalers.size() : scalers.size();
      for (size_t a = 0; a < scalers.size(); ++a) {
        const int64_t x = round + static_cast<int64_t>(a);
        bool inject = u(rng) < fault_rate;
        if (a == crash) {
          prism::kill(scalers[a], {.no_restart = false});
          ++t.actor_crashes;
        }
        ++t.items;
        bool done = false;
        for (int tries = 0; tries < 6 && !done; ++tries) {
          try {
            const int64_t got = prism::get(scalers[a].call(&Scaler::scale).remote(x, inject));
            if (got == static_cast<int64_t>(a + 2) * x)
              ++t.checked;
            else
              ++t.wrong;
            scaled_sum[a] += x;
            done = true;
          } catch (const std::exception& e) {
            const std::string what = e.what();
            if (what.find("injected fault") != std::string::npos)
              ++t.actor_faults;
            else if (what.find("was lost with node rank") != std::string::npos)
              ++t.lost_runs;
            else
              std::fprintf(stderr, "chaos: actor call failed: %s\n", what.c_str());
            inject = false;
          }
        }
        if (!done) ++t.unexpected;
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    // Nothing an actor did was lost across its crashes and restarts.
    for (size_t a = 0; a < scalers.size(); ++a) {
      ++t.items;
      try {
        if (prism::get(scalers[a].call(&Scaler::sum).remote()) == scaled_sum[a])
          ++t.checked;
        else
          ++t.wrong;
      } catch (const std::exception& e) {
        ++t.unexpected;
        std::fprintf(stderr, "chaos: Scaler.sum failed: %s\n", e.what());
      }
    }
    const uint64_t faults =
        t.task_faults + t.actor_faults + t.actor_crashes + t.lost_runs + t.lost_copies;
    const double per_min = 60.0 * static_cast<double>(faults) / secs;
    std::printf(
        "chaos: %llu items in %.1f s: %llu checked, %llu wrong, %llu failed\n",
        static_cast<unsigned long long>(t.items), secs, static_cast<unsigned long long>(t.checked),
        static_cast<unsigned long long>(t.wrong), static_cast<unsigned long long>(t.unexpected));
    std::printf(
        "chaos: faults survived: %llu task exceptions, %llu actor method exceptions, %llu actor "
        "crashes, %llu spilled copies lost, %llu lost runs or calls = %.0f faults/min\n",
        static_cast<unsigned long long>(t.task_faults),
        static_cast<unsigned long long>(t.actor_faults),
        static_cast<unsigned long long>(t.actor_crashes),
        static_cast<unsigned long long>(t.lost_copies),
        static_cast<unsigned long long>(t.lost_runs), per_min);
    prism::bench::Report report(csv);
    report.add("chaos_items", static_cast<double>(t.items), "count");
    report.add("chaos_wrong", static_cast<double>(t.wrong), "count");
    report.add("chaos_failed", static_cast<double>(t.unexpected), "count");
    report.add("chaos_faults_per_min", per_min, "1/min");
    if (!report.write()) throw std::runtime_error("chaos: could not write " + csv);
    if (t.wrong || t.unexpected || t.checked != t.items)
      throw std::runtime_error("chaos: results were wrong or missing");
    std::printf("chaos: OK\n");
  });
}
