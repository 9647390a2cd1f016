#include "group/reduce.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace prism::groups {
namespace {

// Integer sums and products wrap around, as in two's complement (and in
// MPI's own reductions), instead of overflowing signed types: that would be
// undefined behaviour.
template <class T>
T plus(T a, T b) noexcept {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <class T>
T times(T a, T b) noexcept {
  if constexpr (std::is_integral_v<T>) {
    // uint8 and uint16 would be promoted to int (and overflow): multiply in
    // at least unsigned int.
    using U = std::common_type_t<std::make_unsigned_t<T>, unsigned>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

template <class T>
void combine(Op op, T* dst, const T* src, size_t n) noexcept {
  switch (op) {
    case Op::kSum:
      for (size_t i = 0; i < n; ++i) dst[i] = plus(dst[i], src[i]);
      break;
    case Op::kProd:
      for (size_t i = 0; i < n; ++i) dst[i] = times(dst[i], src[i]);
      break;
    case Op::kMin:
      for (size_t i = 0; i < n; ++i) dst[i] = std::min(dst[i], src[i]);
      break;
    case Op::kMax:
      for (size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
      break;
  }
}

template <class T>
void combine_bytes(Op op, void* dst, const void* src, size_t n) noexcept {
  combine(op, static_cast<T*>(dst), static_cast<const T*>(src), n);
}

}  // namespace

size_t size_of(DataType t) noexcept {
  switch (t) {
    case DataType::kInt8:
    case DataType::kUint8:
      return 1;
    case DataType::kInt32:
    case DataType::kUint32:
    case DataType::kFloat:
      return 4;
    case DataType::kInt64:
    case DataType::kUint64:
    case DataType::kDouble:
      return 8;
  }
  return 1;
}

const char* name_of(DataType t) noexcept {
  switch (t) {
    case DataType::kInt8:
      return "int8";
    case DataType::kUint8:
      return "uint8";
    case DataType::kInt32:
      return "int32";
    case DataType::kUint32:
      return "uint32";
    case DataType::kInt64:
      return "int64";
    case DataType::kUint64:
      return "uint64";
    case DataType::kFloat:
      return "float";
    case DataType::kDouble:
      return "double";
  }
  return "?";
}

const char* name_of(detail::CollectiveKind k) noexcept {
  switch (k) {
    case detail::CollectiveKind::kAllreduce:
      return "allreduce";
    case detail::CollectiveKind::kBroadcast:
      return "broadcast";
    case detail::CollectiveKind::kAllgather:
      return "allgather";
    case detail::CollectiveKind::kReduceScatter:
      return "reduce_scatter";
    case detail::CollectiveKind::kBarrier:
      return "barrier";
  }
  return "?";
}

void reduce_into(DataType t, Op op, void* dst, const void* src, size_t count) noexcept {
  switch (t) {
    case DataType::kInt8:
      return combine_bytes<int8_t>(op, dst, src, count);
    case DataType::kUint8:
      return combine_bytes<uint8_t>(op, dst, src, count);
    case DataType::kInt32:
      return combine_bytes<int32_t>(op, dst, src, count);
    case DataType::kUint32:
      return combine_bytes<uint32_t>(op, dst, src, count);
    case DataType::kInt64:
      return combine_bytes<int64_t>(op, dst, src, count);
    case DataType::kUint64:
      return combine_bytes<uint64_t>(op, dst, src, count);
    case DataType::kFloat:
      return combine_bytes<float>(op, dst, src, count);
    case DataType::kDouble:
      return combine_bytes<double>(op, dst, src, count);
  }
}

}  // namespace prism::groups
