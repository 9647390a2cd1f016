#include "runtime/mpi_bootstrap.hpp"

#include <sched.h>

namespace prism::runtime {

MpiBootstrap::MpiBootstrap(MPI_Comm comm) {
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiBootstrap::~MpiBootstrap() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::vector<std::vector<std::byte>> MpiBootstrap::all_gather(std::span<const std::byte> mine) {
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(size_), displs(size_);
  MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm_);
  int total = 0;
  for (int i = 0; i < size_; ++i) {
    displs[i] = total;
    total += lens[i];
  }
  std::vector<std::byte> all(static_cast<size_t>(total));
  MPI_Allgatherv(mine.data(), len, MPI_BYTE, all.data(), lens.data(), displs.data(), MPI_BYTE,
                 comm_);
  std::vector<std::vector<std::byte>> out(size_);
  for (int i = 0; i < size_; ++i)
    out[i].assign(all.begin() + displs[i], all.begin() + displs[i] + lens[i]);
  return out;
}

void MpiBootstrap::barrier(const std::function<void()>& progress) {
  // A plain MPI_Barrier can deadlock: a peer's endpoint close may need this
  // rank's UCX worker to answer (shared/notes/hpc-deps.md).
  MPI_Request req;
  MPI_Ibarrier(comm_, &req);
  for (int done = 0, i = 0; !done; ++i) {
    if (progress) progress();
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if ((i & 63) == 63) sched_yield();  // oversubscribed: let the peers run
  }
}

}  // namespace prism::runtime
