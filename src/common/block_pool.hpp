#pragma once
// Recycled memory for the runtime's per-task records.
//
// Why not plain new/delete: a driver submitting 100k tasks allocates a task
// record, an object entry, a handle and a queue entry per task on its thread,
// and a worker thread frees half of them; then the driver frees the rest in
// one sweep when it drops its refs. glibc's per-thread caches hold 7 blocks
// per size, so nearly every one of those calls goes to the arena (bin
// searches, consolidation): a third of the driver's time in
// bench_task_throughput. A free list per block size turns them into a push
// and a pop under an uncontended lock.
//
// Blocks are never returned to malloc while the free list holds fewer than
// its byte budget; beyond it they are. The pools live for the process
// (records may be freed during static destruction).
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace prism {

/// A free list of blocks of one size and alignment. Thread-safe.
class BlockPool {
 public:
  BlockPool(size_t size, size_t align, size_t keep_bytes);
  /// Frees the blocks on the free list (blocks still handed out stay with
  /// their holders). The process-wide pools are never destroyed; a pool of
  /// one's own (tests) otherwise leaked its free list (LeakSanitizer).
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  void* allocate();
  void deallocate(void* p) noexcept;

  /// Blocks waiting on the free list (for tests).
  size_t kept() const;

  static constexpr size_t kKeepBytes = size_t{64} << 20;  // per block size

  /// The process-wide pool for blocks of Size bytes aligned to Align.
  template <size_t Size, size_t Align>
  static BlockPool& of() {
    static BlockPool* pool = new BlockPool(Size, Align, kKeepBytes);  // never destroyed: see above
    return *pool;
  }

  /// A thread's cache in front of a pool: blocks move between it and the
  /// pool kBatch at a time, so threads that allocate what others free (the
  /// driver and its workers) take the pool's lock once per kBatch blocks,
  /// not once per block. Trivially destructible, so it stays usable while
  /// the thread exits (static destructors on the main thread); a Drain
  /// hands its blocks back at thread exit and sends later calls to the pool.
  class Cache {
   public:
    void* allocate(BlockPool& pool) {
      if (gone_) return pool.allocate();
      if (n_ == 0) n_ = pool.take(blocks_, kBatch);
      return n_ ? blocks_[--n_] : pool.fresh();
    }
    void deallocate(BlockPool& pool, void* p) noexcept {
      if (gone_) return pool.deallocate(p);
      if (n_ == kCapacity) {
        pool.give(blocks_ + (kCapacity - kBatch), kBatch);
        n_ -= kBatch;
      }
      blocks_[n_++] = p;
    }
    void drain(BlockPool& pool) noexcept {
      pool.give(blocks_, n_);
      n_ = 0;
      gone_ = true;
    }

   private:
    static constexpr size_t kBatch = 32, kCapacity = 2 * kBatch;
    void* blocks_[kCapacity];
    size_t n_;
    bool gone_;
  };

  template <size_t Size, size_t Align>
  static void* allocate_cached() {
    return cache<Size, Align>().allocate(of<Size, Align>());
  }
  template <size_t Size, size_t Align>
  static void deallocate_cached(void* p) noexcept {
    cache<Size, Align>().deallocate(of<Size, Align>(), p);
  }

 private:
  struct Drain {
    Cache& cache;
    BlockPool& pool;
    ~Drain() { cache.drain(pool); }
  };
  template <size_t Size, size_t Align>
  static Cache& cache() {
    thread_local Cache c{};  // zero-initialized, never destroyed
    thread_local Drain drain{c, of<Size, Align>()};
    (void)drain;
    return c;
  }

  size_t take(void** out, size_t n);             // up to n kept blocks
  void give(void* const* in, size_t n) noexcept;  // keeps or frees them
  void* fresh();                                  // a new block from operator new

  const size_t size_, align_, keep_;
  mutable std::mutex mu_;
  std::vector<void*> free_;
};

/// A stateless allocator whose single-object allocations come from the
/// BlockPool of their size, and so do arrays of kChunkBytes: std::deque's
/// chunks (libstdc++), so a deque used as a queue — which allocates a chunk
/// and frees one every few elements — takes them from a pool rather than
/// from the top of malloc's heap, which grew and shrank with page faults
/// each time (other arrays go to std::allocator). For std::allocate_shared,
/// node-based containers and queues (PooledDeque).
template <class T>
struct PoolAllocator {
  using value_type = T;
  static constexpr size_t kChunkBytes = 512;
  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    if (n == 1) return static_cast<T*>(BlockPool::allocate_cached<sizeof(T), alignof(T)>());
    if (n * sizeof(T) == kChunkBytes)
      return static_cast<T*>(BlockPool::allocate_cached<kChunkBytes, alignof(T)>());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n == 1)
      BlockPool::deallocate_cached<sizeof(T), alignof(T)>(p);
    else if (n * sizeof(T) == kChunkBytes)
      BlockPool::deallocate_cached<kChunkBytes, alignof(T)>(p);
    else
      std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

/// Deleter for objects made by make_pooled().
template <class T>
struct PoolDelete {
  void operator()(T* p) const noexcept {
    p->~T();
    PoolAllocator<T>().deallocate(p, 1);
  }
};
template <class T>
using PooledPtr = std::unique_ptr<T, PoolDelete<T>>;
/// A deque whose chunks come from the block pools (see PoolAllocator).
template <class T>
using PooledDeque = std::deque<T, PoolAllocator<T>>;

template <class T, class... Args>
PooledPtr<T> make_pooled(Args&&... args) {
  T* p = PoolAllocator<T>().allocate(1);
  try {
    ::new (static_cast<void*>(p)) T(std::forward<Args>(args)...);
  } catch (...) {
    PoolAllocator<T>().deallocate(p, 1);
    throw;
  }
  return PooledPtr<T>(p);
}

}  // namespace prism
