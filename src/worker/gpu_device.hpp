// The CUDA side of GPU slots, compiled to no-ops without the CUDA toolkit
// (PRISM_WITH_CUDA is set when CMake found it).
#pragma once

namespace prism::worker {

/// True when this build has CUDA support.
bool built_with_cuda() noexcept;
/// GPUs the CUDA runtime sees (0 without CUDA or without a driver).
int cuda_device_count() noexcept;
/// Makes `device` the calling thread's current CUDA device (no-op without CUDA).
void set_current_device(int device) noexcept;

}  // namespace prism::worker
