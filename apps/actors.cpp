// 01 — actors: state that stays where it lives.
//
// An actor is an object that lives on one node; its methods run there, one
// call at a time, in the order each caller made them. Here every node gets a
// Histogram actor; tasks anywhere add samples to the histograms through
// handles passed to them, and a named "summary" actor, found by name, merges
// the histograms.
//
//   mpirun -n 3 ./prism-actors     (1 GCS rank + 2 node ranks)
#include <prism/prism.hpp>

#include <boost/serialization/vector.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

// A stateful class. Nothing Prism-specific in it.
class Histogram {
 public:
  explicit Histogram(int bins) : counts_(static_cast<size_t>(bins), 0) {}
  void add(std::vector<double> samples) {  // samples in [0, 1)
    for (double x : samples) ++counts_.at(static_cast<size_t>(x * counts_.size()));
  }
  std::vector<long> counts() const { return counts_; }
  int node() const { return prism::node_id(); }

 private:
  std::vector<long> counts_;
};
// One line: the class and the methods callers may call.
PRISM_ACTOR(Histogram, &Histogram::add, &Histogram::counts, &Histogram::node);

class Summary {
 public:
  void merge(std::vector<long> counts) {
    if (total_.empty()) total_.assign(counts.size(), 0);
    for (size_t i = 0; i < counts.size(); ++i) total_[i] += counts[i];
  }
  std::vector<long> total() const { return total_; }

 private:
  std::vector<long> total_;
};
PRISM_ACTOR(Summary, &Summary::merge, &Summary::total);

// A task that draws samples and hands them to a histogram actor: the handle
// travels with the task like any value.
int sample(prism::ActorHandle<Histogram> into, int n, int seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> xs(static_cast<size_t>(n));
  for (auto& x : xs) x = u(rng);
  prism::get(into.call(&Histogram::add).remote(xs));  // wait: the task reports when it is in
  return n;
}
PRISM_REMOTE(sample);

// A task that finds the summary by name and merges one histogram into it.
int merge_into_summary(prism::ActorHandle<Histogram> from) {
  auto summary = prism::get_actor<Summary>("summary");
  prism::get(summary.call(&Summary::merge).remote(from.call(&Histogram::counts).remote()));
  return 0;
}
PRISM_REMOTE(merge_into_summary);

int main(int argc, char** argv) {
  return prism::run(argc, argv, [] {
    const int nodes = prism::num_nodes(), bins = 10, per_task = 1000, tasks = 8 * nodes;
    // One histogram per node (pinned there), and one named summary.
    std::vector<prism::ActorHandle<Histogram>> hists;
    for (int n = 0; n < nodes; ++n)
      hists.push_back(prism::actor<Histogram>(bins).options({.node = n}).remote());
    auto summary = prism::actor<Summary>().options({.name = "summary"}).remote();

    // Tasks fill the histograms (any node may run them).
    std::vector<prism::ObjectRef<int>> done;
    for (int t = 0; t < tasks; ++t)
      done.push_back(
          prism::task(sample).remote(hists[static_cast<size_t>(t % nodes)], per_task, t));
    long samples = 0;
    for (int n : prism::get(done)) samples += n;

    // Each histogram is merged into the summary by a task that looks it up by name.
    std::vector<prism::ObjectRef<int>> merged;
    for (auto& h : hists) merged.push_back(prism::task(merge_into_summary).remote(h));
    prism::get(merged);
    const auto total = prism::get(summary.call(&Summary::total).remote());
    long counted = 0;
    for (size_t b = 0; b < total.size(); ++b) {
      counted += total[b];
      std::printf("bin %zu: %ld\n", b, total[b]);
    }
    for (auto& h : hists)
      std::printf("histogram on node %d\n", prism::get(h.call(&Histogram::node).remote()));
    if (counted != samples) throw std::runtime_error("lost samples");
    prism::kill(hists.back());  // ended by hand; the others end with their handles
    std::printf("prism-actors: OK (%ld samples in %d histograms on %d nodes)\n", counted, nodes,
                nodes);
  });
}
