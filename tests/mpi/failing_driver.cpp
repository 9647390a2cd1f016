// A driver that throws: the job must end non-zero on every rank with the
// message on stderr, and no rank may hang.
#include <prism/prism.hpp>

#include <stdexcept>

int slow_square(int x) {
  return x * x;
}
PRISM_REMOTE(slow_square);

int main(int argc, char** argv) {
  return prism::run(argc, argv, [] {
    auto r = prism::task(slow_square).options({.node = prism::num_nodes() - 1}).remote(3);
    if (prism::get(r) != 9) return;
    throw std::runtime_error("deliberate driver error");
  });
}
