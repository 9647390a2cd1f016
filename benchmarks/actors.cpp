// Ray's actor microbenchmarks on Prism, each beside an 8-byte MPI ping-pong
// round trip between ranks 0 and 1 measured in the same run:
//
//   1_1_actor_calls_sync        a call to an actor on another node rank, then get
//   1_1_actor_calls_async       calls to an actor on the caller's node, then get all
//                               (beside empty tasks on that node, same run)
//   1_1_actor_calls_concurrent  the same to a threaded actor (max_concurrency 4)
//   1_n_actor_calls_async       one caller, an actor per node rank (calls spread)
//   n_n_actor_calls_async       a caller task per node rank, each with its own actor
//   actor_creation              actors created (spread over the node ranks) and
//                               called once, per second
//   1_1_actor_call_1MiB_arg     a call with a 1 MiB argument to an actor on
//                               another node rank, then get
//
// Rates are medians of 5 rounds after an untimed first one (see rate());
// 1_1_actor_calls_async_first_round is that first round, in a fresh process.
//
//   mpirun -n 3 ./bench_actors [--calls N] [--csv out.csv] [--only NAME]
// With one node rank (mpirun -n 2) only the measurements on the caller's node
// run: that is the layout of "1:1 async" (one node rank with every core).
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

class Sink {
 public:
  int ping() { return 0; }
  int take(std::vector<char> v) { return static_cast<int>(v.size()); }
};
PRISM_ACTOR(Sink, &Sink::ping, &Sink::take);

// One of the n callers of n:n: its own actor, on its own node.
int call_own_actor(int calls) {
  auto a = prism::actor<Sink>().options({.node = prism::node_id()}).remote();
  std::vector<prism::ObjectRef<int>> refs;
  refs.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) refs.push_back(a.call(&Sink::ping).remote());
  for (auto& r : refs) (void)prism::get(r);
  return calls;
}
PRISM_REMOTE(call_own_actor);

// Median over 3 rounds of n / (seconds of one round).
// Calls (or creations) per second of `body`, which makes n of them: a first
// round untimed, then the median of 5 timed rounds, as Ray's microbenchmarks
// warm up before their trials. A fresh process's first round grows the
// runtime's record pools, tables and queues to a round's size, with a page
// fault on every new page (1:1 async calls: ~260k/s against ~1M/s after, on
// this VM), which a long-running program pays once; `first`, if given, gets
// that round's rate, so it is reported too.
double rate(int n, const std::function<void()>& body, double* first = nullptr) {
  std::vector<double> r;
  for (int round = 0; round < 6; ++round) {
    auto t0 = Clock::now();
    body();
    const double per_s = n / seconds_since(t0);
    if (round > 0)
      r.push_back(per_s);
    else if (first)
      *first = per_s;
  }
  return median(r);
}

void call_all(const prism::ActorHandle<Sink>& a, int n) {
  std::vector<prism::ObjectRef<int>> refs;
  refs.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) refs.push_back(a.call(&Sink::ping).remote());
  for (auto& r : refs) (void)prism::get(r);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism actor microbenchmarks"};
  int calls = 100000, creations = 10000, sync_iters = 10000;
  std::string csv, only;
  app.add_option("--calls", calls, "calls per async measurement");
  app.add_option("--creations", creations, "actors per creation measurement");
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.add_option("--only", only, "run one measurement")
      ->check(CLI::IsMember({"sync", "async", "concurrent", "1_n", "n_n", "create", "1MiB"}));
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
  const double mpi_rtt = mpi_pingpong_roundtrip_us(rank, 20000);

  int rc = prism::run(argc, argv, [&] {
    Report report(csv);
    const int nodes = prism::num_nodes();
    auto wanted = [&](const char* name) { return only.empty() || only == name; };
    const bool remote_ok = nodes >= 2;  // else only the measurements on the caller's node
    if (!remote_ok && (wanted("sync") || wanted("1MiB")) && !only.empty())
      throw std::runtime_error("--only " + only + " needs 2 node ranks: mpirun -n 3");
    report.add("node_ranks", nodes, "ranks");
    report.add("mpi_pingpong_roundtrip_8B", mpi_rtt, "us");
    auto local = prism::actor<Sink>().options({.node = 0}).remote();
    auto remote = prism::actor<Sink>().options({.node = remote_ok ? 1 : 0}).remote();
    call_all(local, 1000);  // constructed, warm
    call_all(remote, 1000);

    if (wanted("sync") && remote_ok) {
      std::vector<double> rounds;
      for (int round = 0; round < 5; ++round) {
        auto t0 = Clock::now();
        for (int i = 0; i < sync_iters; ++i) (void)prism::get(remote.call(&Sink::ping).remote());
        rounds.push_back(seconds_since(t0) / sync_iters * 1e6);
      }
      const double us = median(rounds);
      report.add("1_1_actor_calls_sync_remote_roundtrip", us, "us");
      report.add("1_1_actor_calls_sync_remote_over_mpi_ratio", us / mpi_rtt, "x");
      report.add("1_1_actor_calls_sync", 1e6 / us, "calls/s");
    }
    if (wanted("async")) {
      double first = 0;
      const double actor = rate(
          calls, [&] { call_all(local, calls); }, &first);
      report.add("1_1_actor_calls_async", actor, "calls/s");
      report.add("1_1_actor_calls_async_first_round", first, "calls/s");
      // The baseline in the same run: empty tasks on the caller's node.
      const double tasks = rate(calls, [&] {
        std::vector<prism::ObjectRef<int>> refs;
        refs.reserve(static_cast<size_t>(calls));
        auto f = prism::task(empty).options({.node = 0});
        for (int i = 0; i < calls; ++i) refs.push_back(f.remote());
        for (auto& r : refs) (void)prism::get(r);
      });
      report.add("tasks_async_same_node", tasks, "tasks/s");
      report.add("1_1_actor_calls_async_over_tasks_ratio", actor / tasks, "x");
    }
    if (wanted("concurrent")) {
      auto threaded = prism::actor<Sink>().options({.node = 0, .max_concurrency = 4}).remote();
      call_all(threaded, 1000);
      report.add("1_1_actor_calls_concurrent", rate(calls, [&] { call_all(threaded, calls); }),
                 "calls/s");
    }
    if (wanted("1_n")) {
      std::vector<prism::ActorHandle<Sink>> actors;
      for (int n = 0; n < nodes; ++n)
        actors.push_back(prism::actor<Sink>().options({.node = n}).remote());
      for (auto& a : actors) call_all(a, 100);
      report.add("1_n_actor_calls_async",
                 rate(calls,
                      [&] {
                        std::vector<prism::ObjectRef<int>> refs;
                        refs.reserve(static_cast<size_t>(calls));
                        for (int i = 0; i < calls; ++i)
                          refs.push_back(
                              actors[static_cast<size_t>(i % nodes)].call(&Sink::ping).remote());
                        for (auto& r : refs) (void)prism::get(r);
                      }),
                 "calls/s");
    }
    if (wanted("n_n")) {
      const int per = calls / nodes;
      report.add(
          "n_n_actor_calls_async",
          rate(per * nodes,
               [&] {
                 std::vector<prism::ObjectRef<int>> callers;
                 for (int n = 0; n < nodes; ++n)
                   callers.push_back(prism::task(call_own_actor).options({.node = n}).remote(per));
                 for (auto& c : callers) (void)prism::get(c);
               }),
          "calls/s");
    }
    if (wanted("create")) {
      report.add(
          "actor_creation",
          rate(creations,
               [&] {
                 std::vector<prism::ActorHandle<Sink>> made;
                 made.reserve(static_cast<size_t>(creations));
                 for (int i = 0; i < creations; ++i)
                   made.push_back(prism::actor<Sink>().options({.node = i % nodes}).remote());
                 std::vector<prism::ObjectRef<int>> refs;
                 refs.reserve(made.size());
                 for (auto& a : made) refs.push_back(a.call(&Sink::ping).remote());
                 for (auto& r : refs) (void)prism::get(r);
               }),
          "actors/s");
    }
    if (wanted("1MiB") && remote_ok) {
      std::vector<char> mib(1 << 20, 'x');
      std::vector<double> rounds;
      for (int round = 0; round < 5; ++round) {
        auto t0 = Clock::now();
        for (int i = 0; i < 200; ++i) (void)prism::get(remote.call(&Sink::take).remote(mib));
        rounds.push_back(seconds_since(t0) / 200 * 1e6);
      }
      report.add("1_1_actor_call_1MiB_arg_roundtrip", median(rounds), "us");
    }
    if (!report.write()) throw std::runtime_error("cannot write " + csv);
  });
  MPI_Finalize();
  return rc;
}
