// The HDF5 library Debian ships (parallel flavour) is built without its
// thread-safety option: two threads of one process must never be inside it
// at once. Every HDF5 user that can run on a worker thread (spill files,
// actor checkpoints) holds this lock for its whole use of the library.
#pragma once

#include <mutex>

namespace prism {

inline std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace prism
