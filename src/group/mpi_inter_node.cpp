#include "group/mpi_inter_node.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "common/log.hpp"
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

// Polls `done` until it is true or `broken` turns true. MPI progresses only
// inside MPI calls, and a blocking MPI collective would spin all along: for
// the first few milliseconds this spins too (yielding the core to whoever
// needs it), then naps briefly between polls, so that a member waiting long
// for the others does not hold a core (an idle rank must sleep), and still
// hears them within ~100 us.
bool poll(const std::function<bool()>& done, const std::atomic<bool>& broken) {
  using Clock = std::chrono::steady_clock;
  const auto spin_until = Clock::now() + std::chrono::milliseconds(5);
  auto nap = std::chrono::microseconds(0);
  for (int round = 0;; ++round) {
    if (done()) return true;
    if (broken.load(std::memory_order_acquire)) return false;
    if ((round & 63) != 63 || Clock::now() < spin_until) {
      std::this_thread::yield();
    } else {
      nap = std::min(std::chrono::microseconds(100), nap + std::chrono::microseconds(10));
      std::this_thread::sleep_for(nap);
    }
  }
}

// MPI counts are ints: a large buffer goes in pieces.
constexpr size_t kMaxChunk = size_t{1} << 30;

// ---- meeting in shared memory -------------------------------------------------
// Node ranks of a group that all share a host meet through a segment mapped
// by each of them: one cache line per rank, where a rank publishes the
// signature of its n-th collective under n, then reads everyone's. Why: the
// MPI meet (an Iallreduce of two numbers) made a barrier between 4 node
// ranks on 2 cores cost 51-81 us, this one 10-22 us (MPI_Barrier: 13-26 us),
// and a 1 KiB allreduce 0.063-0.078 ms, now 0.039-0.042 (docs/mpi-interop.md).
// Two slots per line (and per rank's data, see kSmallBytes), by the parity
// of n: a rank can be at most one meet ahead of the slowest (it cannot pass
// meet n+1 before everyone published n+1, which each does only after
// reading meet n), so slot n % 2 is not overwritten while anyone still
// reads it. Nothing is left pending when a
// meet is abandoned, and unmapping is local: a broken group frees it all
// (not so an MPI shared window: MPI_Win_free is collective).
struct alignas(64) MeetLine {
  std::atomic<uint64_t> seq[2];  // which meet each slot holds (0: none yet)
  uint64_t signature[2];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared between processes");

class SharedMeet {
 public:
  // An allreduce of at most this many bytes goes with the meet: each rank
  // publishes its part with its signature and combines all parts itself, so
  // a small allreduce costs one meeting and no MPI call. Why 4 KiB: there
  // each rank's combining is still far below MPI's own latency here.
  static constexpr size_t kSmallBytes = 4096;

  // Collective over `comm`. nullptr where its ranks do not all share a host
  // or the segment could not be made on one of them (the MPI meet serves).
  static std::unique_ptr<SharedMeet> create(MPI_Comm comm) {
    int rank = 0, size = 0, local_size = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    MPI_Comm local;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
    if (local_size != size) return nullptr;  // the same answer on every rank
    // The lines, then each rank's two data slots (by parity, as the lines').
    const size_t bytes = static_cast<size_t>(size) * (sizeof(MeetLine) + 2 * kSmallBytes);
    // Rank 0 makes, maps and initializes the segment, then names it to the
    // others; it is unlinked once all have mapped it (nothing stays in
    // /dev/shm, even if the job dies later).
    std::array<char, 64> name{};
    void* map = MAP_FAILED;
    int fd = -1;
    if (rank == 0) {
      static std::atomic<uint64_t> made{0};
      std::snprintf(name.data(), name.size(), "/prism-meet-%d-%llu", static_cast<int>(getpid()),
                    static_cast<unsigned long long>(made.fetch_add(1)));
      fd = shm_open(name.data(), O_CREAT | O_EXCL | O_RDWR, 0600);
      if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        close(fd);
        shm_unlink(name.data());
        fd = -1;
      }
      if (fd < 0) name[0] = '\0';
    }
    MPI_Bcast(name.data(), static_cast<int>(name.size()), MPI_CHAR, 0, comm);
    if (rank != 0 && name[0] != '\0') fd = shm_open(name.data(), O_RDWR, 0);
    if (fd >= 0) {
      map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
    }
    // (ftruncate zero-fills: every slot reads "no meet yet".)
    int ok = map != MAP_FAILED ? 1 : 0, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
    if (rank == 0 && name[0] != '\0') shm_unlink(name.data());
    if (!all) {
      if (ok) munmap(map, bytes);
      return nullptr;
    }
    return std::unique_ptr<SharedMeet>(
        new SharedMeet(static_cast<std::byte*>(map), bytes, rank, size));
  }
  ~SharedMeet() { munmap(lines_, bytes_); }
  SharedMeet(const SharedMeet&) = delete;
  SharedMeet& operator=(const SharedMeet&) = delete;

  Status meet(uint64_t signature, const std::atomic<bool>& broken) {
    size_t slot = 0;
    return publish_and_wait(signature, nullptr, 0, broken, slot);
  }

  // `count` elements at `data`, at most kSmallBytes: every rank combines the
  // parts in rank order, so all get the same result (as from MPI_Allreduce).
  Status meet_allreduce(uint64_t signature, void* data, size_t count, DataType t, Op op,
                        const std::atomic<bool>& broken) {
    const size_t bytes = count * size_of(t);
    size_t slot = 0;
    PRISM_RETURN_IF_ERROR(publish_and_wait(signature, data, bytes, broken, slot));
    std::memcpy(data, part(0, slot), bytes);
    for (int r = 1; r < size_; ++r) reduce_into(t, op, data, part(r, slot), count);
    return Status::ok();
  }

 private:
  SharedMeet(std::byte* base, size_t bytes, int rank, int size)
      : lines_(reinterpret_cast<MeetLine*>(base)), bytes_(bytes), rank_(rank), size_(size) {}

  std::byte* part(int rank, size_t slot) const {
    auto* data = reinterpret_cast<std::byte*>(lines_ + size_);
    return data + (static_cast<size_t>(rank) * 2 + slot) * kSmallBytes;
  }

  // Publishes this rank's meet n (signature, and `bytes` of `data` into its
  // slot), waits until every rank has, and compares the signatures.
  Status publish_and_wait(uint64_t signature, const void* data, size_t bytes,
                          const std::atomic<bool>& broken, size_t& slot) {
    const uint64_t n = ++meets_;
    slot = n & 1;
    MeetLine& mine = lines_[rank_];
    mine.signature[slot] = signature;
    if (bytes > 0) std::memcpy(part(rank_, slot), data, bytes);
    mine.seq[slot].store(n, std::memory_order_release);
    int arrived = 0;  // ranks below this one have published meet n
    const bool met = poll(
        [&] {
          while (arrived < size_ && lines_[arrived].seq[slot].load(std::memory_order_acquire) == n)
            ++arrived;
          return arrived == size_;
        },
        broken);
    if (!met) return {Errc::kAborted, "the group broke"};
    for (int r = 0; r < size_; ++r)
      if (lines_[r].signature[slot] != signature)
        return {Errc::kInvalidArgument, "members called different collectives"};
    return Status::ok();
  }

  MeetLine* lines_;
  size_t bytes_;
  int rank_, size_;
  uint64_t meets_ = 0;
};

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
    // (s, -s) is (max s, -min s), equal only if every rank sent the same s.
    // Its buffers are on the heap: an abandoned request (below) may still
    // read and write them later, so they are then leaked, not freed with
    // this frame.
    auto buffers = std::make_unique<std::array<int64_t, 4>>();
    int64_t* in = buffers->data();
    int64_t* out = buffers->data() + 2;
    in[0] = static_cast<int64_t>(signature >> 1);
    in[1] = -in[0];
    MPI_Request req;
    MPI_Iallreduce(in, out, 2, MPI_INT64_T, MPI_MAX, comm_, &req);
    const bool met = poll(
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
    if (out[0] != -out[1]) {
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
  if (!poll([&] { return all_done(recvs) && all_done(sends); }, broken)) {
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
