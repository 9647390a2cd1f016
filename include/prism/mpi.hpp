// MPI inside Prism (docs/mpi-interop.md): the communicator of an MPI task's
// ranks, or of an actor group whose members each have a node rank of their
// own. Include it where you call MPI; link MPI (MPI::MPI_CXX) too.
//
//   double stencil(std::vector<double> u, int steps) {   // PRISM_REMOTE(stencil)
//     MPI_Comm comm = prism::mpi::communicator();        // rank i of k
//     ... MPI_Sendrecv halos on comm ...
//   }
//   auto r = prism::task(stencil).options({.mpi_ranks = 4}).remote(u0, 100);
#pragma once

#include <mpi.h>

#include "prism/collective.hpp"

namespace prism::detail {
void* group_communicator();  // an MPI_Comm* (src/api)
}  // namespace prism::detail

namespace prism::mpi {

/// The calling rank's communicator: in an MPI task, its k ranks (rank i is
/// MPI rank i); in an actor group's method, its members. Made for the group,
/// collectively, on first use; freed with the group. Error outside one, or
/// in a group whose members share node ranks.
inline MPI_Comm communicator() {
  return *static_cast<MPI_Comm*>(detail::group_communicator());
}

}  // namespace prism::mpi
