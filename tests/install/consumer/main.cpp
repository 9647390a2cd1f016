#include <prism/prism.hpp>

#include <cstdio>

int cube(int x) {
  return x * x * x;
}
PRISM_REMOTE(cube);

int main(int argc, char** argv) {
  return prism::run(argc, argv, [] {
    const int v = prism::get(prism::task(cube).options({.node = prism::num_nodes() - 1}).remote(3));
    if (v != 27) throw std::runtime_error("wrong result");
    std::printf("consumer: OK\n");
  });
}
