// ObjectRef<T>: a future for a value held by the distributed object store.
#pragma once

#include <boost/serialization/split_member.hpp>
#include <memory>
#include <string>
#include <utility>

#include "prism/detail/core.hpp"

namespace prism {

/// A reference to an immutable object: the result of a task or of put().
/// Copy it freely; pass it to tasks (a `T` parameter receives the value once
/// it is ready, an `ObjectRef<T>` parameter receives the reference); return it
/// from tasks. The object lives while any ObjectRef to it exists.
/// Example: `prism::ObjectRef<int> r = prism::put(42); int v = prism::get(r);`
/// Thread-safe to copy and destroy from any thread.
template <class T>
class ObjectRef {
 public:
  using value_type = T;

  ObjectRef() = default;
  explicit ObjectRef(detail::HandlePtr handle) : handle_(std::move(handle)) {}

  /// False for a default-constructed ref.
  bool valid() const noexcept { return handle_ != nullptr; }
  /// A printable id, e.g. "obj:0.17.0".
  std::string id() const { return valid() ? detail::object_id_string(handle_->id()) : "obj:nil"; }
  const detail::HandlePtr& handle() const noexcept { return handle_; }

  friend bool operator==(const ObjectRef& a, const ObjectRef& b) noexcept {
    if (!a.handle_ || !b.handle_) return a.handle_ == b.handle_;
    const auto &x = a.handle_->id(), &y = b.handle_->id();
    return x.owner_rank == y.owner_rank && x.seq == y.seq && x.index == y.index;
  }

  // Boost.Serialization: a ref inside a value travels as its id.
  template <class Archive>
  void save(Archive& ar, const unsigned int) const {
    detail::ObjectIdPod id = handle_ ? handle_->id() : detail::ObjectIdPod{};
    if (handle_) detail::note_shared(handle_);
    ar << id.owner_rank << id.index << id.seq;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int) {
    detail::ObjectIdPod id;
    ar >> id.owner_rank >> id.index >> id.seq;
    handle_ = id.seq == 0 ? nullptr : detail::borrow_handle(id, detail::current_ref_sender());
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()

 private:
  detail::HandlePtr handle_;
};

template <class T>
struct is_object_ref : std::false_type {};
template <class T>
struct is_object_ref<ObjectRef<T>> : std::true_type {};
template <class T>
inline constexpr bool is_object_ref_v = is_object_ref<T>::value;

}  // namespace prism
