#include "worker/gpu_device.hpp"

#ifdef PRISM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace prism::worker {

#ifdef PRISM_WITH_CUDA
bool built_with_cuda() noexcept {
  return true;
}
int cuda_device_count() noexcept {
  int n = 0;
  // Without a driver this returns an error (e.g. "driver version is
  // insufficient"): no GPUs, not a failure.
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}
void set_current_device(int device) noexcept {
  (void)cudaSetDevice(device);
}
#else
bool built_with_cuda() noexcept {
  return false;
}
int cuda_device_count() noexcept {
  return 0;
}
void set_current_device(int) noexcept {}
#endif

}  // namespace prism::worker
