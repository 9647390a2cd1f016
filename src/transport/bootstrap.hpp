// Bootstrap: the collective operations a transport needs at start-up and
// shutdown (exchanging worker addresses, barriers). The runtime implements it
// over MPI, so the transport layer itself never includes mpi.h.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

namespace prism::transport {

class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank contributes `mine`; returns all contributions by rank.
  virtual std::vector<std::vector<std::byte>> all_gather(std::span<const std::byte> mine) = 0;
  /// A barrier that keeps calling `progress` while it waits: a peer may need
  /// this rank's transport to answer before it can reach the barrier.
  virtual void barrier(const std::function<void()>& progress) = 0;
};

}  // namespace prism::transport
