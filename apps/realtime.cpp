// 02 — realtime: the soft-realtime control loop of the Ray paper (Table 3).
//
// A simulated robot (the cart-pole of apps/control/cartpole.hpp, kept
// balanced) runs a control loop with a fixed period, the time budget. At
// every tick the driver sends the robot's state to a task, `plan`, on another
// node, and waits for the action until the tick's deadline (prism::wait with
// a timeout). An action that misses its deadline is dropped: the robot keeps
// applying the previous one, and the late result is ignored.
//
// The table gives the share of actions dropped at budgets from 30 ms down to
// 0.1 ms. The Ray paper's Ray dropped 40% of the actions at 2 ms and 65% at
// 1 ms (its task latency is about a millisecond); Prism's round trip to
// another node is a few microseconds, so a budget of 1 ms, and even 0.1 ms,
// leaves room for the plan itself.
//
//   mpirun -n 3 ./prism-realtime                   (1 GCS rank + 2 node ranks)
//   mpirun -n 3 ./prism-realtime --seconds 0.2     (a shorter run per budget)
#include <prism/prism.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/sysinfo.h>

#include "control/cartpole.hpp"

namespace {

// Linear state feedback (LQR-like gains for this cart-pole): the plan's
// terminal controller, and what it refines.
double feedback(const control::Observation& o) {
  return (1.0 * o[0] + 1.6 * o[1] + 18.9 * o[2] + 3.0 * o[3]) / 10.0;
}

}  // namespace

// The controller: model-predictive control. Each candidate push is applied
// for one step, then the feedback law for `horizon` steps, on a copy of the
// model; the push whose predicted trajectory stays closest to upright and
// centred wins. A few microseconds of work: what is measured below is mostly
// the system's latency, as in the paper.
double plan(control::CartPole robot, int horizon) {
  const double base = feedback(robot.observe());
  double best = base, best_cost = 1e300;
  for (double delta : {-0.1, -0.05, 0.0, 0.05, 0.1}) {
    control::CartPole sim = robot;
    double push = std::clamp(base + delta, -1.0, 1.0), cost = 0;
    for (int h = 0; h <= horizon; ++h) {
      sim.step(push);
      const auto o = sim.observe();
      cost += o[2] * o[2] + o[0] * o[0] + 0.1 * (o[1] * o[1] + o[3] * o[3]);
      if (sim.failed()) {
        cost += 100.0 * (horizon - h + 1);
        break;
      }
      push = feedback(o);
    }
    if (cost < best_cost) best_cost = cost, best = std::clamp(base + delta, -1.0, 1.0);
  }
  return best;
}
PRISM_REMOTE(plan);

namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  double budget_ms = 0;
  long actions = 0, dropped = 0, falls = 0;
  double median_us = 0, p99_us = 0;
  double percent_dropped() const {
    return 100.0 * static_cast<double>(dropped) / static_cast<double>(std::max(1L, actions));
  }
};

// Waits until `t`: sleeps while far from it, then spins, because a sleeping
// thread wakes tens of microseconds late (milliseconds on a loaded host) —
// more than the smallest budgets. A controller thread would spin or run at
// real-time priority in the same way.
void wait_until(Clock::time_point t) {
  constexpr auto kSpin = std::chrono::microseconds(2000);
  if (t - Clock::now() > kSpin) std::this_thread::sleep_until(t - kSpin);
  while (Clock::now() < t) {
  }
}

// The controller through Prism: each action is a task on `node`.
class PrismController {
 public:
  PrismController(int node, int horizon) : node_(node), horizon_(horizon) {}
  void ask(const control::CartPole& robot) {
    action_ = {prism::task(plan).options({.node = node_}).remote(robot, horizon_)};
  }
  // The action, if it arrives by `deadline`; a late one is ignored.
  std::optional<double> answer(Clock::time_point deadline) {
    // (A negative timeout would mean "forever": a tick that starts late gets 0.)
    const auto left = std::max(Clock::duration::zero(), deadline - Clock::now());
    auto [ready, late] = prism::wait(action_, 1, left);
    if (ready.empty()) return std::nullopt;
    return prism::get(ready[0]);
  }

 private:
  int node_, horizon_;
  std::vector<prism::ObjectRef<double>> action_;
};

// The floor any runtime has on this host: the same loop and plan with no
// runtime at all, the plan computed by a thread of this process that spins
// for requests in shared memory, on the host's other cores (where Prism's
// node 1 runs it; mpirun binds this rank to one core). While it runs, Prism's
// threads sleep. What it drops is the host's own: time slices the OS gives
// other threads, a VM's stalls.
class BareController {
 public:
  explicit BareController(int horizon) : horizon_(horizon) {
    CPU_ZERO(&caller_cores_);
    sched_getaffinity(0, sizeof caller_cores_, &caller_cores_);
    server_ = std::thread([this] { serve(); });
  }
  ~BareController() {
    stop_.store(true, std::memory_order_release);
    server_.join();
  }
  void ask(const control::CartPole& robot) {
    robot_ = robot;  // the server reads it only after the release below
    asked_.fetch_add(1, std::memory_order_release);
  }
  std::optional<double> answer(Clock::time_point deadline) {
    const uint64_t want = asked_.load(std::memory_order_relaxed);
    while (answered_.load(std::memory_order_acquire) != want)
      if (Clock::now() >= deadline) {
        // Late: wait for it anyway (unlike a task, it writes to our state),
        // then drop it, as the Prism loop does.
        while (answered_.load(std::memory_order_acquire) != want) {
        }
        return std::nullopt;
      }
    return action_;
  }

 private:
  // Every online CPU but the caller's, if there are others.
  static void leave_callers_cores(const cpu_set_t& caller) {
    cpu_set_t others;
    CPU_ZERO(&others);
    for (int c = 0; c < get_nprocs() && c < CPU_SETSIZE; ++c)
      if (!CPU_ISSET(c, &caller)) CPU_SET(c, &others);
    if (CPU_COUNT(&others) > 0) sched_setaffinity(0, sizeof others, &others);
  }
  void serve() {
    leave_callers_cores(caller_cores_);
    uint64_t done = 0;
    while (!stop_.load(std::memory_order_acquire)) {
      const uint64_t asked = asked_.load(std::memory_order_acquire);
      if (asked == done) continue;
      action_ = plan(robot_, horizon_);
      done = asked;
      answered_.store(done, std::memory_order_release);
    }
  }
  int horizon_;
  control::CartPole robot_{1 << 30};
  double action_ = 0;
  alignas(64) std::atomic<uint64_t> asked_{0};
  alignas(64) std::atomic<uint64_t> answered_{0};
  std::atomic<bool> stop_{false};
  cpu_set_t caller_cores_;
  std::thread server_;
};

template <class Controller>
Row control_loop(Controller& controller, double budget_ms, long ticks, uint64_t seed) {
  const auto budget = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(budget_ms));
  control::CartPole robot(1 << 30);
  robot.reset(seed);
  double push = 0;  // the action being applied: the last one that arrived in time
  Row row{.budget_ms = budget_ms, .actions = ticks};
  std::vector<double> latency_us;
  auto tick = Clock::now();
  for (long i = 0; i < ticks; ++i, tick += budget) {
    wait_until(tick);
    const auto sent = Clock::now();
    controller.ask(robot);
    if (const auto action = controller.answer(tick + budget)) {
      push = *action;
      latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
    } else {
      ++row.dropped;  // the deadline passed: keep pushing as before
    }
    if (!robot.step(push)) ++row.falls, robot.reset(seed + static_cast<uint64_t>(i));
  }
  if (!latency_us.empty()) {
    std::sort(latency_us.begin(), latency_us.end());
    row.median_us = latency_us[latency_us.size() / 2];
    row.p99_us = latency_us[std::min(latency_us.size() - 1, latency_us.size() * 99 / 100)];
  }
  return row;
}

struct Options {
  std::vector<double> budgets_ms{30, 20, 10, 5, 3, 2, 1, 0.5, 0.2, 0.1};
  double seconds = 1.0;  // per budget, within [min_ticks, max_ticks]
  long min_ticks = 100, max_ticks = 10000;
  int horizon = 30;
  uint64_t seed = 1;
  bool floor = true;  // also run each budget's loop without the runtime (BareController)
};

void drive(const Options& o) {
  // The controller runs on another node when there is one: the round trip
  // then crosses processes, as a robot's controller would.
  const int node = prism::num_nodes() > 1 ? 1 : 0;
  control::CartPole robot(1 << 30);
  robot.reset(o.seed);
  for (int i = 0; i < 200; ++i)  // warm-up: connections, caches, the node's threads
    prism::get(prism::task(plan).options({.node = node}).remote(robot, o.horizon));

  std::printf("controller on node %d; %d-step model-predictive plan per action\n", node, o.horizon);
  if (o.floor)
    std::printf(
        "bare: the same loop, its plan on a spinning thread with no runtime (the host's "
        "floor), run just before\n");
  std::printf("%10s %8s %8s %10s %12s %12s %6s %8s\n", "budget ms", "actions", "dropped",
              "% dropped", "median us", "p99 us", "falls", "bare %");
  std::vector<Row> rows;
  long bare_dropped = 0, bare_actions = 0, dropped = 0, actions = 0;
  for (double b : o.budgets_ms) {
    const long ticks = std::clamp(static_cast<long>(o.seconds * 1e3 / b), o.min_ticks, o.max_ticks);
    char bare_column[16] = "       -";  // with --no-floor: no figure, rather than a made-up one
    if (o.floor) {
      BareController bare(o.horizon);
      const Row f = control_loop(bare, b, ticks, o.seed);
      std::snprintf(bare_column, sizeof bare_column, "%7.2f%%", f.percent_dropped());
      bare_dropped += f.dropped, bare_actions += f.actions;
    }
    PrismController controller(node, o.horizon);
    const Row r = control_loop(controller, b, ticks, o.seed);
    dropped += r.dropped, actions += r.actions;
    std::printf("%10g %8ld %8ld %9.2f%% %12.1f %12.1f %6ld %s\n", r.budget_ms, r.actions, r.dropped,
                r.percent_dropped(), r.median_us, r.p99_us, r.falls, bare_column);
    std::fflush(stdout);
    rows.push_back(r);
  }
  std::printf("Ray (the paper's Table 3): 40%% dropped at 2 ms, 65%% at 1 ms\n");
  if (o.floor)
    std::printf("all budgets: Prism dropped %ld of %ld actions, the bare loop %ld of %ld\n",
                dropped, actions, bare_dropped, bare_actions);
  long dropped_1ms = 0, actions_1ms = 0;
  for (const auto& r : rows)
    if (r.budget_ms >= 1) dropped_1ms += r.dropped, actions_1ms += r.actions;
  std::printf("prism-realtime: OK (%zu budgets; %ld of %ld actions dropped at budgets >= 1 ms)\n",
              rows.size(), dropped_1ms, actions_1ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Soft-realtime control: actions computed by Prism tasks within a time budget"};
  Options o;
  app.add_option("--budgets", o.budgets_ms, "time budgets (control periods), ms");
  app.add_option("--seconds", o.seconds, "duration of the loop at each budget");
  app.add_option("--min-ticks", o.min_ticks, "fewest actions per budget");
  app.add_option("--max-ticks", o.max_ticks, "most actions per budget");
  app.add_option("--horizon", o.horizon, "steps the plan looks ahead");
  app.add_option("--seed", o.seed, "initial state of the robot");
  app.add_flag("--floor,!--no-floor", o.floor,
               "also run each budget's loop with no runtime, as the host's floor (default on)");
  app.allow_extras();  // --prism-* flags are the runtime's
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return prism::run(argc, argv, [&] { drive(o); });
}
