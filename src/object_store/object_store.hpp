// ObjectStore: the node rank's in-memory store of sealed (immutable) objects
// too large to travel inside messages. Each object's memory is registered with
// the transport while it is in memory, so other ranks pull it with one RDMA
// get and the holder's CPU is not involved in the transfer.
//
// Memory: objects live in Buffers from a BufferPool (buffer_pool.hpp), so
// the memory of a freed object, already mapped and registered, serves the next
// object of a similar size; readers' copies of remote objects (allocate())
// come from the same pool. Capacity and bytes_in_use count live objects only;
// idle pooled buffers are reported apart (pool_idle_bytes).
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

#include <algorithm>
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
#include "object_store/buffer_pool.hpp"
#include "transport/transport.hpp"

namespace prism::object_store {

/// One sealed object's bytes in memory, registered for remote reads. Its
/// buffer returns to the pool when the last holder lets go.
class StoredObject {
 public:
  StoredObject(Buffer buffer, uint64_t size) : buffer_(std::move(buffer)), size_(size) {}
  StoredObject(const StoredObject&) = delete;
  StoredObject& operator=(const StoredObject&) = delete;

  std::span<const std::byte> bytes() const noexcept { return {buffer_.data(), size_}; }
  const transport::MemoryRegion& region() const noexcept { return buffer_.region(); }

 private:
  Buffer buffer_;
  uint64_t size_;
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
  PoolStats pool;                           // idle buffers kept for reuse (not in use)
};

class ObjectStore {
 public:
  /// capacity: bytes this store may hold in memory (0 = unlimited).
  /// spill_dir: where spilled objects go ("" = spilling disabled).
  /// reuse_bytes: most bytes of freed buffers kept for reuse (BufferPool).
  ObjectStore(transport::Transport& transport, uint64_t capacity, std::string spill_dir = {},
              uint64_t reuse_bytes = 0)
      : capacity_(capacity),
        spill_dir_(std::move(spill_dir)),
        reuse_bytes_(reuse_bytes),
        pool_(transport, max_idle_locked()) {}
  ~ObjectStore();

  /// A registered buffer of at least `size` bytes to fill, then seal(), or to
  /// hold a reader's copy of a remote object. Not counted in the store until
  /// sealed; returns to the pool when dropped. Example:
  ///   auto buf = store.allocate(n); std::memcpy(buf->data(), src, n);
  ///   auto obj = store.seal(id, std::move(*buf), n);
  [[nodiscard]] Expected<Buffer> allocate(uint64_t size) { return pool_.acquire(size); }
  /// `data` as a registered buffer to seal, keeping its memory (no copy).
  [[nodiscard]] Expected<Buffer> adopt(std::vector<std::byte> data) {
    return pool_.adopt(std::move(data));
  }
  /// Seals the first `size` bytes of `buffer` as object `id`, spilling others
  /// if needed. kOutOfMemory names the sizes when it cannot fit (the buffer
  /// then returns to the pool).
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> seal(const ObjectId& id,
                                                                   Buffer buffer, uint64_t size);
  /// Seals `data` as object `id`, keeping its memory (no copy).
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> seal(const ObjectId& id,
                                                                   std::vector<std::byte> data);
  /// seal() for a caller that may wait: the store takes `buffer` only when
  /// the seal succeeds. kBusy says only readers' pins stand in the way (room
  /// comes back as they let go): try again. Room is made and taken under one
  /// lock: room seen free by a separate check could be taken by another
  /// thread's seal or restore before this one's.
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> seal_or_keep(const ObjectId& id,
                                                                           Buffer& buffer,
                                                                           uint64_t size);
  /// The object, restored from disk if it was spilled; the returned pointer
  /// pins it in memory. kNotFound if absent; kOutOfMemory if it cannot be
  /// restored (everything else pinned); kLost if its spill file is gone or
  /// unreadable (the object is then no longer in the store).
  [[nodiscard]] Expected<std::shared_ptr<const StoredObject>> acquire(const ObjectId& id);
  /// Forgets the object (in memory or on disk); returns whether it was there.
  /// Readers still holding it keep their bytes.
  bool erase(const ObjectId& id);
  /// The ids of the objects held now (in memory or on disk).
  std::vector<ObjectId> ids() const;

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
  // Idle pooled bytes allowed now: within what live objects leave of the
  // capacity, so live + idle memory stays within it. Requires mu_.
  uint64_t max_idle_locked() const {
    if (!capacity_) return reuse_bytes_;
    return std::min(reuse_bytes_, capacity_ - std::min(bytes_, capacity_));
  }
  // After bytes_ changed. Requires mu_.
  void live_bytes_changed_locked() { pool_.set_max_idle(max_idle_locked()); }

  const uint64_t capacity_;
  const std::string spill_dir_;
  const uint64_t reuse_bytes_;
  uint64_t bytes_ = 0;  // live objects in memory (mu_)
  BufferPool pool_;     // declared before objects_: outlives every StoredObject it lends to
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, Slot, ObjectIdHash> objects_;
  // Objects whose spill file was gone, and why: later readers get kLost too
  // (not kNotFound) until the owner frees the id (erase).
  std::unordered_map<ObjectId, std::string, ObjectIdHash> lost_;
  std::list<ObjectId> lru_;  // in-memory objects, least recently used first
  uint64_t peak_ = 0, spilled_bytes_ = 0, spilled_objects_ = 0;
  uint64_t spill_writes_ = 0, restores_ = 0, spilled_total_ = 0;
};

}  // namespace prism::object_store
