// LocalGroup alone, in one process: members as threads of one node rank
// meet in every collective, mismatched calls and a broken group fail
// instead of hanging (src/group/local_group.hpp). Across node ranks:
// tests/mpi/groups_test.cpp.
#include "group/local_group.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>

#include "prism/errors.hpp"

namespace prism::groups {
namespace {

using detail::CollectiveKind;
using detail::CollectiveRequest;
using detail::DataType;

// Runs body(i) on n threads at once; returns each one's error (empty: none).
std::vector<std::string> on_members(int n, const std::function<void(uint32_t)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      try {
        body(static_cast<uint32_t>(i));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

LocalGroup make_group(int n) {
  return LocalGroup({0, 0, 42}, "test group", std::vector<int>(static_cast<size_t>(n), 0), 0,
                    nullptr);
}

TEST(LocalGroup, MembersOnOneNodeMeetInEveryCollective) {
  constexpr int n = 4;
  auto g = make_group(n);
  std::vector<std::vector<double>> reduced(n), broadcast(n), gathered(n), scattered(n);
  auto errors = on_members(n, [&](uint32_t i) {
    auto& r = reduced[i];
    r = {1.0 * i, 2.0 * i, 1.0};
    g.run(i, {CollectiveKind::kAllreduce, DataType::kDouble, Op::kSum, 0, r.data(), r.data(), 3});
    auto& b = broadcast[i];
    b = {double(i), double(i)};
    g.run(i, {CollectiveKind::kBroadcast, DataType::kDouble, Op::kSum, 2, b.data(), b.data(), 2});
    const double mine[2] = {double(i), 10.0 + i};
    gathered[i].resize(2 * n);
    g.run(i, {CollectiveKind::kAllgather, DataType::kDouble, Op::kSum, 0, mine, gathered[i].data(),
              2});
    std::vector<double> blocks(n);
    std::iota(blocks.begin(), blocks.end(), 0.0);  // block k holds k
    scattered[i].resize(1);
    g.run(i, {CollectiveKind::kReduceScatter, DataType::kDouble, Op::kMax, 0, blocks.data(),
              scattered[i].data(), 1});
    g.run(i, {});  // barrier
  });
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(errors[i], "") << "member " << i;
    EXPECT_EQ(reduced[i], (std::vector<double>{6, 12, 4}));
    EXPECT_EQ(broadcast[i], (std::vector<double>{2, 2}));
    EXPECT_EQ(gathered[i], (std::vector<double>{0, 10, 1, 11, 2, 12, 3, 13}));
    EXPECT_EQ(scattered[i], (std::vector<double>{double(i)}));
  }
}

TEST(LocalGroup, MismatchedCallsFailEveryMemberNamingBoth) {
  auto g = make_group(2);
  auto errors = on_members(2, [&](uint32_t i) {
    std::vector<float> v(i == 0 ? 10 : 12, 1.0f);
    g.run(i, {CollectiveKind::kAllreduce, DataType::kFloat, Op::kSum, 0, v.data(), v.data(),
              v.size()});
  });
  for (const auto& e : errors) {
    EXPECT_NE(e.find("allreduce(10 x float, sum)"), std::string::npos) << e;
    EXPECT_NE(e.find("allreduce(12 x float, sum)"), std::string::npos) << e;
  }
  EXPECT_NE(g.broken_reason().find("mismatched collectives"), std::string::npos);
}

TEST(LocalGroup, BreakingTheGroupWakesWaitingMembersWithTheReason) {
  auto g = make_group(3);
  auto errors = on_members(3, [&](uint32_t i) {
    if (i == 2) {  // never arrives: fails instead
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      g.break_with("member 2 (W.step) failed: boom");
      return;
    }
    g.run(i, {});
  });
  EXPECT_NE(errors[0].find("barrier() on test group: member 2 (W.step) failed: boom"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("member 2 (W.step) failed: boom"), std::string::npos);
  // And every later collective fails at once.
  try {
    g.run(0, {});
    FAIL() << "a broken group's barrier returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
  }
  EXPECT_FALSE(g.break_with("again"));  // the first reason stays
  EXPECT_EQ(g.broken_reason(), "member 2 (W.step) failed: boom");
}

TEST(LocalGroup, AcrossNodeRanksWithoutMpiIsAClearError) {
  LocalGroup g({0, 0, 7}, "two-node group", {0, 1}, 0, nullptr);
  try {
    g.run(0, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no MPI"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g.communicator(), Error);
}

TEST(LocalGroup, CommunicatorNeedsANodeRankPerMember) {
  auto g = make_group(2);
  try {
    g.communicator();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share node ranks (2 on node rank 0)"), std::string::npos)
        << e.what();
  }
}

TEST(LocalGroup, BadRootAndForeignMembersAreRefused) {
  LocalGroup g({0, 0, 9}, "g", {0, 0, 1}, 0, nullptr);
  double x = 0;
  EXPECT_THROW(g.run(0, {CollectiveKind::kBroadcast, DataType::kDouble, Op::kSum, 3, &x, &x, 1}),
               Error);
  EXPECT_THROW(g.run(2, {}), Error);  // member 2 lives on node rank 1
}

// The node ranks' side of a group, faked: the meet succeeds at once, and an
// allreduce adds 100 (the other node rank's part) once the test releases it.
class HeldComm final : public NodeComm {
 public:
  explicit HeldComm(std::function<void()> hold) : hold_(std::move(hold)) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  Status meet(uint64_t, const std::atomic<bool>&) override { return Status::ok(); }
  void allreduce(void* data, size_t count, DataType, Op) override {
    hold_();
    auto* d = static_cast<double*>(data);
    for (size_t i = 0; i < count; ++i) d[i] += 100;
  }
  void broadcast(void*, size_t, int) override {}
  void allgatherv(const void*, void*, const std::vector<size_t>&) override {}
  void reduce_scatter_block(const void*, void*, size_t, DataType, Op) override {}
  void barrier() override {}
  void* native() override { return nullptr; }

 private:
  std::function<void()> hold_;
};
class HeldInterNode final : public InterNode {
 public:
  explicit HeldInterNode(std::function<void()> hold) : hold_(std::move(hold)) {}
  Expected<std::unique_ptr<NodeComm>> connect(const ObjectId&, const std::vector<int>&,
                                              const std::atomic<bool>&) override {
    return std::unique_ptr<NodeComm>(std::make_unique<HeldComm>(hold_));
  }

 private:
  std::function<void()> hold_;
};

// The leader reads and writes every local member's buffer while it runs
// the collective between node ranks: a group that breaks meanwhile must not
// let the other members return (and free their buffers) before it is done.
TEST(LocalGroup, AGroupBrokenWhileItsLeaderRunsWaitsForTheLeader) {
  std::mutex mu;
  std::condition_variable cv;
  bool in_mpi = false, released = false;
  HeldInterNode inter([&] {
    std::unique_lock lk(mu);
    in_mpi = true;
    cv.notify_all();
    cv.wait(lk, [&] { return released; });
  });
  LocalGroup g({0, 0, 11}, "held group", {0, 0, 1}, 0, &inter);
  std::atomic<int> returned{0};
  std::vector<std::vector<double>> data(2);
  std::thread breaker([&] {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return in_mpi; });
    lk.unlock();
    g.break_with("member 2 (W.step) failed: boom");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(returned.load(), 0) << "a member left while its leader still used its buffer";
    lk.lock();
    released = true;
    cv.notify_all();
  });
  auto errors = on_members(2, [&](uint32_t i) {
    data[i] = {1.0 + i, 2.0};
    g.run(i, {CollectiveKind::kAllreduce, DataType::kDouble, Op::kSum, 0, data[i].data(),
              data[i].data(), 2});
    ++returned;
  });
  breaker.join();
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(errors[i], "") << "member " << i;  // the collective itself completed
    EXPECT_EQ(data[i], (std::vector<double>{103, 104})) << "member " << i;
  }
  EXPECT_THROW(g.run(0, {}), Error);  // and the group stays broken
}

TEST(Reduce, IntegerSumsAndProductsWrapAroundLikeMpi) {
  int32_t a[2] = {INT32_MAX, -5}, b[2] = {1, 7};
  reduce_into(DataType::kInt32, Op::kSum, a, b, 2);
  EXPECT_EQ(a[0], INT32_MIN);
  EXPECT_EQ(a[1], 2);
  int64_t c = INT64_MAX, d = 2;
  reduce_into(DataType::kInt64, Op::kProd, &c, &d, 1);
  EXPECT_EQ(c, -2);
  uint8_t e = 200, f = 100;
  reduce_into(DataType::kUint8, Op::kSum, &e, &f, 1);
  EXPECT_EQ(e, 44);
  int8_t g = -128, h = -1;
  reduce_into(DataType::kInt8, Op::kProd, &g, &h, 1);
  EXPECT_EQ(g, -128);
  float x = 1.5f, y = 2.0f;
  reduce_into(DataType::kFloat, Op::kMax, &x, &y, 1);
  EXPECT_EQ(x, 2.0f);
}

TEST(GroupRegistry, AGroupBrokenBeforeItsMembersArriveIsBrokenWhenTheyDo) {
  GroupRegistry reg(0, nullptr, {});
  EXPECT_FALSE(reg.break_group({1, 0, 5}, "member 0 failed"));
  auto g = reg.join({1, 0, 5}, "g", {0, 0});
  EXPECT_EQ(g->broken_reason(), "member 0 failed");
  auto h = reg.join({1, 0, 6}, "h", {0});
  EXPECT_EQ(h, reg.join({1, 0, 6}, "h", {0}));  // one per id while it lives
  EXPECT_TRUE(reg.break_group({1, 0, 6}, "x"));
}

}  // namespace
}  // namespace prism::groups
