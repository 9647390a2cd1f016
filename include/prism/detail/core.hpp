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
  explicit ObjectHandle(ObjectIdPod id, void* entry = nullptr, uint64_t runtime = 0) noexcept
      : id_(id), entry_(entry), runtime_(runtime) {}
  ~ObjectHandle();
  ObjectHandle(const ObjectHandle&) = delete;
  ObjectHandle& operator=(const ObjectHandle&) = delete;
  const ObjectIdPod& id() const noexcept { return id_; }
  /// Runtime-private: the runtime's record of the object, which lives at
  /// least as long as this handle, and which runtime instance made it.
  void* entry() const noexcept { return entry_; }
  uint64_t runtime() const noexcept { return runtime_; }

 private:
  ObjectIdPod id_;
  void* entry_;
  uint64_t runtime_;
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
  std::vector<HandlePtr> contained = {};  ///< kValue: refs serialized inside `value`
};

/// Collects the refs serialized on this thread while it lives (the innermost
/// capture wins), so a value's contained refs live as long as the value does
/// instead of for the whole job. Not copyable; stack-scoped.
class RefCapture {
 public:
  RefCapture() noexcept;
  ~RefCapture();
  RefCapture(const RefCapture&) = delete;
  RefCapture& operator=(const RefCapture&) = delete;
  void add(const HandlePtr& h) { refs_.push_back(h); }
  std::vector<HandlePtr> take() noexcept { return std::move(refs_); }

 private:
  std::vector<HandlePtr> refs_;
  RefCapture* outer_;
};

/// While it lives, refs decoded on this thread were pinned for the trip by
/// `sender` (the submitter of a task whose argument value contained them).
class RefSenderScope {
 public:
  explicit RefSenderScope(int32_t sender) noexcept;
  ~RefSenderScope();
  RefSenderScope(const RefSenderScope&) = delete;
  RefSenderScope& operator=(const RefSenderScope&) = delete;

 private:
  int32_t outer_;
};
int32_t current_ref_sender() noexcept;

/// While it lives, refs decoded on this thread come out of the value of
/// `outer` (a get()): the runtime keeps `outer` until the owners of those refs
/// have counted this rank as a borrower, so the value's owner cannot drop the
/// last other ref to them first. Stack-scoped.
class DecodeScope {
 public:
  explicit DecodeScope(const HandlePtr& outer) noexcept;
  ~DecodeScope();
  DecodeScope(const DecodeScope&) = delete;
  DecodeScope& operator=(const DecodeScope&) = delete;

 private:
  ObjectIdPod saved_;
};

/// An argument as the executing side sees it.
struct ArgValue {
  bool is_ref = false;  ///< true: `ref` names the object; `bytes` is empty
  ObjectIdPod ref;
  int32_t ref_sender = -1;  ///< the rank that sent the ref (its transit pin is released)
  std::span<const std::byte> bytes;
};

// Implemented in the runtime (src/api). All throw prism::Error subclasses.
struct RemoteFunctionInfo;
HandlePtr submit_task(const RemoteFunctionInfo& function, std::vector<TaskArg> args,
                      const TaskOptions& options);
HandlePtr put_encoded(std::vector<std::byte> encoded, std::vector<HandlePtr> contained = {});
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
/// Records that a reference is being serialized: into the innermost
/// RefCapture, or, outside any, by keeping the object for the job.
void note_shared(const HandlePtr& handle);
/// "obj:<owner>.<seq>.<index>"
std::string object_id_string(const ObjectIdPod& id);

}  // namespace prism::detail
