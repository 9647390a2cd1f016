#include <gtest/gtest.h>

#include <prism/prism.hpp>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return prism::run(argc, argv, [] {
    if (RUN_ALL_TESTS() != 0) throw std::runtime_error("some tests failed");
  });
}
