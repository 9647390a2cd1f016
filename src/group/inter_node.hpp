// The part of a group's collectives between node ranks: one process per
// node rank that hosts members meets the others over a communicator made for
// the group. An interface, so that LocalGroup (local_group.hpp) runs in one
// process without MPI in tests; MpiInterNode (mpi_inter_node.hpp) is the real
// one.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "group/reduce.hpp"

namespace prism::groups {

/// The node ranks of one group, connected. Calls are collective over them,
/// made by one thread per rank at a time, in the same order everywhere.
class NodeComm {
 public:
  virtual ~NodeComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Returns once every rank called meet() with the same signature:
  /// kInvalidArgument when the signatures differ (mismatched collectives),
  /// kAborted when `broken` turns true first. After either, the
  /// communicator is not used again.
  [[nodiscard]] virtual Status meet(uint64_t signature, const std::atomic<bool>& broken) = 0;
  /// Whether meet_allreduce() takes an allreduce of `bytes` (node ranks of
  /// one host, a small buffer: in shared memory, without MPI).
  virtual bool allreduces_in_meet(size_t /*bytes*/) const { return false; }
  /// meet(), then allreduce() of `data`, in one step (see allreduces_in_meet).
  [[nodiscard]] virtual Status meet_allreduce(uint64_t signature, void* data, size_t count,
                                              DataType t, Op op, const std::atomic<bool>& broken) {
    PRISM_RETURN_IF_ERROR(meet(signature, broken));
    allreduce(data, count, t, op);
    return Status::ok();
  }
  // After meet(): every rank is in the same collective, so these complete.
  virtual void allreduce(void* data, size_t count, DataType t, Op op) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  /// Rank k's `bytes[k]` bytes land in `all` after the pieces of ranks < k.
  virtual void allgatherv(const void* mine, void* all, const std::vector<size_t>& bytes) = 0;
  virtual void reduce_scatter_block(const void* send, void* recv, size_t count, DataType t,
                                    Op op) = 0;
  virtual void barrier() = 0;
  /// The MPI communicator (an MPI_Comm*), for members that run MPI code.
  virtual void* native() = 0;
};

class InterNode {
 public:
  virtual ~InterNode() = default;
  /// Connects this process with the other node ranks of group `group`:
  /// `ranks` (world ranks, this one among them) is the same list, in the
  /// same order, on each. Blocks until all of them arrive; kAborted when
  /// `broken` turns true first.
  [[nodiscard]] virtual Expected<std::unique_ptr<NodeComm>> connect(
      const ObjectId& group, const std::vector<int>& ranks, const std::atomic<bool>& broken) = 0;
};

}  // namespace prism::groups
