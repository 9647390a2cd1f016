// Actor checkpoints: an actor class that can save and load its state is
// restarted from its last checkpoint instead of from its constructor
// (docs/fault-tolerance.md, "Actor restarts").
//
//   class Counter {
//    public:
//     int add(int k) { return n_ += k; }
//     void save_checkpoint(prism::Checkpoint& cp) const { cp.write("n", n_); }
//     void load_checkpoint(const prism::Checkpoint& cp) { n_ = cp.read<int>("n"); }
//    private:
//     int n_ = 0;
//   };
//
// A checkpoint is an HDF5 group (in an in-memory HDF5 file that travels to
// the actor's owner): write() makes a dataset per name, read() reads it
// back; hdf5_group() gives the group's hid_t for HDF5 calls of your own
// (attributes, chunked or compound datasets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "prism/errors.hpp"

namespace prism {

/// The element types a Checkpoint stores natively.
enum class CheckpointType : uint8_t { kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64, kF32, kF64 };

namespace detail {
template <class T>
constexpr CheckpointType checkpoint_type() {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>,
                "a Checkpoint stores integers and floating-point numbers (and strings)");
  if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "long double is not stored");
    return sizeof(T) == 4 ? CheckpointType::kF32 : CheckpointType::kF64;
  } else {
    constexpr bool s = std::is_signed_v<T>;
    if constexpr (sizeof(T) == 1) return s ? CheckpointType::kI8 : CheckpointType::kU8;
    if constexpr (sizeof(T) == 2) return s ? CheckpointType::kI16 : CheckpointType::kU16;
    if constexpr (sizeof(T) == 4) return s ? CheckpointType::kI32 : CheckpointType::kU32;
    if constexpr (sizeof(T) == 8) return s ? CheckpointType::kI64 : CheckpointType::kU64;
  }
}
}  // namespace detail

/// One actor's saved state: named datasets in an HDF5 group. Made by the
/// runtime and handed to the class's save_checkpoint / load_checkpoint;
/// not copyable. Errors (a missing name, a type or size that does not
/// match) throw prism::Error naming the dataset.
class Checkpoint {
 public:
  /// Wraps the HDF5 group `group` (an hid_t), which the caller keeps open.
  explicit Checkpoint(int64_t group) : group_(group) {}
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  /// A number, or an array of them.
  template <class T>
  void write(std::string_view name, const T& value) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      write_string(name, value);
    } else {
      write_array(name, detail::checkpoint_type<T>(), &value, 1, /*scalar=*/true);
    }
  }
  template <class T>
  void write(std::string_view name, std::span<const T> values) {
    write_array(name, detail::checkpoint_type<T>(), values.data(), values.size(), false);
  }
  template <class T>
  void write(std::string_view name, const std::vector<T>& values) {
    write(name, std::span<const T>(values));
  }
  void write_string(std::string_view name, std::string_view text);

  /// The number written under `name`.
  template <class T>
  T read(std::string_view name) const {
    T v{};
    read_array(name, detail::checkpoint_type<T>(), &v, 1, /*scalar=*/true);
    return v;
  }
  /// The array written under `name`.
  template <class T>
  std::vector<T> read_vector(std::string_view name) const {
    std::vector<T> v(size(name));
    read_array(name, detail::checkpoint_type<T>(), v.data(), v.size(), false);
    return v;
  }
  std::string read_string(std::string_view name) const;

  /// Whether a dataset `name` was written.
  bool contains(std::string_view name) const;
  /// How many elements (bytes for a string) the dataset `name` holds.
  size_t size(std::string_view name) const;
  /// The group's hid_t, for HDF5 calls of your own.
  int64_t hdf5_group() const noexcept { return group_; }

 private:
  void write_array(std::string_view name, CheckpointType type, const void* data, size_t n,
                   bool scalar);
  void read_array(std::string_view name, CheckpointType type, void* data, size_t n,
                  bool scalar) const;
  int64_t group_;
};

namespace detail {
/// A class with both hooks is checkpointed; with one of them it does not compile.
template <class C>
concept SavesCheckpoints = requires(const C& c, Checkpoint& cp) {
  c.save_checkpoint(cp);
};
template <class C>
concept LoadsCheckpoints = requires(C& c, const Checkpoint& cp) {
  c.load_checkpoint(cp);
};

using CheckpointSaver = void (*)(const void* instance, Checkpoint& cp);
using CheckpointLoader = void (*)(void* instance, const Checkpoint& cp);
}  // namespace detail

}  // namespace prism
