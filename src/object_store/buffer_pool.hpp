// BufferPool: recycles the memory of large objects.
//
// Why: on this class of machine a fresh gigabyte costs ~0.7 s of first-touch
// page faults (the kernel zeroes and maps every page) against ~0.15 s to copy
// into memory already mapped, and every fresh buffer must also be registered
// with the transport. Ray's plasma store avoids both with one preallocated
// arena; Prism keeps the buffers of freed objects (and of readers' copies)
// instead, mapped and registered, and hands them to the next object of a
// similar size. Idle buffers are bounded (`max_idle_bytes`, the option
// --prism-store-reuse-bytes): beyond it the oldest idle buffers are unmapped.
//
// A Buffer returns itself to its pool when destroyed; buffers and the pool
// share the pool's state, so a buffer may outlive the pool object.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/status.hpp"
#include "transport/transport.hpp"

namespace prism::object_store {

struct PoolStats {
  uint64_t idle_buffers = 0, idle_bytes = 0;  // kept for reuse now
  uint64_t reuses = 0, fresh = 0;             // acquisitions since start
  uint64_t dropped = 0;                       // buffers unmapped: over the bound
};

class BufferPool;

/// Memory registered with the transport, owned by one object or reader at a
/// time. Move-only; destroying it hands the memory back to its pool.
class Buffer {
 public:
  Buffer() noexcept;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer();

  std::byte* data() const noexcept;
  size_t capacity() const noexcept;
  const transport::MemoryRegion& region() const noexcept;
  explicit operator bool() const noexcept { return block_ != nullptr; }

  struct Block;   // the memory and its registration
  struct Shared;  // the pool's state

 private:
  friend class BufferPool;
  Buffer(std::unique_ptr<Block> block, std::shared_ptr<Shared> pool);
  void release() noexcept;

  std::unique_ptr<Block> block_;
  std::shared_ptr<Shared> pool_;
};

class BufferPool {
 public:
  /// max_idle_bytes: most bytes of idle buffers kept (0: keep none).
  BufferPool(transport::Transport& transport, uint64_t max_idle_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// A registered buffer of at least `size` bytes: an idle one whose capacity
  /// is close to `size` if there is one, else freshly mapped.
  [[nodiscard]] Expected<Buffer> acquire(size_t size);
  /// Registers `bytes` (no copy) as a buffer that joins the pool when freed.
  [[nodiscard]] Expected<Buffer> adopt(std::vector<std::byte> bytes);
  /// Changes the bound on idle bytes, unmapping the oldest idle buffers
  /// beyond it.
  void set_max_idle(uint64_t bytes);
  /// Unmaps every idle buffer.
  void clear() { set_max_idle(0); }

  PoolStats stats() const;

 private:
  std::shared_ptr<Buffer::Shared> shared_;
};

}  // namespace prism::object_store
