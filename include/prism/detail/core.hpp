// The type-erased boundary between the header templates and the compiled
// runtime. Users never call these directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "prism/options.hpp"

namespace prism::detail {

/// Object identity on the wire: owner rank, owner-local sequence, return index.
struct ObjectIdPod {
  uint32_t owner_rank = 0;
  uint32_t index = 0;
  uint64_t seq = 0;
};

/// One reference held by user code. Its destruction releases the reference
/// (the owner frees the object when none remain). Thread-safe.
class ObjectHandle {
 public:
  explicit ObjectHandle(ObjectIdPod id) noexcept : id_(id) {}
  ~ObjectHandle();
  ObjectHandle(const ObjectHandle&) = delete;
  ObjectHandle& operator=(const ObjectHandle&) = delete;
  const ObjectIdPod& id() const noexcept { return id_; }

 private:
  ObjectIdPod id_;
};
using HandlePtr = std::shared_ptr<ObjectHandle>;

/// Encoded bytes of an object and whatever keeps them alive (a store buffer,
/// a received message): a zero-copy view for as long as keep_alive lives.
struct ValueBytes {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> keep_alive;
};

/// One argument of a submitted task.
struct TaskArg {
  enum class Kind : uint8_t {
    kValue,       ///< `value` holds the encoded argument
    kResolveRef,  ///< the task receives the value of `ref` once it is ready
    kPassRef,     ///< the task receives `ref` itself (an ObjectRef parameter)
  };
  Kind kind = Kind::kValue;
  std::vector<std::byte> value;
  HandlePtr ref;
};

/// An argument as the executing side sees it.
struct ArgValue {
  bool is_ref = false;  ///< true: `ref` names the object; `bytes` is empty
  ObjectIdPod ref;
  int32_t ref_sender = -1;  ///< the rank that sent the ref (its transit pin is released)
  std::span<const std::byte> bytes;
};

// Implemented in the runtime (src/api). All throw prism::Error subclasses.
HandlePtr submit_task(const char* function_name, std::vector<TaskArg> args,
                      const TaskOptions& options);
HandlePtr put_encoded(std::vector<std::byte> encoded);
/// put() of a contiguous value given as its type header and payload bytes:
/// the runtime copies both once, straight into the object's final place (a
/// store buffer for a large value), with no intermediate encoding buffer.
HandlePtr put_contiguous(std::span<const std::byte> header, std::span<const std::byte> payload);
ValueBytes get_encoded(const HandlePtr& handle);
/// ready[i] is set for the first `num_returns` ready handles (in order) once
/// that many are ready or the timeout (microseconds, <0: none) passes.
std::vector<bool> wait_handles(const std::vector<HandlePtr>& handles, size_t num_returns,
                               int64_t timeout_us);
/// A handle for a reference that arrived inside a value or an argument.
/// `sender`: the rank that pinned the ref for the trip (-1: none).
HandlePtr borrow_handle(ObjectIdPod id, int32_t sender = -1);
/// Records that a reference is being serialized (it may reach another rank).
void note_shared(const ObjectIdPod& id) noexcept;
/// "obj:<owner>.<seq>.<index>"
std::string object_id_string(const ObjectIdPod& id);

}  // namespace prism::detail
