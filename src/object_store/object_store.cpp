#include "object_store/object_store.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "object_store/spill_file.hpp"

namespace prism::object_store {

ObjectStore::~ObjectStore() {
  for (auto& [id, slot] : objects_)
    if (!slot.spill_file.empty()) std::remove(slot.spill_file.c_str());
}

void ObjectStore::touch_locked(Slot& slot, const ObjectId& id) {
  lru_.erase(slot.lru);
  slot.lru = lru_.insert(lru_.end(), id);
}

Status ObjectStore::spill_locked(const ObjectId& id, Slot& slot) {
  std::error_code ec;
  std::filesystem::create_directories(spill_dir_, ec);
  const std::string path = spill_dir_ + "/" + std::to_string(id.owner_rank) + "-" +
                           std::to_string(id.seq) + "-" + std::to_string(id.index) + ".h5";
  PRISM_RETURN_IF_ERROR(write_spill_file(path, slot.in_memory->bytes()));
  slot.spill_file = path;
  auto victim = std::move(slot.in_memory);  // unpinned: this was the last reference
  lru_.erase(slot.lru);
  bytes_ -= slot.size;
  live_bytes_changed_locked();
  victim.reset();  // after the bound grew: its buffer may stay in the pool
  spilled_bytes_ += slot.size;
  ++spilled_objects_;
  ++spill_writes_;
  spilled_total_ += slot.size;
  return Status::ok();
}

Status ObjectStore::make_room_locked(uint64_t size, const ObjectId& for_id) {
  if (!capacity_ || bytes_ + size <= capacity_) return Status::ok();
  auto too_big = [&](const std::string& why) {
    return Status{Errc::kOutOfMemory,
                  "object " + for_id.to_string() + " of " + std::to_string(size) +
                      " bytes does not fit in the object store (capacity " +
                      std::to_string(capacity_) + " bytes, " + std::to_string(bytes_) + " in use" +
                      why + "); raise --prism-store-capacity"};
  };
  if (size > capacity_) return too_big(", the object alone exceeds it");
  if (spill_dir_.empty()) return too_big(", spilling disabled");
  for (auto it = lru_.begin(); it != lru_.end() && bytes_ + size > capacity_;) {
    const ObjectId victim = *it++;  // advance first: spilling unlinks it
    auto& slot = objects_.at(victim);
    if (slot.in_memory.use_count() > 1) continue;  // pinned by a reader or a transfer
    PRISM_RETURN_IF_ERROR(spill_locked(victim, slot));
  }
  if (bytes_ + size > capacity_) {
    Status st = too_big(", every other object is pinned by readers");
    return {Errc::kBusy, st.message()};  // room comes back as readers let go
  }
  return Status::ok();
}

Expected<std::shared_ptr<const StoredObject>> ObjectStore::seal(const ObjectId& id,
                                                                std::vector<std::byte> data) {
  const uint64_t size = data.size();
  auto buffer = pool_.adopt(std::move(data));
  if (!buffer) return buffer.status();
  return seal(id, std::move(buffer.value()), size);
}

Expected<std::shared_ptr<const StoredObject>> ObjectStore::seal(const ObjectId& id, Buffer buffer,
                                                                uint64_t size) {
  return seal_or_keep(id, buffer, size);
}

Expected<std::shared_ptr<const StoredObject>> ObjectStore::seal_or_keep(const ObjectId& id,
                                                                        Buffer& buffer,
                                                                        uint64_t size) {
  if (size > buffer.capacity())
    return Status{Errc::kInvalidArgument,
                  id.to_string() + ": " + std::to_string(size) + " bytes do not fit its buffer"};
  std::lock_guard lk(mu_);
  if (objects_.count(id)) return Status{Errc::kInvalidArgument, id.to_string() + " already sealed"};
  PRISM_RETURN_IF_ERROR(make_room_locked(size, id));
  auto obj = std::make_shared<StoredObject>(std::move(buffer), size);
  Slot slot;
  slot.in_memory = obj;
  slot.size = size;
  slot.lru = lru_.insert(lru_.end(), id);
  objects_.emplace(id, std::move(slot));
  bytes_ += size;
  peak_ = std::max(peak_, bytes_);
  live_bytes_changed_locked();
  return std::shared_ptr<const StoredObject>(obj);
}

Expected<std::shared_ptr<const StoredObject>> ObjectStore::acquire(const ObjectId& id) {
  std::lock_guard lk(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    if (auto l = lost_.find(id); l != lost_.end()) return Status{Errc::kLost, l->second};
    return Status{Errc::kNotFound, id.to_string() + " is not in this store"};
  }
  auto& slot = it->second;
  if (slot.in_memory) {
    touch_locked(slot, id);
    return std::shared_ptr<const StoredObject>(slot.in_memory);
  }
  // Restore: room first (may spill others), then read the file back into a
  // pooled buffer (often the very one spilling freed).
  PRISM_RETURN_IF_ERROR(make_room_locked(slot.size, id));
  auto buffer = pool_.acquire(slot.size);
  if (!buffer) return buffer.status();
  if (Status st = read_spill_file(slot.spill_file, {buffer->data(), slot.size}); !st) {
    // The only copy is gone (the file was deleted or damaged under the job):
    // the object leaves the store, and its owner makes it again or fails it.
    const std::string why = "its only copy is gone: " + st.message();
    std::remove(slot.spill_file.c_str());
    spilled_bytes_ -= slot.size;
    --spilled_objects_;
    objects_.erase(it);
    lost_[id] = why;
    return Status{Errc::kLost, why};
  }
  auto obj = std::make_shared<StoredObject>(std::move(buffer.value()), slot.size);
  std::remove(slot.spill_file.c_str());
  slot.spill_file.clear();
  slot.in_memory = obj;
  slot.lru = lru_.insert(lru_.end(), id);
  bytes_ += slot.size;
  peak_ = std::max(peak_, bytes_);
  live_bytes_changed_locked();
  spilled_bytes_ -= slot.size;
  --spilled_objects_;
  ++restores_;
  return std::shared_ptr<const StoredObject>(obj);
}

bool ObjectStore::erase(const ObjectId& id) {
  std::shared_ptr<StoredObject> victim;  // destroyed after the lock is released
  std::lock_guard lk(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return lost_.erase(id) > 0;
  auto& slot = it->second;
  if (slot.in_memory) {
    bytes_ -= slot.size;
    lru_.erase(slot.lru);
    live_bytes_changed_locked();
    victim = std::move(slot.in_memory);
  } else {
    std::remove(slot.spill_file.c_str());
    spilled_bytes_ -= slot.size;
    --spilled_objects_;
  }
  objects_.erase(it);
  return true;
}

std::vector<ObjectId> ObjectStore::ids() const {
  std::lock_guard lk(mu_);
  std::vector<ObjectId> out;
  out.reserve(objects_.size());
  for (const auto& [id, slot] : objects_) out.push_back(id);
  return out;
}

StoreStats ObjectStore::stats() const {
  std::lock_guard lk(mu_);
  StoreStats st{lru_.size(),    bytes_,        capacity_, peak_,          spilled_objects_,
                spilled_bytes_, spill_writes_, restores_, spilled_total_, {}};
  st.pool = pool_.stats();
  return st;
}

}  // namespace prism::object_store
