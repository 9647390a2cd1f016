#include "object_store/object_store.hpp"

#include <algorithm>

namespace prism::object_store {

StoredObject::~StoredObject() {
  if (region_.handle) transport_->deregister_memory(region_);
}

Status StoredObject::register_memory() {
  if (data_.empty()) return Status::ok();
  auto r = transport_->register_memory(data_.data(), data_.size());
  if (!r) return r.status();
  region_ = std::move(r.value());
  return Status::ok();
}

Expected<std::shared_ptr<const StoredObject>> ObjectStore::seal(const ObjectId& id,
                                                                 std::vector<std::byte> data) {
  const uint64_t size = data.size();
  {
    std::lock_guard lk(mu_);
    if (objects_.count(id)) return Status{Errc::kInvalidArgument, id.to_string() + " already sealed"};
    if (capacity_ && bytes_ + size > capacity_)
      return Status{Errc::kOutOfMemory,
                    "object " + id.to_string() + " of " + std::to_string(size) +
                        " bytes does not fit in the object store (" + std::to_string(bytes_) +
                        " of " + std::to_string(capacity_) + " bytes in use)"};
    bytes_ += size;  // reserve before the (slow) registration
    peak_ = std::max(peak_, bytes_);
  }
  auto obj = std::make_shared<StoredObject>(std::move(data), &transport_);
  if (Status st = obj->register_memory(); !st) {
    std::lock_guard lk(mu_);
    bytes_ -= size;
    return st;
  }
  std::lock_guard lk(mu_);
  objects_.emplace(id, obj);
  return std::shared_ptr<const StoredObject>(obj);
}

std::shared_ptr<const StoredObject> ObjectStore::lookup(const ObjectId& id) const {
  std::lock_guard lk(mu_);
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : it->second;
}

bool ObjectStore::erase(const ObjectId& id) {
  std::shared_ptr<StoredObject> victim;  // destroyed outside the lock
  std::lock_guard lk(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return false;
  bytes_ -= it->second->bytes().size();
  victim = std::move(it->second);
  objects_.erase(it);
  return true;
}

StoreStats ObjectStore::stats() const {
  std::lock_guard lk(mu_);
  return {objects_.size(), bytes_, capacity_, peak_};
}

}  // namespace prism::object_store
