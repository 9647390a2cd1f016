// Checks that a job started by tests/netns/netns_cluster.sh really spans
// separate hosts: every node rank runs in its own network namespace, under
// its own hostname, and Prism sees one node rank per host (so each holds all
// of its host's cores). Runs inside prism::run like the tests in tests/mpi;
// skipped unless PRISM_NETNS_HOSTS (set by the harness) says how many hosts
// the job was given.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <prism/prism.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

// Where the calling task runs: "hostname netns-inode", e.g. "h2 net:[4026532242]".
std::string where_am_i() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  std::error_code ec;
  const auto ns = std::filesystem::read_symlink("/proc/self/ns/net", ec);
  return std::string(name) + " " + (ec ? std::string("?") : ns.string());
}
PRISM_REMOTE(where_am_i);

// A 64 MiB object made on one host and read on another: it has to cross the
// bridge (above the inline threshold, so the reader pulls it from the
// producer's store).
std::vector<char> make_block(int mib) {
  return std::vector<char>(static_cast<size_t>(mib) << 20, static_cast<char>(mib));
}
PRISM_REMOTE(make_block);

size_t sum_block(const std::vector<char>& v) {
  size_t s = 0;
  for (char c : v) s += static_cast<unsigned char>(c);
  return s;
}
PRISM_REMOTE(sum_block);

int hosts_given() {
  const char* v = std::getenv("PRISM_NETNS_HOSTS");
  return v ? std::atoi(v) : 0;
}

}  // namespace

TEST(NetnsHosts, EveryNodeRankIsOnItsOwnHost) {
  const int hosts = hosts_given();
  if (hosts <= 0) GTEST_SKIP() << "run through tests/netns/netns_cluster.sh";
  ASSERT_EQ(prism::num_nodes(), hosts) << "the harness starts one node rank per fake host";
  std::vector<prism::ObjectRef<std::string>> refs;
  for (int n = 0; n < prism::num_nodes(); ++n)
    refs.push_back(prism::task(where_am_i).options({.node = n}).remote());
  const auto places = prism::get(refs);
  std::set<std::string> distinct(places.begin(), places.end());
  for (int n = 0; n < hosts; ++n) std::printf("  node %d runs on %s\n", n, places[n].c_str());
  EXPECT_EQ(static_cast<int>(distinct.size()), hosts) << "two node ranks share a host";
  EXPECT_EQ(places[0], where_am_i()) << "node 0 is the driver's host";
}

// One node rank per host: Prism's per-host core split (docs/running.md,
// "Cores") gives each the whole host.
TEST(NetnsHosts, EachNodeRankHoldsItsWholeHost) {
  if (hosts_given() <= 0) GTEST_SKIP() << "run through tests/netns/netns_cluster.sh";
  const double cores = std::thread::hardware_concurrency();
  for (const auto& n : prism::nodes())
    EXPECT_EQ(n.num_cpus, cores) << "node " << n.node << " shares its host with another node rank";
}

TEST(NetnsHosts, ObjectsCrossTheBridge) {
  const int hosts = hosts_given();
  if (hosts < 2) GTEST_SKIP() << "needs 2 fake hosts";
  const auto block = prism::task(make_block).options({.node = 1}).remote(64);
  const auto sum = prism::task(sum_block).options({.node = 0}).remote(block);
  EXPECT_EQ(prism::get(sum), size_t{64} << 26);  // 64 MiB of bytes of value 64
}
