// The GCS holds every node rank's last records at the job's end, not only
// the driver's (runtime/run.cpp, docs/fault-tolerance.md "The job's end"):
// a task on node rank 1 creates an actor on node rank 2, kills it and runs a
// child task there, then returns; the driver returns at once. The actor's
// destructor takes 300 ms, so its death reaches its owner (node rank 1) long
// after the driver is done; tests/mpi/check_settle_records.sh then reads the
// GCS snapshot: the actor's row must say dead and the child's finished.
#include <chrono>
#include <cstdio>
#include <prism/prism.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

class SlowToEnd {
 public:
  ~SlowToEnd() { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }
  int ping() { return prism::node_id(); }
};
PRISM_ACTOR(SlowToEnd, &SlowToEnd::ping);

int settle_child(int x) {
  return x + 1;
}
PRISM_REMOTE(settle_child);

int end_an_actor_on(int node) {
  auto actor = prism::actor<SlowToEnd>().options({.node = node}).remote();
  const int where = prism::get(actor.call(&SlowToEnd::ping).remote());
  prism::kill(actor);
  return where + prism::get(prism::task(settle_child).options({.node = node}).remote(0));
}

PRISM_REMOTE(end_an_actor_on);

}  // namespace

int main(int argc, char** argv) {
  return prism::run(argc, argv, [] {
    if (prism::num_nodes() < 3) throw std::runtime_error("needs 3 node ranks (mpirun -n 4)");
    const int got = prism::get(prism::task(end_an_actor_on).options({.node = 1}).remote(2));
    if (got != 3) throw std::runtime_error("unexpected result " + std::to_string(got));
    std::printf("settle-records: the task on node 1 is done\n");
  });
}
