// A Prism task with num_gpus=1 launches a real kernel on the GPU it was
// given. Exits 77 (ctest: skipped) where no GPU is visible.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <prism/prism.hpp>
#include <string>
#include <vector>

std::string run_saxpy(float a, const std::vector<float>& x, std::vector<float>& y);

namespace {
std::vector<float> saxpy_task(float a, std::vector<float> x, std::vector<float> y) {
  const auto ids = prism::gpu_ids();
  if (ids.size() != 1) throw std::runtime_error("expected one GPU id");
  int device = -1;
  cudaGetDevice(&device);
  if (device != ids[0]) throw std::runtime_error("current device is not the granted GPU");
  if (auto err = run_saxpy(a, x, y); !err.empty()) throw std::runtime_error("CUDA: " + err);
  return y;
}
PRISM_REMOTE(saxpy_task);
}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device visible (%d)\n", devices);
    return 77;  // every rank: mpirun returns 77, ctest reports the test skipped
  }
  return prism::run(argc, argv, [] {
    std::vector<float> x(1 << 20, 1.0f), y(1 << 20, 2.0f);
    auto r = prism::task(saxpy_task).options({.num_gpus = 1}).remote(3.0f, x, y);
    auto out = prism::get(r);
    for (float v : out)
      if (v != 5.0f) throw std::runtime_error("wrong saxpy result");
    std::printf("gpu kernel from a task: OK\n");
  });
}
