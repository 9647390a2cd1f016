// Actor groups, collectives and MPI tasks across real ranks
// (docs/mpi-interop.md). ctest runs this with 4 node ranks of 2 CPUs each
// (PRISM_NUM_CPUS=2) and one GCS rank: the job holds 8 one-CPU members.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cmath>
#include <numeric>
#include <prism/mpi.hpp>
#include <prism/prism.hpp>
#include <set>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

class Worker {
 public:
  explicit Worker(int base) : base_(base), rank_(prism::collective::rank()) {}
  int node() const { return prism::node_id(); }
  int rank() const { return rank_; }
  // Every collective, on values that depend on the member: the caller checks.
  std::vector<double> all_collectives(int n) {
    const int r = prism::collective::rank();
    const int size = prism::collective::size();
    std::vector<double> out;
    std::vector<double> v(static_cast<size_t>(n), r + base_);
    prism::collective::allreduce(std::span<double>(v));
    out.push_back(v[0]);
    out.push_back(v[static_cast<size_t>(n - 1)]);
    std::vector<int64_t> m{r, -r};
    prism::collective::allreduce(std::span<int64_t>(m), prism::collective::Op::kMax);
    out.push_back(static_cast<double>(m[0]));
    out.push_back(static_cast<double>(m[1]));
    std::vector<float> b(3, static_cast<float>(r));
    prism::collective::broadcast(std::span<float>(b), size - 1);
    out.push_back(b[2]);
    const int32_t mine[2] = {r, 100 + r};
    std::vector<int32_t> all(static_cast<size_t>(2 * size));
    prism::collective::allgather(std::span<const int32_t>(mine, 2), std::span<int32_t>(all));
    for (int32_t x : all) out.push_back(x);
    std::vector<double> blocks(static_cast<size_t>(2 * size));
    for (size_t k = 0; k < blocks.size(); ++k) blocks[k] = static_cast<double>(k) + r;
    std::vector<double> block(2);
    prism::collective::reduce_scatter(std::span<const double>(blocks), std::span<double>(block));
    out.push_back(block[0]);
    out.push_back(block[1]);
    prism::collective::barrier();
    return out;
  }
  double sum(double x) {
    prism::collective::allreduce(std::span<double>(&x, 1));
    return x;
  }
  double sum_or_fail(double x, int failing) {
    if (prism::collective::rank() == failing) throw std::runtime_error("deliberate failure");
    prism::collective::allreduce(std::span<double>(&x, 1));
    return x;
  }
  int barrier() {
    prism::collective::barrier();
    return 1;
  }
  int mismatched() {
    std::vector<float> v(prism::collective::rank() == 0 ? 10 : 12, 1.0f);
    prism::collective::allreduce(std::span<float>(v));
    return 0;
  }
  // Member 0 allreduces, the others broadcast: the same type, count and op,
  // two kinds of collective.
  int mismatched_kinds() {
    std::vector<double> v(10, 1.0);
    if (prism::collective::rank() == 0)
      prism::collective::allreduce(std::span<double>(v));
    else
      prism::collective::broadcast(std::span<double>(v), 0);
    return 0;
  }
  // Members on `first_node` allreduce 10 values, the others 12: the node
  // ranks' meet fails. Returns what the caller's buffer holds after the error.
  std::vector<float> mismatched_keeping(int first_node) {
    std::vector<float> v(prism::node_id() == first_node ? 10 : 12,
                         static_cast<float>(prism::collective::rank() + 1));
    try {
      prism::collective::allreduce(std::span<float>(v));
    } catch (const prism::Error& e) {
      if (std::string(e.what()).find("mismatched collectives") != std::string::npos) return v;
      throw;
    }
    return {};
  }
  // MPI itself on the group's communicator.
  std::vector<int> mpi_sum() {
    MPI_Comm comm = prism::mpi::communicator();
    int rank = -1, size = -1, x = prism::collective::rank() + 1, total = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    MPI_Allreduce(&x, &total, 1, MPI_INT, MPI_SUM, comm);
    return {rank, size, total};
  }

 private:
  int base_;
  int rank_;
};
PRISM_ACTOR(Worker, &Worker::node, &Worker::rank, &Worker::all_collectives, &Worker::sum,
            &Worker::sum_or_fail, &Worker::barrier, &Worker::mismatched, &Worker::mismatched_kinds,
            &Worker::mismatched_keeping, &Worker::mpi_sum);

template <class C>
std::vector<int> nodes_of(const prism::ActorGroup<C>& g) {
  std::vector<int> out;
  for (auto& r : g.call(&C::node).remote()) out.push_back(prism::get(r));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Groups, APackedGroupFillsTheFewestNodeRanks) {
  ASSERT_EQ(prism::num_nodes(), 4) << "run with 4 node ranks of 2 CPUs (ctest mpi_groups)";
  auto g = prism::actor_group<Worker>(4, 0).remote();
  EXPECT_EQ(nodes_of(g), (std::vector<int>{0, 0, 1, 1}));
  std::vector<int> ranks;
  for (auto& r : g.call(&Worker::rank).remote()) ranks.push_back(prism::get(r));
  EXPECT_EQ(ranks, (std::vector<int>{0, 1, 2, 3}));  // the constructor saw its rank
}

TEST(Groups, ASpreadGroupUsesEveryNodeRank) {
  auto g =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kSpread}).remote();
  const auto nodes = nodes_of(g);
  EXPECT_EQ(std::set<int>(nodes.begin(), nodes.end()).size(), 4u);
}

// Checks what Worker::all_collectives returns for member r of n.
void expect_all_collectives(const std::vector<double>& out, int r, int size, int base, int n) {
  double sum = 0;
  for (int k = 0; k < size; ++k) sum += k + base;
  size_t i = 0;
  EXPECT_EQ(out[i++], sum) << "allreduce, member " << r;
  EXPECT_EQ(out[i++], sum);
  (void)n;
  EXPECT_EQ(out[i++], size - 1) << "allreduce max";
  EXPECT_EQ(out[i++], 0) << "allreduce max of -rank";
  EXPECT_EQ(out[i++], size - 1) << "broadcast from the last member";
  for (int k = 0; k < size; ++k) {
    EXPECT_EQ(out[i++], k) << "allgather";
    EXPECT_EQ(out[i++], 100 + k);
  }
  // Block r (elements 2r, 2r+1) summed over members m: (2r + m), (2r + 1 + m).
  const double members = size * (size - 1) / 2.0;
  EXPECT_EQ(out[i++], 2.0 * r * size + members) << "reduce_scatter";
  EXPECT_EQ(out[i++], (2.0 * r + 1) * size + members);
}

TEST(Groups, EveryCollectiveAcrossNodeRanksAndWithinThem) {
  for (auto placement : {prism::Placement::kSpread, prism::Placement::kPack}) {
    const int n = 6;  // spread: 2+2+1+1, pack: 2+2+2 (members share node ranks)
    auto g = prism::actor_group<Worker>(n, 5).options({.placement = placement}).remote();
    // 8,000 and 800 bytes: node ranks of one host add up the first through
    // MPI, the second in their shared memory (SharedMeet::kSmallBytes).
    for (int count : {1000, 100}) {
      auto refs = g.call(&Worker::all_collectives).remote(count);
      for (int r = 0; r < n; ++r) expect_all_collectives(prism::get(refs[r]), r, n, 5, count);
    }
  }
}

TEST(Groups, LargeBuffersGoThroughInPieces) {
  auto g =
      prism::actor_group<Worker>(3, 1).options({.placement = prism::Placement::kSpread}).remote();
  auto refs = g.call(&Worker::all_collectives).remote(1 << 20);  // 8 MiB per member
  for (int r = 0; r < 3; ++r) expect_all_collectives(prism::get(refs[r]), r, 3, 1, 1 << 20);
}

TEST(Groups, AGroupTheJobCanNeverHoldFailsAtOnceNamingTheShortfall) {
  const std::string many = error_of([] { prism::actor_group<Worker>(9, 0).remote(); });
  EXPECT_NE(many.find("actor group of 9 Worker needs 9 members of {1 CPU}"), std::string::npos)
      << many;
  EXPECT_NE(many.find("can hold 8 (node 0: 2, node 1: 2, node 2: 2, node 3: 2): 1 short"),
            std::string::npos)
      << many;
  const std::string big =
      error_of([] { prism::actor_group<Worker>(2, 0).options({.num_cpus = 3}).remote(); });
  EXPECT_NE(big.find("{3 CPUs}"), std::string::npos) << big;
  EXPECT_NE(big.find("can hold 0"), std::string::npos) << big;
  EXPECT_THROW(prism::actor_group<Worker>(2, 0).options({.num_gpus = 1}).remote(),
               prism::InfeasibleError);
  EXPECT_NE(error_of([] {
              prism::actor_group<Worker>(2, 0).options({.name = "x"}).remote();
            }).find("cannot be named"),
            std::string::npos);
}

TEST(Groups, AGroupThatCannotFitNowWaitsAndAGroupIsReleasedWithItsHandles) {
  auto whole = std::make_unique<prism::ActorGroup<Worker>>(
      prism::actor_group<Worker>(8, 0).remote());  // every CPU of the job
  EXPECT_EQ(prism::get((*whole)[7].call(&Worker::node).remote()), 3);
  std::atomic<bool> created{false}, released{false};
  std::atomic<bool> created_after_release{false};
  std::thread t([&] {
    auto g = prism::actor_group<Worker>(2, 0).remote();  // waits for room
    created_after_release = released.load();
    created = true;
    for (auto& r : g.call(&Worker::sum).remote(1.0)) EXPECT_EQ(prism::get(r), 2.0);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(created.load()) << "a group was created while every CPU was held";
  released = true;
  whole.reset();  // the last handles: the members go and give their CPUs back
  t.join();
  EXPECT_TRUE(created_after_release.load());
}

TEST(Groups, TwoGroupsAliveAtOnceKeepTheirCollectivesApart) {
  auto a =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kSpread}).remote();
  auto b =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kSpread}).remote();
  std::vector<prism::ObjectRef<double>> ra, rb;
  for (int round = 0; round < 5; ++round) {
    for (auto& r : a.call(&Worker::sum).remote(1.0)) ra.push_back(r);
    for (auto& r : b.call(&Worker::sum).remote(10.0)) rb.push_back(r);
  }
  for (auto& r : ra) EXPECT_EQ(prism::get(r), 4.0);
  for (auto& r : rb) EXPECT_EQ(prism::get(r), 40.0);
}

double call_in_reverse(prism::ActorGroup<Worker> g) {
  std::vector<prism::ObjectRef<double>> refs;
  for (size_t i = g.size(); i-- > 0;) refs.push_back(g[i].call(&Worker::sum).remote(1.0));
  double total = 0;
  for (auto& r : refs) total += prism::get(r);
  return total;
}
PRISM_REMOTE(call_in_reverse);

TEST(Groups, CallersThatReachTheMembersInDifferentOrdersDoNotDeadlock) {
  // The driver calls members 0..3 and a task on another node 3..0, at once:
  // each member takes the calls in its own order; the k-th collective of
  // one member meets the k-th of the others, so all complete.
  auto g =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kSpread}).remote();
  for (int round = 0; round < 3; ++round) {
    auto other = prism::task(call_in_reverse).options({.node = 3}).remote(g);
    std::vector<prism::ObjectRef<double>> mine;
    for (size_t i = 0; i < g.size(); ++i) mine.push_back(g[i].call(&Worker::sum).remote(1.0));
    for (auto& r : mine) EXPECT_EQ(prism::get(r), 4.0);
    EXPECT_EQ(prism::get(other), 16.0);
  }
}

TEST(Groups, AFailingMemberFailsTheOthersCollectivesInsteadOfHanging) {
  for (auto placement : {prism::Placement::kSpread, prism::Placement::kPack}) {
    auto g = prism::actor_group<Worker>(4, 0).options({.placement = placement}).remote();
    auto refs = g.call(&Worker::sum_or_fail).remote(1.0, 2);
    for (int r = 0; r < 4; ++r) {
      const std::string e = error_of([&] { prism::get(refs[r]); });
      EXPECT_NE(e.find("deliberate failure"), std::string::npos) << "member " << r << ": " << e;
      if (r != 2) {
        EXPECT_NE(e.find("member 2 (Worker.sum_or_fail) failed"), std::string::npos) << e;
      }
    }
    // The group stays broken: later collectives fail at once.
    const std::string later = error_of([&] { prism::get(g[0].call(&Worker::sum).remote(1.0)); });
    EXPECT_NE(later.find("member 2"), std::string::npos) << later;
  }
}

TEST(Groups, AKilledMemberBreaksItsGroup) {
  auto g =
      prism::actor_group<Worker>(3, 0).options({.placement = prism::Placement::kSpread}).remote();
  auto waiting = g[0].call(&Worker::barrier).remote();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  prism::kill(g[1]);
  const std::string e = error_of([&] { prism::get(waiting); });
  EXPECT_NE(e.find("member 1 (Worker) ended: "), std::string::npos) << e;
  EXPECT_NE(e.find("was killed by prism::kill"), std::string::npos) << e;
}

TEST(Groups, MismatchedCollectivesFailClearly) {
  for (auto placement : {prism::Placement::kSpread, prism::Placement::kPack}) {
    auto g = prism::actor_group<Worker>(2, 0).options({.placement = placement}).remote();
    auto refs = g.call(&Worker::mismatched).remote();
    for (auto& r : refs) {
      const std::string e = error_of([&] { prism::get(r); });
      EXPECT_NE(e.find("mismatched collectives"), std::string::npos) << e;
    }
  }
}

// Members packed two to a node rank: each node rank's leader combines its
// node's parts before the meet, which then fails; every member's buffer must
// still hold its own values.
TEST(Groups, AFailedCollectiveLeavesEveryMembersBufferAsItWas) {
  auto g =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kPack}).remote();
  const std::vector<int> nodes = nodes_of(g);
  // Packed: two node ranks, or three while an earlier test's group still
  // holds CPUs; either way some node rank has two members.
  const size_t used = std::set<int>(nodes.begin(), nodes.end()).size();
  ASSERT_TRUE(used == 2 || used == 3) << used << " node ranks";
  auto refs = g.call(&Worker::mismatched_keeping).remote(nodes[0]);
  for (int r = 0; r < 4; ++r) {
    const std::vector<float> v = prism::get(refs[static_cast<size_t>(r)]);
    ASSERT_EQ(v.size(), nodes[static_cast<size_t>(r)] == nodes[0] ? 10u : 12u) << "member " << r;
    for (float x : v) EXPECT_EQ(x, static_cast<float>(r + 1)) << "member " << r;
  }
}

TEST(Groups, MismatchedKindsOfCollectiveFailClearly) {
  auto g =
      prism::actor_group<Worker>(2, 0).options({.placement = prism::Placement::kSpread}).remote();
  auto refs = g.call(&Worker::mismatched_kinds).remote();
  for (auto& r : refs) {
    const std::string e = error_of([&] { prism::get(r); });
    EXPECT_NE(e.find("mismatched collectives"), std::string::npos) << e;
  }
}

TEST(Groups, MembersRunMpiOnTheGroupsCommunicator) {
  auto g =
      prism::actor_group<Worker>(4, 0).options({.placement = prism::Placement::kSpread}).remote();
  auto refs = g.call(&Worker::mpi_sum).remote();
  for (int r = 0; r < 4; ++r) EXPECT_EQ(prism::get(refs[r]), (std::vector<int>{r, 4, 10}));
  // Packed, the two members share a node rank (unless members of earlier
  // tests still hold its CPUs): one MPI rank cannot be two members.
  auto packed = prism::actor_group<Worker>(2, 0).remote();
  const auto nodes = nodes_of(packed);
  if (nodes[0] == nodes[1]) {
    const std::string e = error_of([&] { prism::get(packed[0].call(&Worker::mpi_sum).remote()); });
    EXPECT_NE(e.find("share node ranks"), std::string::npos) << e;
  }
}

TEST(Groups, CollectivesOutsideAGroupAreAClearError) {
  const std::string e = error_of([] { prism::collective::barrier(); });
  EXPECT_NE(e.find("outside a group"), std::string::npos) << e;
}

// ---- MPI tasks ----

// One explicit step of the 1-D heat equation with fixed ends.
void heat_step(std::vector<double>& u, double left, double right, double alpha) {
  std::vector<double> next(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    const double l = i == 0 ? left : u[i - 1];
    const double r = i + 1 == u.size() ? right : u[i + 1];
    next[i] = u[i] + alpha * (l - 2 * u[i] + r);
  }
  u.swap(next);
}

std::vector<double> serial_heat(std::vector<double> u, int steps) {
  for (int s = 0; s < steps; ++s) heat_step(u, 0.0, 0.0, 0.25);
  return u;
}

// An existing MPI kernel: each rank owns a slice, exchanges halos with its
// neighbours every step (MPI_Sendrecv), and rank 0 gathers the result.
std::vector<double> mpi_heat(std::vector<double> u, int steps) {
  MPI_Comm comm = prism::mpi::communicator();
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const size_t n = u.size() / static_cast<size_t>(size);
  std::vector<double> mine(u.begin() + static_cast<long>(rank * n),
                           u.begin() + static_cast<long>((rank + 1) * n));
  const int left = rank > 0 ? rank - 1 : MPI_PROC_NULL;
  const int right = rank + 1 < size ? rank + 1 : MPI_PROC_NULL;
  for (int s = 0; s < steps; ++s) {
    double from_left = 0, from_right = 0;
    MPI_Sendrecv(&mine.front(), 1, MPI_DOUBLE, left, 0, &from_right, 1, MPI_DOUBLE, right, 0, comm,
                 MPI_STATUS_IGNORE);
    MPI_Sendrecv(&mine.back(), 1, MPI_DOUBLE, right, 1, &from_left, 1, MPI_DOUBLE, left, 1, comm,
                 MPI_STATUS_IGNORE);
    heat_step(mine, from_left, from_right, 0.25);
  }
  std::vector<double> all(rank == 0 ? u.size() : 0);
  MPI_Gather(mine.data(), static_cast<int>(n), MPI_DOUBLE, all.data(), static_cast<int>(n),
             MPI_DOUBLE, 0, comm);
  return all;
}
PRISM_REMOTE(mpi_heat);

std::vector<double> initial_heat(int n) {
  std::vector<double> u(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) u[static_cast<size_t>(i)] = std::sin(3.14159 * i / n) + (i % 7);
  return u;
}
PRISM_REMOTE(initial_heat);

double total_heat(std::vector<double> u) {
  return std::accumulate(u.begin(), u.end(), 0.0);
}
PRISM_REMOTE(total_heat);

TEST(MpiTasks, AHaloExchangeStencilIsOneStepOfATaskGraph) {
  const int n = 4000, steps = 200;
  auto u0 = prism::task(initial_heat).remote(n);                               // a task ...
  auto u = prism::task(mpi_heat).options({.mpi_ranks = 4}).remote(u0, steps);  // ... MPI on 4 ...
  auto total = prism::task(total_heat).remote(u);                              // ... a task
  const auto expected = serial_heat(initial_heat(n), steps);
  const auto got = prism::get(u);
  ASSERT_EQ(got.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
  EXPECT_LT(worst, 1e-12);
  EXPECT_NEAR(prism::get(total), std::accumulate(expected.begin(), expected.end(), 0.0), 1e-9);
}

int rank_that_throws(int bad) {
  const int r = prism::collective::rank();
  if (r == bad) throw std::runtime_error("rank " + std::to_string(r) + " gave up");
  MPI_Barrier(MPI_COMM_SELF);
  return r;
}
PRISM_REMOTE(rank_that_throws);

TEST(MpiTasks, ARankThatThrowsFailsTheTaskNamingIt) {
  auto r = prism::task(rank_that_throws).options({.mpi_ranks = 3}).remote(2);
  const std::string e = error_of([&] { prism::get(r); });
  EXPECT_NE(e.find("rank 2 failed: rank 2 gave up"), std::string::npos) << e;
  EXPECT_NE(e.find("MPI task 'rank_that_throws' on 3 node ranks"), std::string::npos) << e;
  EXPECT_EQ(prism::get(prism::task(rank_that_throws).options({.mpi_ranks = 3}).remote(7)), 0);
}

TEST(MpiTasks, MoreRanksThanNodeRanksIsInfeasible) {
  const std::string e =
      error_of([] { prism::task(rank_that_throws).options({.mpi_ranks = 5}).remote(0); });
  EXPECT_NE(e.find("each on a node rank of its own"), std::string::npos) << e;
  EXPECT_NE(e.find("1 short"), std::string::npos) << e;
}

TEST(MpiTasks, ManyMpiTasksAtOnceEachGetTheirOwnCommunicator) {
  std::vector<prism::ObjectRef<std::vector<double>>> runs;
  for (int k = 0; k < 6; ++k)
    runs.push_back(
        prism::task(mpi_heat).options({.mpi_ranks = 2 + k % 3}).remote(initial_heat(1200), 20 + k));
  for (int k = 0; k < 6; ++k) {
    const auto expected = serial_heat(initial_heat(1200), 20 + k);
    const auto got = prism::get(runs[static_cast<size_t>(k)]);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); i += 97) EXPECT_NEAR(got[i], expected[i], 1e-12);
  }
}

}  // namespace
