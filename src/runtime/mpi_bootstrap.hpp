// Bootstrap over MPI: the only place the runtime talks MPI (start-up and
// shutdown collectives). Uses its own duplicate of the world communicator so
// user code keeps MPI_COMM_WORLD to itself.
#pragma once

#include <mpi.h>

#include "transport/bootstrap.hpp"

namespace prism::runtime {

class MpiBootstrap final : public transport::Bootstrap {
 public:
  explicit MpiBootstrap(MPI_Comm comm);
  ~MpiBootstrap() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<std::vector<std::byte>> all_gather(std::span<const std::byte> mine) override;
  void barrier(const std::function<void()>& progress) override;
  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace prism::runtime
