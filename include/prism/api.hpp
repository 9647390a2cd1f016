// Futures API and the entry point.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "prism/object_ref.hpp"
#include "prism/serialization.hpp"

namespace prism {

/// Starts the runtime on every rank, runs `driver` on the driver (the first
/// node rank) and returns the process exit code once the driver returns and
/// every rank has shut down: 0, or 1 when `driver` threw (its message goes to
/// stderr and every rank exits 1). Consumes `--prism-*` flags from argv.
/// Collective: call once, from main(), on every rank.
/// Example: `int main(int c, char** v) { return prism::run(c, v, [] { ... }); }`
int run(int& argc, char** argv, const std::function<void()>& driver);

/// Blocks until the object is ready and returns a copy of its value. A task's
/// exception is rethrown as TaskError. Inside a task, the worker's CPU slot is
/// lent out while it blocks, so nested tasks cannot deadlock a full node.
/// Thread-safe.
template <class T>
T get(const ObjectRef<T>& ref) {
  if (!ref.valid()) throw Error("get() of an invalid (default-constructed) ObjectRef");
  detail::ValueBytes v = detail::get_encoded(ref.handle());
  detail::DecodeScope from(ref.handle());  // refs inside are borrowed out of `ref`'s value
  return detail::decode<T>(v.bytes);
}

/// A read-only, zero-copy view of a contiguous object (trivially copyable T,
/// or a std::vector / std::string of such elements): on the node that holds
/// the object it points into the object store itself. The bytes stay valid
/// while the view lives. Thread-safe. Example:
///   auto v = prism::get_view(ref);   // ref: ObjectRef<std::vector<double>>
///   double first = v.data()[0]; size_t n = v.size();
template <class E>
class View {
 public:
  View(std::span<const E> s, std::shared_ptr<const void> keep) : s_(s), keep_(std::move(keep)) {}
  const E* data() const noexcept { return s_.data(); }
  size_t size() const noexcept { return s_.size(); }
  const E& operator[](size_t i) const { return s_[i]; }
  auto begin() const noexcept { return s_.begin(); }
  auto end() const noexcept { return s_.end(); }
  std::span<const E> span() const noexcept { return s_; }

 private:
  std::span<const E> s_;
  std::shared_ptr<const void> keep_;
};

template <class T>
auto get_view(const ObjectRef<T>& ref) {
  static_assert(detail::is_zero_copy_v<T>,
                "get_view needs a trivially copyable type or a vector/string of one");
  if (!ref.valid()) throw Error("get_view() of an invalid (default-constructed) ObjectRef");
  detail::ValueBytes v = detail::get_encoded(ref.handle());
  auto payload = detail::payload_of<T>(v.bytes);
  if constexpr (detail::is_raw_v<T>) {
    if (payload.size() != sizeof(T))
      throw SerializationError("value of type " + detail::type_name<T>() + " has the wrong size");
    return View<T>({reinterpret_cast<const T*>(payload.data()), 1}, v.keep_alive);
  } else {
    using E = typename detail::contiguous<T>::element;
    if (payload.size() % sizeof(E) != 0)
      throw SerializationError("value of type " + detail::type_name<T>() +
                               " has a partial element");
    return View<E>({reinterpret_cast<const E*>(payload.data()), payload.size() / sizeof(E)},
                   v.keep_alive);
  }
}

/// get() of every ref, in order.
template <class T>
std::vector<T> get(const std::vector<ObjectRef<T>>& refs) {
  std::vector<T> out;
  out.reserve(refs.size());
  for (const auto& r : refs) out.push_back(get(r));
  return out;
}

/// Stores `value` in the object store and returns its ref. Thread-safe.
/// Example: `auto big = prism::put(std::vector<double>(1 << 20));`
template <class T>
ObjectRef<std::decay_t<T>> put(T&& value) {
  using D = std::decay_t<T>;
  static_assert(!is_object_ref_v<D>, "put() of an ObjectRef: pass the ref itself instead");
  if constexpr (detail::contiguous<D>::value ||
                (detail::is_raw_v<D> && sizeof(D) > detail::kDirectPutMinBytes)) {
    // Large raw bytes: copied once, straight into the store (same encoding).
    const uint64_t fp = detail::type_fingerprint<D>();
    const auto* header = reinterpret_cast<const std::byte*>(&fp);
    std::span<const std::byte> payload;
    if constexpr (detail::contiguous<D>::value)
      payload = {reinterpret_cast<const std::byte*>(value.data()),
                 value.size() * sizeof(typename detail::contiguous<D>::element)};
    else
      payload = {reinterpret_cast<const std::byte*>(&value), sizeof(D)};
    return ObjectRef<D>(detail::put_contiguous({header, sizeof fp}, payload));
  } else {
    detail::RefCapture refs;  // refs inside the value live as long as the object
    auto bytes = detail::encode<D>(value);
    return ObjectRef<D>(detail::put_encoded(std::move(bytes), refs.take()));
  }
}

/// Ray's wait: returns {ready, not_ready}, each in the order given, once
/// `num_returns` refs are ready or `timeout` passes. `ready` holds at most
/// num_returns refs. Thread-safe.
/// Example: `auto [done, rest] = prism::wait(refs, 1, std::chrono::milliseconds(10));`
template <class T, class Rep = int64_t, class Period = std::micro>
std::pair<std::vector<ObjectRef<T>>, std::vector<ObjectRef<T>>> wait(
    const std::vector<ObjectRef<T>>& refs, size_t num_returns = 1,
    std::chrono::duration<Rep, Period> timeout = std::chrono::microseconds(-1)) {
  if (num_returns > refs.size()) throw Error("wait(): num_returns exceeds the number of refs");
  std::vector<detail::HandlePtr> handles;
  handles.reserve(refs.size());
  for (const auto& r : refs) {
    if (!r.valid()) throw Error("wait() on an invalid (default-constructed) ObjectRef");
    handles.push_back(r.handle());
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  std::vector<bool> ready =
      detail::wait_handles(handles, num_returns, timeout.count() < 0 ? -1 : us);
  std::pair<std::vector<ObjectRef<T>>, std::vector<ObjectRef<T>>> out;
  for (size_t i = 0; i < refs.size(); ++i) (ready[i] ? out.first : out.second).push_back(refs[i]);
  return out;
}

/// Memory of the calling process's node rank, for monitoring and tests.
struct MemoryStats {
  uint64_t objects_in_store = 0;  ///< sealed objects held in this node's store
  uint64_t bytes_in_store = 0;
  uint64_t store_capacity = 0;
  uint64_t objects_spilled = 0;  ///< currently on disk (HDF5), restored on demand
  uint64_t bytes_spilled = 0;
  uint64_t tracked_objects = 0;  ///< objects this process owns or borrows
};
/// Example: `auto m = prism::memory_stats(); std::printf("%lu\n", m.bytes_in_store);`
MemoryStats memory_stats();

/// GPU ids granted to the calling task (options .num_gpus); empty outside a
/// task or when it asked for none. When Prism is built with CUDA the task's
/// thread already has the first one as its current device.
std::vector<int> gpu_ids();

/// One node rank as the scheduler sees it: what it offers tasks (totals, not
/// what is free now).
struct NodeInfo {
  int node = 0;         ///< node index (0 .. num_nodes()-1)
  double num_cpus = 0;  ///< CPU slots: worker threads (docs/running.md, "Cores")
  double num_gpus = 0;
  uint64_t memory = 0;                       ///< bytes offered to tasks' memory reservations
  std::map<std::string, double> resources;  ///< custom resources
};
/// Every node rank of the job, in node order (Ray's ray.nodes()). Thread-safe.
/// Example: `for (const auto& n : prism::nodes()) std::printf("%d: %g\n", n.node, n.num_cpus);`
std::vector<NodeInfo> nodes();

/// Number of node ranks (nodes that run tasks) in this job.
int num_nodes();
/// The node this code runs on (0 .. num_nodes()-1); the driver is on node 0.
int node_id();
/// The world rank of this process (for logs and tests).
int world_rank();
/// Inside a task: how many times it ran before this run (0 on its first
/// run; docs/fault-tolerance.md, "Task retries"). Outside a task: 0.
int attempt();

}  // namespace prism
