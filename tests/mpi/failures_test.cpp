// Failures across real ranks (docs/fault-tolerance.md): tasks that throw run
// again when they retry exceptions, and only the last run's result counts.
// (Node ranks lost mid-run: tests/mpi/check_node_loss.sh.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <prism/prism.hpp>
#include <string>

namespace {

// Each run appends a line to `path` (the runs may be on any node rank of
// this host); the first `failures` runs throw.
int flaky(std::string path, int failures) {
  int runs = 0;
  {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) ++runs;
  }
  std::ofstream(path, std::ios::app) << prism::node_id() << "\n";
  if (runs < failures) throw std::runtime_error("run " + std::to_string(runs + 1) + " fails");
  return runs + 1;
}
PRISM_REMOTE(flaky);

int lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

std::string fresh_path(const std::string& tag) {
  static int n = 0;
  std::string p =
      "/tmp/prism-failures-" + std::to_string(getpid()) + "-" + tag + "-" + std::to_string(++n);
  std::remove(p.c_str());
  return p;
}

TEST(Retries, ATaskThatRetriesExceptionsRunsUntilItSucceeds) {
  for (int node : {0, 1}) {  // run here (the owner's node) and on another node rank
    const auto path = fresh_path("ok");
    auto r = prism::task(flaky)
                 .options({.node = node, .max_retries = 3, .retry_exceptions = true})
                 .remote(path, 2);
    EXPECT_EQ(prism::get(r), 3) << "node " << node;
    EXPECT_EQ(lines(path), 3);
    std::remove(path.c_str());
  }
}

TEST(Retries, ExceptionsAreNotRetriedUnlessAsked) {
  const auto path = fresh_path("no");
  auto r = prism::task(flaky).options({.node = 1}).remote(path, 1);
  try {
    prism::get(r);
    FAIL() << "the task's exception did not reach get";
  } catch (const prism::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("run 1 fails"), std::string::npos) << e.what();
  }
  EXPECT_EQ(lines(path), 1);
  std::remove(path.c_str());
}

TEST(Retries, TheLastRunsErrorReachesGetWhenRetriesRunOut) {
  const auto path = fresh_path("out");
  auto r = prism::task(flaky)
               .options({.node = 1, .max_retries = 1, .retry_exceptions = true})
               .remote(path, 5);
  try {
    prism::get(r);
    FAIL();
  } catch (const prism::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("run 2 fails"), std::string::npos) << e.what();
  }
  EXPECT_EQ(lines(path), 2);
  std::remove(path.c_str());
}

// -1 retries for ever (as in Ray); below -1 is refused at submission.
TEST(Retries, MinusOneRetriesEveryTimeAndLessIsAnError) {
  const auto path = fresh_path("always");
  auto r = prism::task(flaky)
               .options({.node = 1, .max_retries = -1, .retry_exceptions = true})
               .remote(path, 6);
  EXPECT_EQ(prism::get(r), 7);
  EXPECT_EQ(lines(path), 7);
  std::remove(path.c_str());
  try {
    (void)prism::task(flaky).options({.max_retries = -2}).remote(path, 0);
    FAIL() << "max_retries = -2 was accepted";
  } catch (const prism::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_retries must be -1"), std::string::npos) << e.what();
  }
}

TEST(Retries, DependentsSeeOnlyTheSuccessfulRun) {
  const auto path = fresh_path("dep");
  auto first = prism::task(flaky)
                   .options({.node = 1, .max_retries = 2, .retry_exceptions = true})
                   .remote(path, 1);
  auto second = prism::task(flaky)
                    .options({.node = 1, .max_retries = 2, .retry_exceptions = true})
                    .remote(path + "-2", 0);
  EXPECT_EQ(prism::get(first), 2);
  EXPECT_EQ(prism::get(second), 1);
  std::remove(path.c_str());
  std::remove((path + "-2").c_str());
}

}  // namespace
