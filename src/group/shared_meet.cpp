#include "group/shared_meet.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "group/polling.hpp"

namespace prism::groups {

struct alignas(64) SharedMeet::Line {
  std::atomic<uint64_t> seq[2];  // which meet each slot holds (0: none yet)
  uint64_t signature[2];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared between processes");

std::unique_ptr<SharedMeet> SharedMeet::create(MPI_Comm comm) {
  int rank = 0, size = 0, local_size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  MPI_Comm local;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  if (local_size != size) return nullptr;  // the same answer on every rank
  // The lines, then each rank's two data slots (by parity, as the lines').
  const size_t bytes = static_cast<size_t>(size) * (sizeof(Line) + 2 * kSmallBytes);
  // Rank 0 makes the segment and names it to the others; it is unlinked once
  // all have mapped it (nothing stays in /dev/shm, even if the job dies).
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

SharedMeet::SharedMeet(std::byte* base, size_t bytes, int rank, int size)
    : lines_(reinterpret_cast<Line*>(base)), bytes_(bytes), rank_(rank), size_(size) {}

SharedMeet::~SharedMeet() {
  munmap(lines_, bytes_);
}

std::byte* SharedMeet::part(int rank, size_t slot) const {
  auto* data = reinterpret_cast<std::byte*>(lines_ + size_);
  return data + (static_cast<size_t>(rank) * 2 + slot) * kSmallBytes;
}

Status SharedMeet::meet(uint64_t signature, const std::atomic<bool>& broken) {
  size_t slot = 0;
  return publish_and_wait(signature, nullptr, 0, broken, slot);
}

Status SharedMeet::meet_allreduce(uint64_t signature, void* data, size_t count, DataType t, Op op,
                                  const std::atomic<bool>& broken) {
  const size_t bytes = count * size_of(t);
  size_t slot = 0;
  PRISM_RETURN_IF_ERROR(publish_and_wait(signature, data, bytes, broken, slot));
  std::memcpy(data, part(0, slot), bytes);
  for (int r = 1; r < size_; ++r) reduce_into(t, op, data, part(r, slot), count);
  return Status::ok();
}

// Publishes this rank's meet n (its signature, and `bytes` of `data` into its
// slot), waits until every rank has, and compares the signatures.
Status SharedMeet::publish_and_wait(uint64_t signature, const void* data, size_t bytes,
                                    const std::atomic<bool>& broken, size_t& slot) {
  const uint64_t n = ++meets_;
  slot = n & 1;
  Line& mine = lines_[rank_];
  mine.signature[slot] = signature;
  if (bytes > 0) std::memcpy(part(rank_, slot), data, bytes);
  mine.seq[slot].store(n, std::memory_order_release);
  int arrived = 0;  // ranks below this one have published meet n
  const bool met = poll_until(
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

}  // namespace prism::groups
