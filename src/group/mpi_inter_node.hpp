// InterNode over MPI: a group's node ranks get a communicator of their own
// (MPI_Comm_create_group, collective over those ranks only, so groups come
// and go without the rest of the job), made after a handshake that can be
// abandoned when the group breaks: MPI_Comm_create_group itself cannot.
#pragma once

#include <mpi.h>

#include "group/inter_node.hpp"

namespace prism::groups {

class MpiInterNode final : public InterNode {
 public:
  /// Collective over `world` (every rank of the job): duplicates it, so the
  /// groups' traffic never meets the user's or the runtime's. `shared_meet`:
  /// a group whose node ranks share a host starts its collectives by meeting
  /// in shared memory, not with an MPI round (--prism-group-shared-meet).
  explicit MpiInterNode(MPI_Comm world, bool shared_meet = true);
  /// Collective over the job's ranks too.
  ~MpiInterNode() override;
  MpiInterNode(const MpiInterNode&) = delete;
  MpiInterNode& operator=(const MpiInterNode&) = delete;

  Expected<std::unique_ptr<NodeComm>> connect(const ObjectId& group, const std::vector<int>& ranks,
                                              const std::atomic<bool>& broken) override;

 private:
  MPI_Comm handshake_ = MPI_COMM_NULL;  // the handshakes' point-to-point messages
  MPI_Comm parent_ = MPI_COMM_NULL;     // the parent of every group's communicator
  int rank_ = 0;
  bool shared_meet_ = true;
};

}  // namespace prism::groups
