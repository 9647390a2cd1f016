# Every dependency is a Debian package (scripts/setup-deps.sh installs them).
find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(PkgConfig REQUIRED)
pkg_check_modules(UCX REQUIRED IMPORTED_TARGET ucx)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
find_package(Boost 1.74 REQUIRED COMPONENTS serialization)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)

# HDF5, parallel flavour. Without the compiler hint FindHDF5 takes the serial
# C++ wrapper and links both flavours into one binary (shared/notes/hpc-deps.md).
set(HDF5_PREFER_PARALLEL TRUE)
find_program(HDF5_CXX_COMPILER_EXECUTABLE NAMES h5pc++ h5c++.openmpi)
find_package(HDF5 REQUIRED COMPONENTS C CXX)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "Prism needs the parallel HDF5 build (libhdf5-openmpi-dev)")
endif()

set(PRISM_HAVE_CUDA OFF)
if(PRISM_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(PRISM_HAVE_CUDA ON)
  endif()
endif()
message(STATUS "Prism: CUDA support ${PRISM_HAVE_CUDA}")
