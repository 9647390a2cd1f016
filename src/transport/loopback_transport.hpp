// In-process fabric: N transports whose "ranks" are objects in one process, so
// a whole cluster (GCS, node ranks, driver) can run inside one gtest binary.
// Messages are copied into the destination's inbox; rdma_get is a memcpy.
#pragma once

#include <memory>
#include <vector>

#include "transport/transport.hpp"

namespace prism::transport {

class LoopbackFabric {
 public:
  explicit LoopbackFabric(int size);
  ~LoopbackFabric();
  /// The transport of `rank`; owned by the fabric.
  Transport& at(int rank);
  int size() const;
  /// For tests, a slow channel: messages from `src` to `dst` are held back,
  /// in order, until release_held() delivers them.
  void hold(int src, int dst);
  /// Delivers every held message in order and stops holding. Returns how many.
  size_t release_held();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prism::transport
