// How the node ranks of a group that all share a host meet before each
// collective: through a shared-memory segment each of them maps, not an MPI
// round (docs/mpi-interop.md, "How members meet"). Used by MpiInterNode.
//
// Each rank has a cache line where it publishes the signature of its n-th
// collective under n, then reads everyone's. Two slots per line (and per
// rank's data, see kSmallBytes), by the parity of n: a rank can be at most
// one meet ahead of the slowest (it cannot pass meet n+1 before everyone
// published n+1, which each does only after reading meet n), so slot n % 2
// is not overwritten while anyone still reads it. Nothing is left pending
// when a meet is abandoned, and unmapping is local: a broken group frees it
// all (not so an MPI shared window: MPI_Win_free is collective).
//
// Why: the MPI meet (an Iallreduce of two numbers) made a barrier between 4
// node ranks on 2 cores cost 51-81 us, this one 10-22 us (MPI_Barrier: 13-26
// us); with the small allreduce below, 1 KiB went from 0.063-0.087 ms to
// 0.015-0.032 ms (MPI_Allreduce: 0.031-0.050).
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/status.hpp"
#include "group/reduce.hpp"

namespace prism::groups {

class SharedMeet {
 public:
  /// An allreduce of at most this many bytes goes with the meet: each rank
  /// publishes its part with its signature and combines all parts itself, so
  /// a small allreduce costs one meeting and no MPI call. Why 4 KiB: there
  /// each rank's combining is still far below MPI's own latency here.
  static constexpr size_t kSmallBytes = 4096;

  /// Collective over `comm`. nullptr where its ranks do not all share a host
  /// or the segment could not be made on one of them (the MPI meet serves).
  static std::unique_ptr<SharedMeet> create(MPI_Comm comm);
  ~SharedMeet();
  SharedMeet(const SharedMeet&) = delete;
  SharedMeet& operator=(const SharedMeet&) = delete;

  /// NodeComm::meet (inter_node.hpp).
  Status meet(uint64_t signature, const std::atomic<bool>& broken);
  /// meet(), then an allreduce of `count` elements at `data` (at most
  /// kSmallBytes): every rank combines the parts in rank order, so all get
  /// the same result (as from MPI_Allreduce).
  Status meet_allreduce(uint64_t signature, void* data, size_t count, DataType t, Op op,
                        const std::atomic<bool>& broken);

 private:
  struct Line;
  SharedMeet(std::byte* base, size_t bytes, int rank, int size);
  std::byte* part(int rank, size_t slot) const;
  Status publish_and_wait(uint64_t signature, const void* data, size_t bytes,
                          const std::atomic<bool>& broken, size_t& slot);

  Line* lines_;
  size_t bytes_;
  int rank_, size_;
  uint64_t meets_ = 0;
};

}  // namespace prism::groups
