// ObjectStore: the node rank's in-memory store of sealed (immutable) objects
// too large to travel inside messages. Each object's memory is registered with
// the transport when sealed, so other ranks pull it with one RDMA get and the
// holder's CPU is not involved in the transfer.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "transport/transport.hpp"

namespace prism::object_store {

/// One sealed object. Readers hold a shared_ptr: the bytes stay valid (and
/// registered) while any reader holds it, even after erase().
class StoredObject {
 public:
  StoredObject(std::vector<std::byte> data, transport::Transport* transport)
      : data_(std::move(data)), transport_(transport) {}
  ~StoredObject();
  StoredObject(const StoredObject&) = delete;
  StoredObject& operator=(const StoredObject&) = delete;

  std::span<const std::byte> bytes() const noexcept { return data_; }
  const transport::MemoryRegion& region() const noexcept { return region_; }
  [[nodiscard]] Status register_memory();

 private:
  std::vector<std::byte> data_;
  transport::Transport* transport_;
  transport::MemoryRegion region_;
};

struct StoreStats {
  uint64_t objects = 0;
  uint64_t bytes_in_use = 0;
  uint64_t capacity = 0;
  uint64_t peak_bytes = 0;
  uint64_t objects_spilled = 0;  // on disk now
  uint64_t bytes_spilled = 0;
  uint64_t spill_writes = 0, restores = 0;  // since start
};

class ObjectStore {
 public:
  /// capacity: bytes this store may hold (0 = unlimited).
  ObjectStore(transport::Transport& transport, uint64_t capacity)
      : transport_(transport), capacity_(capacity) {}

  /// Seals `data` as object `id` and registers it for remote reads.
  /// Fails with kOutOfMemory (naming the sizes) when it does not fit.
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> seal(const ObjectId& id,
                                                                    std::vector<std::byte> data);
  /// nullptr if absent.
  std::shared_ptr<const StoredObject> lookup(const ObjectId& id) const;
  /// Drops the store's reference; returns whether the object was there.
  bool erase(const ObjectId& id);

  StoreStats stats() const;

 private:
  transport::Transport& transport_;
  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, std::shared_ptr<StoredObject>, ObjectIdHash> objects_;
  uint64_t bytes_ = 0, peak_ = 0;
};

}  // namespace prism::object_store
