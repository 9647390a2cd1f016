// Collectives between the members of an actor group (prism/group.hpp) or the
// ranks of an MPI task, called from inside their methods (docs/mpi-interop.md):
//
//   class Worker {
//    public:
//     std::vector<float> step() {
//       std::vector<float> g = compute();
//       prism::collective::allreduce(std::span<float>(g));  // sum over the group
//       return g;
//     }
//   };
//
// As in MPI, every member calls the same collectives in the same order, and
// the k-th collective one member calls meets the k-th of every other
// member. A member whose method fails (an exception escapes it, or the
// actor dies) breaks its group: the collectives the others wait in, and any
// later one, fail with an error naming that member, instead of hanging.
// Members on one node rank combine in memory; node ranks meet over an MPI
// communicator made for the group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace prism::collective {

/// How allreduce and reduce_scatter combine values, element by element.
enum class Op : uint8_t { kSum, kProd, kMin, kMax };

}  // namespace prism::collective

namespace prism::detail {

enum class CollectiveKind : uint8_t {
  kAllreduce,
  kBroadcast,
  kAllgather,
  kReduceScatter,
  kBarrier
};
enum class DataType : uint8_t { kInt8, kUint8, kInt32, kUint32, kInt64, kUint64, kFloat, kDouble };

template <class T>
constexpr DataType data_type_of() {
  using U = std::remove_cv_t<T>;
  static_assert(
      std::is_arithmetic_v<U> && !std::is_same_v<U, bool> && !std::is_same_v<U, long double>,
      "collectives take spans of integers, float or double");
  if constexpr (std::is_floating_point_v<U>) {
    return sizeof(U) == 4 ? DataType::kFloat : DataType::kDouble;
  } else if constexpr (sizeof(U) == 1) {
    return std::is_signed_v<U> ? DataType::kInt8 : DataType::kUint8;
  } else if constexpr (sizeof(U) == 4) {
    return std::is_signed_v<U> ? DataType::kInt32 : DataType::kUint32;
  } else {
    static_assert(sizeof(U) == 8, "collectives take 1-, 4- or 8-byte integers");
    return std::is_signed_v<U> ? DataType::kInt64 : DataType::kUint64;
  }
}

/// One member's part of a collective. `count`: elements of `send` (allreduce,
/// broadcast: of the buffer; allgather: this member's piece; reduce_scatter:
/// this member's block, the input holding size() blocks).
struct CollectiveRequest {
  CollectiveKind kind = CollectiveKind::kBarrier;
  DataType type = DataType::kUint8;
  collective::Op op = collective::Op::kSum;
  int root = 0;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
};

// The runtime (src/api). Throw prism::Error outside a group member, on a
// broken group, or on mismatched calls.
void run_collective(const CollectiveRequest& request);
int group_rank();
int group_size();

}  // namespace prism::detail

namespace prism::collective {

/// The calling member's index in its group (0 .. size()-1).
inline int rank() {
  return detail::group_rank();
}
/// The number of members of the calling member's group.
inline int size() {
  return detail::group_size();
}

/// Every member's `data` becomes the element-wise `op` of all members' data
/// (same length everywhere).
template <class T>
void allreduce(std::span<T> data, Op op = Op::kSum) {
  detail::run_collective({detail::CollectiveKind::kAllreduce, detail::data_type_of<T>(), op, 0,
                          data.data(), data.data(), data.size()});
}

/// Every member's `data` becomes member `root`'s.
template <class T>
void broadcast(std::span<T> data, int root) {
  detail::run_collective({detail::CollectiveKind::kBroadcast, detail::data_type_of<T>(), Op::kSum,
                          root, data.data(), data.data(), data.size()});
}

/// `all` (size() * mine.size() elements) receives every member's `mine`,
/// member i's at i * mine.size().
template <class T>
void allgather(std::span<const T> mine, std::span<T> all);

/// `data` holds size() blocks of mine.size() elements; member i's `mine`
/// becomes the element-wise `op` over all members of block i.
template <class T>
void reduce_scatter(std::span<const T> data, std::span<T> mine, Op op = Op::kSum);

/// Returns once every member called it.
inline void barrier() {
  detail::run_collective({});
}

// ---- implementation ----
void check_block_sizes(const char* what, size_t big, size_t small);  // src/api

template <class T>
void allgather(std::span<const T> mine, std::span<T> all) {
  check_block_sizes("allgather", all.size(), mine.size());
  detail::run_collective({detail::CollectiveKind::kAllgather, detail::data_type_of<T>(), Op::kSum,
                          0, mine.data(), all.data(), mine.size()});
}

template <class T>
void reduce_scatter(std::span<const T> data, std::span<T> mine, Op op) {
  check_block_sizes("reduce_scatter", data.size(), mine.size());
  detail::run_collective({detail::CollectiveKind::kReduceScatter, detail::data_type_of<T>(), op, 0,
                          data.data(), mine.data(), mine.size()});
}

}  // namespace prism::collective
