// A node rank dies mid-run (tests/mpi/check_node_loss.sh kills it with
// SIGKILL from inside a task): the job must go on without it
// (docs/fault-tolerance.md). Checks, on the driver:
//  * every task that was running or queued there runs again elsewhere and
//    its result arrives exactly once,
//  * a task pinned there without retries fails naming the lost rank,
//  * objects whose only copy was there come back from their lineage (a
//    task's result, and a result made from it there: rebuilt in order), and
//    get returns the same values; an object owned there (made by put in a
//    task there) fails naming the rank, as does an actor that lived there;
//    new work pinned there is refused,
//  * new work still runs on the ranks that are left.
// Prints "node-loss: OK" and how long detection took.
// With --groups, another job: an actor group with a member on every node
// rank, whose victim member kills its rank while the others wait in a
// barrier for it; they must fail naming the rank, a group that needs the
// lost rank's CPUs must fail at once naming it, and a group on the ranks
// left must work. Prints "node-loss groups: OK".
// With --orphans, another job: an actor that a task on the victim made on
// node rank 1, holding all its CPUs, with its handle lent to the driver. It
// dies with its owner (fate sharing): a call through the lent handle fails
// naming the owner's loss, and an actor that needs all of node rank 1's CPUs
// can then be made. Also an object the victim owned, held on node rank 1 and
// read by the driver: it fails naming its owner's loss (node rank 1 drops it,
// check_node_loss.sh looks for its log line). And tasks the victim queued on
// node rank 2: once the loss is known there, no more of them run. The
// orphan is named: its name is free again once it is dead. Prints
// "node-loss orphans: OK".
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <prism/prism.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int slow_echo(int i, int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return i;
}
PRISM_REMOTE(slow_echo);

std::vector<double> block(int n) {
  return std::vector<double>(static_cast<size_t>(n), 1.5);
}
PRISM_REMOTE(block);

std::vector<double> scaled(const std::vector<double>& v, double k) {
  std::vector<double> out(v);
  for (auto& x : out) x *= k;
  return out;
}
PRISM_REMOTE(scaled);

double total(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
PRISM_REMOTE(total);

// An object owned by the rank that runs this (put), handed out by ref.
prism::ObjectRef<std::vector<double>> put_block(int n) {
  return prism::put(std::vector<double>(static_cast<size_t>(n), 2.5));
}
PRISM_REMOTE(put_block);

// Kills this process (no exit handlers, no goodbye: as a crashed node).
int die_after(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  ::kill(::getpid(), SIGKILL);
  return 0;
}
PRISM_REMOTE(die_after);

class Tally {
 public:
  int add(int k) { return n_ += k; }

 private:
  int n_ = 0;
};
PRISM_ACTOR(Tally, &Tally::add);

int poke(prism::ActorHandle<Tally> t, int k) {
  return prism::get(t.call(&Tally::add).remote(k));
}
PRISM_REMOTE(poke);

// A counter with checkpoint hooks: restarted after the loss, it continues
// from its last checkpoint, and a call in flight there goes again.
class Diary {
 public:
  int add(int k, int sleep_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    return n_ += k;
  }
  void save_checkpoint(prism::Checkpoint& cp) const { cp.write("n", n_); }
  void load_checkpoint(const prism::Checkpoint& cp) { n_ = cp.read<int>("n"); }

 private:
  int n_ = 0;
};
PRISM_ACTOR(Diary, &Diary::add);

// Holds a ref it borrowed on another node rank: after the loss it must ask
// the owner again and wait for the object to be made again.
class Keeper {
 public:
  void keep(prism::ObjectRef<std::vector<double>> r) { ref_ = r; }
  double sum() const { return total(prism::get(ref_)); }

 private:
  prism::ObjectRef<std::vector<double>> ref_;
};
PRISM_ACTOR(Keeper, &Keeper::keep, &Keeper::sum);

// A member of an actor group (docs/mpi-interop.md).
class Member {
 public:
  int node() const { return prism::node_id(); }
  int barrier() {
    prism::collective::barrier();
    return 1;
  }
  double sum(double x) {
    prism::collective::allreduce(std::span<double>(&x, 1));
    return x;
  }
  int die_after(int ms) { return ::die_after(ms); }
};
PRISM_ACTOR(Member, &Member::node, &Member::barrier, &Member::sum, &Member::die_after);

// Made by a task on the victim: an actor named "orphan" on node rank 1
// holding `cpus`.
prism::ActorHandle<Tally> make_orphan(double cpus) {
  auto t = prism::actor<Tally>().options({.num_cpus = cpus, .name = "orphan", .node = 1}).remote();
  prism::get(t.call(&Tally::add).remote(1));
  return t;
}
PRISM_REMOTE(make_orphan);

// Run on the victim: a result made on node rank 1 and held there (too big to
// travel inline), owned by the victim.
prism::ObjectRef<std::vector<double>> orphan_block(int n) {
  auto r = prism::task(block).options({.node = 1}).remote(n);
  prism::wait(std::vector{r}, 1);
  return r;
}
PRISM_REMOTE(orphan_block);

// Takes 200 ms, then adds a line to `path` (every rank runs on this host).
int tick_file(std::string path) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::ofstream(path, std::ios::app) << "tick\n";
  return 0;
}
PRISM_REMOTE(tick_file);

// Run on the victim: queues `n` tick_file tasks on node rank 2 and returns.
int spawn_ticks(std::string path, int n) {
  for (int i = 0; i < n; ++i) (void)prism::task(tick_file).options({.node = 2}).remote(path);
  return n;
}
PRISM_REMOTE(spawn_ticks);

size_t lines_in(const std::string& path) {
  std::ifstream in(path);
  return static_cast<size_t>(std::count(std::istreambuf_iterator<char>(in), {}, '\n'));
}

int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "node-loss: FAILED: %s\n", what.c_str());
  }
}

// The error `get(ref)` throws, or "" when it returns.
template <typename T>
std::string error_of(const prism::ObjectRef<T>& ref) {
  try {
    (void)prism::get(ref);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

void groups_through_the_loss() {
  const int nodes = prism::num_nodes();
  const int victim = nodes - 1;
  const std::string rank_name = "node rank " + std::to_string(victim);
  std::vector<prism::ObjectRef<int>> barriers;
  {
    auto g = prism::actor_group<Member>(static_cast<size_t>(nodes))
                 .options({.placement = prism::Placement::kSpread})
                 .remote();
    std::optional<prism::ObjectRef<int>> death;
    for (size_t i = 0; i < g.size(); ++i) {
      if (prism::get(g[i].call(&Member::node).remote()) == victim)
        death = g[i].call(&Member::die_after).remote(300);
      else
        barriers.push_back(g[i].call(&Member::barrier).remote());
    }
    check(death && barriers.size() == static_cast<size_t>(nodes - 1), "one member per node rank");
    for (auto& b : barriers) {
      const std::string err = error_of(b);
      check(err.find(rank_name + " was lost") != std::string::npos,
            "a member waiting for the lost rank's member fails naming it: '" + err + "'");
    }
  }
  std::string too_big;  // a group that needs the lost rank's CPUs fails at once
  try {
    auto g = prism::actor_group<Member>(static_cast<size_t>(nodes)).remote();
  } catch (const prism::InfeasibleError& e) {
    too_big = e.what();
  }
  check(too_big.find("node " + std::to_string(victim) + ": lost") != std::string::npos,
        "a group that needs the lost rank fails naming it: '" + too_big + "'");
  auto g = prism::actor_group<Member>(static_cast<size_t>(nodes - 1))
               .options({.placement = prism::Placement::kSpread})
               .remote();
  for (auto& r : g.call(&Member::sum).remote(1.0)) {
    const std::string err = error_of(r);
    check(err.empty() && prism::get(r) == nodes - 1,
          "a group on the ranks left sums: '" + err + "'");
  }
  if (failures) throw std::runtime_error(std::to_string(failures) + " node-loss checks failed");
  std::printf("node-loss groups: OK\n");
}

void orphans_through_the_loss() {
  const int nodes = prism::num_nodes();
  const int victim = nodes - 1;
  const std::string rank_name = "node rank " + std::to_string(victim);
  const double cpus = prism::nodes()[1].num_cpus;
  // (The object first: the orphan then holds every CPU of node rank 1.)
  constexpr int kN = 1 << 19;  // 4 MiB
  const auto data = prism::get(prism::task(orphan_block).options({.node = victim}).remote(kN));
  check(prism::get(data).size() == kN, "the driver reads the victim's object before the loss");
  auto orphan = prism::get(prism::task(make_orphan).options({.node = victim}).remote(cpus));
  check(prism::get(orphan.call(&Tally::add).remote(1)) == 2, "the orphan answers before the loss");
  const std::string ticks = (std::filesystem::temp_directory_path() /
                             ("prism-orphan-ticks-" + std::to_string(::getpid())))
                                .string();
  std::filesystem::remove(ticks);
  prism::get(prism::task(spawn_ticks).options({.node = victim}).remote(ticks, 40));
  const std::string death =
      error_of(prism::task(die_after).options({.node = victim, .max_retries = 0}).remote(100));
  check(death.find(rank_name) != std::string::npos, "the victim is lost: '" + death + "'");
  // (Node rank 2 hears of the loss a moment after the driver does.)
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const size_t ticked = lines_in(ticks);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const size_t ticked_later = lines_in(ticks);
  std::filesystem::remove(ticks);
  check(ticked_later - ticked <= static_cast<size_t>(prism::nodes()[2].num_cpus),
        "the victim's tasks queued on node rank 2 stop once the loss is known there: " +
            std::to_string(ticked) + " ran by then, " + std::to_string(ticked_later) +
            " 1.5 s later");
  // Its CPUs come back: an actor that needs all of them is made and answers.
  auto heir = prism::actor<Tally>().options({.num_cpus = cpus, .node = 1}).remote();
  const auto answer = heir.call(&Tally::add).remote(7);
  const auto [done, rest] = prism::wait(std::vector{answer}, 1, std::chrono::seconds(20));
  check(done.size() == 1 && error_of(answer).empty() && prism::get(answer) == 7,
        "an actor that needs the orphan's CPUs is made within 20 s");
  const std::string err = error_of(orphan.call(&Tally::add).remote(1));
  check(err.find("owner was lost with " + rank_name) != std::string::npos,
        "a call to the orphan fails naming its owner's loss: '" + err + "'");
  // The driver now knows the instance is gone and would ask its owner where
  // it lives: a lost owner cannot answer, so the next call fails too (it
  // waited forever before).
  const auto next = orphan.call(&Tally::add).remote(1);
  const auto [next_done, next_rest] = prism::wait(std::vector{next}, 1, std::chrono::seconds(20));
  const std::string next_err = next_done.empty() ? "no answer in 20 s" : error_of(next);
  check(next_err.find("is gone: its owner was lost with " + rank_name) != std::string::npos,
        "the next call fails at once naming its owner's loss: '" + next_err + "'");
  const std::string data_err = error_of(data);
  check(data_err.find("its owner was lost with " + rank_name) != std::string::npos,
        "the victim's object fails naming its owner's loss: '" + data_err + "'");
  // Its name is free again (node rank 1 recorded the death in the GCS, as
  // its lost owner would have): an actor may take it.
  std::string taken = "not tried";
  for (int i = 0; i < 50 && !taken.empty(); ++i) {
    try {
      (void)prism::actor<Tally>().options({.name = "orphan"}).remote();
      taken.clear();
    } catch (const prism::Error& e) {
      taken = e.what();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  check(taken.empty(), "the orphan's name is free again within 5 s: '" + taken + "'");
  if (failures) throw std::runtime_error(std::to_string(failures) + " node-loss checks failed");
  std::printf("node-loss orphans: OK (%s; then %s)\n", err.c_str(), next_err.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  bool fail_after_loss = false;  // check that the launcher returns the driver's exit code
  bool groups = false, orphans = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--fail-after-loss") fail_after_loss = true;
    if (std::string(argv[i]) == "--groups") groups = true;
    if (std::string(argv[i]) == "--orphans") orphans = true;
  }
  if (groups) return prism::run(argc, argv, groups_through_the_loss);
  if (orphans) return prism::run(argc, argv, orphans_through_the_loss);
  return prism::run(argc, argv, [fail_after_loss] {
    const int nodes = prism::num_nodes();
    if (nodes < 3) throw std::runtime_error("node_loss_driver needs at least 3 node ranks");
    const int victim = nodes - 1;
    const std::string rank_name = "node rank " + std::to_string(victim);

    // Before: an object held only by the victim, an actor living there.
    constexpr int kN = 1 << 20;  // 8 MiB: held by the rank that made it
    auto held = prism::task(block).options({.node = victim}).remote(kN);
    auto held2 = prism::task(scaled).options({.node = victim}).remote(held, 2.0);
    auto owned_there = prism::get(prism::task(put_block).options({.node = victim}).remote(kN));
    prism::wait(std::vector{held, held2}, 2, std::chrono::seconds(30));
    auto keeper = prism::actor<Keeper>().options({.node = 1}).remote();
    prism::get(keeper.call(&Keeper::keep).remote(held));
    check(prism::get(keeper.call(&Keeper::sum).remote()) == 1.5 * kN, "a borrower reads it before");
    auto tally = prism::actor<Tally>().options({.node = victim}).remote();
    check(prism::get(tally.call(&Tally::add).remote(1)) == 1, "the actor answers before");
    auto phoenix = prism::actor<Tally>().options({.node = victim, .max_restarts = 1}).remote();
    check(prism::get(phoenix.call(&Tally::add).remote(5)) == 5, "the restartable actor answers");
    auto diary = prism::actor<Diary>()
                     .options({.node = victim, .max_restarts = 1, .max_task_retries = 1})
                     .remote();
    check(prism::get(diary.call(&Diary::add).remote(5, 0)) == 5, "the checkpointed actor answers");

    // Work spread over every node rank (some of it runs or waits on the
    // victim when it dies), then the victim dies.
    std::vector<prism::ObjectRef<int>> work;
    for (int i = 0; i < 8 * nodes; ++i)
      work.push_back(
          prism::task(slow_echo).options({.placement = prism::Placement::kSpread}).remote(i, 150));
    auto death = prism::task(die_after).options({.node = victim, .max_retries = 0}).remote(100);
    auto in_flight = diary.call(&Diary::add).remote(10, 400);  // running when the rank dies
    const auto t_kill = Clock::now() + std::chrono::milliseconds(100);

    for (int i = 0; i < static_cast<int>(work.size()); ++i) {
      const std::string err = error_of(work[static_cast<size_t>(i)]);
      check(err.empty(), "task " + std::to_string(i) + " failed: " + err);
      if (err.empty())
        check(prism::get(work[static_cast<size_t>(i)]) == i,
              "task " + std::to_string(i) + " value");
    }
    const std::string death_err = error_of(death);
    const double detect_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t_kill).count();
    check(death_err.find(rank_name) != std::string::npos,
          "the pinned task's error names the lost rank: '" + death_err + "'");
    check(death_err.find("no retries left") != std::string::npos,
          "the pinned task's error says it had no retries: '" + death_err + "'");

    // Made again: a task's result, one made from it there, and a task that
    // needs the second.
    const std::string held_err = error_of(held);
    check(held_err.empty(), "the object held there is made again: '" + held_err + "'");
    if (held_err.empty()) {
      const auto v = prism::get(held);
      check(v.size() == kN && v.front() == 1.5 && v.back() == 1.5, "its value");
    }
    const std::string sum_err = error_of(prism::task(total).options({.node = 1}).remote(held2));
    check(sum_err.empty(), "a task using a rebuilt object runs: '" + sum_err + "'");
    if (sum_err.empty())
      check(prism::get(prism::task(total).options({.node = 1}).remote(held2)) == 3.0 * kN,
            "the rebuilt object's value");
    const auto borrowed = keeper.call(&Keeper::sum).remote();
    const std::string borrowed_err = error_of(borrowed);
    check(borrowed_err.empty() && prism::get(borrowed) == 1.5 * kN,
          "a borrower on another rank reads it again: '" + borrowed_err + "'");
    const std::string owned_err = error_of(owned_there);
    check(owned_err.find(rank_name) != std::string::npos &&
              owned_err.find("owner") != std::string::npos,
          "an object owned there fails naming the rank and its owner: '" + owned_err + "'");
    const std::string actor_err = error_of(tally.call(&Tally::add).remote(1));
    check(actor_err.find(rank_name) != std::string::npos,
          "a call to the actor there fails naming the rank: '" + actor_err + "'");
    // An actor with restarts is created again elsewhere, from its
    // constructor: its state starts over; callers on any rank reach it.
    const auto again = phoenix.call(&Tally::add).remote(1);
    const std::string again_err = error_of(again);
    check(again_err.empty() && prism::get(again) == 1,
          "the restarted actor answers from a fresh state: '" + again_err + "'");
    // One with checkpoints continues from its last one; the call that was
    // running when its rank died ran again there.
    const std::string diary_err = error_of(in_flight);
    check(diary_err.empty() && prism::get(in_flight) == 15,
          "the call in flight goes again to the restarted actor: '" + diary_err + "'");
    const auto diary_next = diary.call(&Diary::add).remote(1, 0);
    check(error_of(diary_next).empty() && prism::get(diary_next) == 16,
          "the restarted actor continues from its checkpoint");
    const auto via = prism::task(poke).options({.node = 1}).remote(phoenix, 2);
    const std::string via_err = error_of(via);
    check(via_err.empty() && prism::get(via) == 3,
          "another rank reaches the restarted actor: '" + via_err + "'");

    std::string pinned_err;  // refused when submitted, or by get
    try {
      pinned_err = error_of(prism::task(slow_echo).options({.node = victim}).remote(1, 0));
    } catch (const std::exception& e) {
      pinned_err = e.what();
    }
    check(pinned_err.find(rank_name) != std::string::npos,
          "new work pinned there is refused naming the rank: '" + pinned_err + "'");

    // After: the ranks left take new work, including new actors.
    std::vector<prism::ObjectRef<int>> more;
    for (int i = 0; i < 4 * nodes; ++i)
      more.push_back(
          prism::task(slow_echo).options({.placement = prism::Placement::kSpread}).remote(i, 5));
    for (int i = 0; i < static_cast<int>(more.size()); ++i)
      check(error_of(more[static_cast<size_t>(i)]).empty() &&
                prism::get(more[static_cast<size_t>(i)]) == i,
            "new task " + std::to_string(i));
    auto fresh = prism::actor<Tally>().remote();
    check(prism::get(fresh.call(&Tally::add).remote(2)) == 2, "a new actor answers");

    std::printf(
        "node-loss: %zu tasks through the loss of %s, detected and recovered %.0f ms "
        "after the kill\n",
        work.size(), rank_name.c_str(), detect_ms);
    if (fail_after_loss) throw std::runtime_error("failing after the loss, as asked");
    if (failures) throw std::runtime_error(std::to_string(failures) + " node-loss checks failed");
    std::printf("node-loss: OK\n");
  });
}
