#include "group/mpi_inter_node.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <memory>

#include "common/log.hpp"
#include "group/polling.hpp"
#include "group/shared_meet.hpp"
#include "prism/errors.hpp"

namespace prism::groups {
namespace {

MPI_Datatype mpi_type(DataType t) {
  switch (t) {
    case DataType::kInt8:
      return MPI_INT8_T;
    case DataType::kUint8:
      return MPI_UINT8_T;
    case DataType::kInt32:
      return MPI_INT32_T;
    case DataType::kUint32:
      return MPI_UINT32_T;
    case DataType::kInt64:
      return MPI_INT64_T;
    case DataType::kUint64:
      return MPI_UINT64_T;
    case DataType::kFloat:
      return MPI_FLOAT;
    case DataType::kDouble:
      return MPI_DOUBLE;
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(Op op) {
  switch (op) {
    case Op::kSum:
      return MPI_SUM;
    case Op::kProd:
      return MPI_PROD;
    case Op::kMin:
      return MPI_MIN;
    case Op::kMax:
      return MPI_MAX;
  }
  return MPI_SUM;
}

// A group's tag on the handshake and parent communicators: the same on
// every rank, different for groups alive at once (up to a hash collision,
// which would only pair two handshakes early).
int group_tag(const ObjectId& id) {
  const uint64_t h = ObjectIdHash{}(id);
  return static_cast<int>(h % ((1u << 29) - 1)) + 1;
}

// MPI counts are ints: a large buffer goes in pieces.
constexpr size_t kMaxChunk = size_t{1} << 30;

class MpiNodeComm final : public NodeComm {
 public:
  MpiNodeComm(MPI_Comm comm, std::unique_ptr<SharedMeet> shared)
      : comm_(comm), shared_(std::move(shared)) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiNodeComm() override {
    // After an abandoned meet() a request is still pending on it: it is
    // left alone rather than freed under that request.
    if (!abandoned_) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  bool allreduces_in_meet(size_t bytes) const override {
    return shared_ && bytes <= SharedMeet::kSmallBytes;
  }
  Status meet_allreduce(uint64_t signature, void* data, size_t count, DataType t, Op op,
                        const std::atomic<bool>& broken) override {
    if (allreduces_in_meet(count * size_of(t)))
      return shared_->meet_allreduce(signature, data, count, t, op, broken);
    return NodeComm::meet_allreduce(signature, data, count, t, op, broken);
  }

  Status meet(uint64_t signature, const std::atomic<bool>& broken) override {
    if (shared_) return shared_->meet(signature, broken);
    // One non-blocking allreduce both synchronizes and compares: the max of
    // (s, ~s) is (max s, ~min s), equal only if every rank sent the same s
    // (all 64 bits: signatures of different kinds may differ in one bit).
    // Its buffers are on the heap: an abandoned request (below) may still
    // read and write them later, so they are then leaked, not freed with
    // this frame.
    auto buffers = std::make_unique<std::array<uint64_t, 4>>();
    uint64_t* in = buffers->data();
    uint64_t* out = buffers->data() + 2;
    in[0] = signature;
    in[1] = ~signature;
    MPI_Request req;
    MPI_Iallreduce(in, out, 2, MPI_UINT64_T, MPI_MAX, comm_, &req);
    const bool met = poll_until(
        [&] {
          int flag = 0;
          MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
          return flag != 0;
        },
        broken);
    if (!met) {
      abandoned_ = true;  // the request can be neither cancelled nor completed
      (void)buffers.release();  // 32 bytes, once per broken group
      return {Errc::kAborted, "the group broke"};
    }
    if (out[0] != ~out[1]) {
      abandoned_ = true;
      return {Errc::kInvalidArgument, "members called different collectives"};
    }
    return Status::ok();
  }

  void allreduce(void* data, size_t count, DataType t, Op op) override {
    const size_t unit = size_of(t);
    auto* p = static_cast<std::byte*>(data);
    for (size_t done = 0; done < count;) {
      const size_t n = std::min(count - done, kMaxChunk / unit);
      MPI_Allreduce(MPI_IN_PLACE, p + done * unit, static_cast<int>(n), mpi_type(t), mpi_op(op),
                    comm_);
      done += n;
    }
  }
  void broadcast(void* data, size_t bytes, int root) override {
    auto* p = static_cast<std::byte*>(data);
    for (size_t done = 0; done < bytes;) {
      const size_t n = std::min(bytes - done, kMaxChunk);
      MPI_Bcast(p + done, static_cast<int>(n), MPI_BYTE, root, comm_);
      done += n;
    }
  }
  void allgatherv(const void* mine, void* all, const std::vector<size_t>& bytes) override {
    std::vector<int> counts, displs;
    size_t at = 0;
    for (size_t b : bytes) {
      if (b > INT_MAX || at > INT_MAX)
        throw Error("allgather: more than 2 GiB gathered from the node ranks of a group");
      counts.push_back(static_cast<int>(b));
      displs.push_back(static_cast<int>(at));
      at += b;
    }
    MPI_Allgatherv(mine, counts[static_cast<size_t>(rank_)], MPI_BYTE, all, counts.data(),
                   displs.data(), MPI_BYTE, comm_);
  }
  void reduce_scatter_block(const void* send, void* recv, size_t count, DataType t,
                            Op op) override {
    if (count > INT_MAX) throw Error("reduce_scatter: a block of more than 2^31 elements");
    MPI_Reduce_scatter_block(send, recv, static_cast<int>(count), mpi_type(t), mpi_op(op), comm_);
  }
  void barrier() override { MPI_Barrier(comm_); }
  void* native() override { return &comm_; }

 private:
  MPI_Comm comm_;
  std::unique_ptr<SharedMeet> shared_;  // null: meet through MPI
  int rank_ = 0, size_ = 1;
  bool abandoned_ = false;
};

}  // namespace

MpiInterNode::MpiInterNode(MPI_Comm world, bool shared_meet) : shared_meet_(shared_meet) {
  MPI_Comm_dup(world, &handshake_);
  MPI_Comm_dup(world, &parent_);
  MPI_Comm_rank(world, &rank_);
}

MpiInterNode::~MpiInterNode() {
  MPI_Comm_free(&handshake_);
  MPI_Comm_free(&parent_);
}

Expected<std::unique_ptr<NodeComm>> MpiInterNode::connect(const ObjectId& group,
                                                          const std::vector<int>& ranks,
                                                          const std::atomic<bool>& broken) {
  const int tag = group_tag(group);
  // Handshake: a message to and from every other rank of the group, so that
  // MPI_Comm_create_group (which cannot be abandoned) starts only once all
  // of them are here.
  const uint64_t mine = ObjectIdHash{}(group);
  std::vector<uint64_t> theirs(ranks.size());
  std::vector<MPI_Request> recvs, sends;
  for (size_t k = 0; k < ranks.size(); ++k) {
    if (ranks[k] == rank_) continue;
    recvs.emplace_back();
    MPI_Irecv(&theirs[k], 1, MPI_UINT64_T, ranks[k], tag, handshake_, &recvs.back());
    sends.emplace_back();
    MPI_Isend(&mine, 1, MPI_UINT64_T, ranks[k], tag, handshake_, &sends.back());
  }
  auto all_done = [](std::vector<MPI_Request>& reqs) {
    int flag = 1;
    if (!reqs.empty())
      MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &flag, MPI_STATUSES_IGNORE);
    return flag != 0;
  };
  if (!poll_until([&] { return all_done(recvs) && all_done(sends); }, broken)) {
    for (auto& r : recvs) {
      if (r == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    for (auto& s : sends)  // small messages: sent eagerly, or dropped with the request
      if (s != MPI_REQUEST_NULL) MPI_Request_free(&s);
    return Status{Errc::kAborted, "the group broke before its node ranks met"};
  }
  for (size_t k = 0; k < ranks.size(); ++k)
    if (ranks[k] != rank_ && theirs[k] != mine)
      PRISM_LOG_WARN("group {}: rank {} answered another group's handshake (tag collision)",
                     group.to_string(), ranks[k]);
  MPI_Group world_group, sub;
  MPI_Comm_group(parent_, &world_group);
  MPI_Group_incl(world_group, static_cast<int>(ranks.size()), ranks.data(), &sub);
  MPI_Comm comm;
  const int rc = MPI_Comm_create_group(parent_, sub, tag, &comm);
  MPI_Group_free(&sub);
  MPI_Group_free(&world_group);
  if (rc != MPI_SUCCESS || comm == MPI_COMM_NULL)
    return Status{Errc::kInternal, "MPI_Comm_create_group failed for group " + group.to_string()};
  auto shared = shared_meet_ ? SharedMeet::create(comm) : nullptr;
  if (rank_ == ranks.front())
    PRISM_LOG_INFO("group {}: its {} node ranks meet {}", group.to_string(), ranks.size(),
                   shared ? "in shared memory" : "through MPI");
  return std::unique_ptr<NodeComm>(std::make_unique<MpiNodeComm>(comm, std::move(shared)));
}

}  // namespace prism::groups
