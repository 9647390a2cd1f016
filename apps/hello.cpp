// 00 — hello: the smallest Prism program. Submits one task per node, gets the
// results back and checks them.
//
//   mpirun -n 3 ./prism-hello      (1 GCS rank + 2 node ranks)
#include <prism/prism.hpp>

#include <cstdio>
#include <string>
#include <vector>

// Any free function can run remotely once registered.
std::string greet(int from_node, int x) {
  return "node " + std::to_string(prism::node_id()) + " squared " + std::to_string(x) + " = " +
         std::to_string(x * x) + " for node " + std::to_string(from_node);
}
PRISM_REMOTE(greet);

int main(int argc, char** argv) {
  return prism::run(argc, argv, [] {
    const int nodes = prism::num_nodes();
    std::vector<prism::ObjectRef<std::string>> refs;
    for (int n = 0; n < nodes; ++n)  // one task on every node, chosen explicitly
      refs.push_back(prism::task(greet).options({.node = n}).remote(prism::node_id(), n + 2));
    for (const auto& line : prism::get(refs)) std::printf("%s\n", line.c_str());
    for (const auto& n : prism::nodes())  // worker threads: the node's share of its host's cores
      std::printf("node %d: %g worker slots\n", n.node, n.num_cpus);
    std::printf("prism-hello: OK (%d nodes)\n", nodes);
  });
}
