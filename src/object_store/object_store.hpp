// ObjectStore: the node rank's in-memory store of sealed (immutable) objects
// too large to travel inside messages. Each object's memory is registered with
// the transport while it is in memory, so other ranks pull it with one RDMA
// get and the holder's CPU is not involved in the transfer.
//
// Memory pressure: when a new object does not fit in `capacity`, objects no
// reader holds (least recently used first) are spilled to HDF5 files in the
// spill directory; acquire() restores a spilled object transparently, spilling
// others if needed. An object that cannot fit even then is an error naming the
// sizes. Readers pin an object by holding the shared_ptr acquire() returns:
// pinned objects are never spilled, so their bytes and registration stay valid.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/ids.hpp"
#include "common/status.hpp"
#include "transport/transport.hpp"

namespace prism::object_store {

/// One sealed object's bytes in memory, registered for remote reads.
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
  uint64_t objects = 0;  // in memory
  uint64_t bytes_in_use = 0;
  uint64_t capacity = 0;
  uint64_t peak_bytes = 0;
  uint64_t objects_spilled = 0;  // on disk now
  uint64_t bytes_spilled = 0;
  uint64_t spill_writes = 0, restores = 0;  // since start
  uint64_t bytes_spilled_total = 0;         // written to disk since start
};

class ObjectStore {
 public:
  /// capacity: bytes this store may hold in memory (0 = unlimited).
  /// spill_dir: where spilled objects go ("" = spilling disabled).
  ObjectStore(transport::Transport& transport, uint64_t capacity, std::string spill_dir = {})
      : transport_(transport), capacity_(capacity), spill_dir_(std::move(spill_dir)) {}
  ~ObjectStore();

  /// Seals `data` as object `id` (registered for remote reads), spilling
  /// others if needed. kOutOfMemory names the sizes when it cannot fit.
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> seal(const ObjectId& id,
                                                                   std::vector<std::byte> data);
  /// The object, restored from disk if it was spilled; the returned pointer
  /// pins it in memory. kNotFound if absent; kOutOfMemory if it cannot be
  /// restored (everything else pinned).
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> acquire(const ObjectId& id);
  /// Forgets the object (in memory or on disk); returns whether it was there.
  /// Readers still holding it keep their bytes.
  bool erase(const ObjectId& id);

  StoreStats stats() const;

 private:
  struct Slot {
    std::shared_ptr<StoredObject> in_memory;  // null while spilled
    uint64_t size = 0;
    std::string spill_file;             // set while spilled
    std::list<ObjectId>::iterator lru;  // position in lru_ while in memory
  };
  // Frees room for `size` more bytes by spilling unpinned objects. Requires mu_.
  Status make_room_locked(uint64_t size, const ObjectId& for_id);
  Status spill_locked(const ObjectId& id, Slot& slot);
  void touch_locked(Slot& slot, const ObjectId& id);

  transport::Transport& transport_;
  const uint64_t capacity_;
  const std::string spill_dir_;
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, Slot, ObjectIdHash> objects_;
  std::list<ObjectId> lru_;  // in-memory objects, least recently used first
  uint64_t bytes_ = 0, peak_ = 0, spilled_bytes_ = 0, spilled_objects_ = 0;
  uint64_t spill_writes_ = 0, restores_ = 0, spilled_total_ = 0;
};

}  // namespace prism::object_store
