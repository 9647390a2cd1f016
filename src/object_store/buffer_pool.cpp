#include "object_store/buffer_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace prism::object_store {

struct Buffer::Block {
  std::byte* data = nullptr;
  size_t capacity = 0;
  bool mapped = false;  // from mmap (else `adopted` owns the memory)
  std::vector<std::byte> adopted;
  transport::MemoryRegion region;
};

struct Buffer::Shared {
  transport::Transport* transport;
  uint64_t max_idle;
  std::mutex mu;
  // Idle blocks by capacity (best fit), and their age (oldest dropped first).
  std::multimap<size_t, std::list<std::unique_ptr<Block>>::iterator> by_size;
  std::list<std::unique_ptr<Block>> idle;  // oldest first
  uint64_t idle_bytes = 0;
  PoolStats counters;

  void destroy(std::unique_ptr<Block> b) noexcept {
    if (b->region.handle) transport->deregister_memory(b->region);
    if (b->mapped) ::munmap(b->data, b->capacity);
  }
  // Requires mu. Takes the oldest idle block out.
  std::unique_ptr<Block> pop_oldest_locked() {
    auto b = std::move(idle.front());
    auto range = by_size.equal_range(b->capacity);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == idle.begin()) {
        by_size.erase(it);
        break;
      }
    idle.pop_front();
    idle_bytes -= b->capacity;
    return b;
  }
};

Buffer::Buffer(std::unique_ptr<Block> block, std::shared_ptr<Shared> pool)
    : block_(std::move(block)), pool_(std::move(pool)) {}

Buffer::Buffer() noexcept = default;
Buffer::Buffer(Buffer&& other) noexcept = default;

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    block_ = std::move(other.block_);
    pool_ = std::move(other.pool_);
  }
  return *this;
}

Buffer::~Buffer() {
  release();
}

std::byte* Buffer::data() const noexcept {
  return block_ ? block_->data : nullptr;
}
size_t Buffer::capacity() const noexcept {
  return block_ ? block_->capacity : 0;
}
const transport::MemoryRegion& Buffer::region() const noexcept {
  static const transport::MemoryRegion none;
  return block_ ? block_->region : none;
}

// Back to the pool, unless keeping it would exceed the bound: then the oldest
// idle blocks go first (the newest is the one most likely still in cache and
// TLB), and a block larger than the whole bound is dropped itself.
void Buffer::release() noexcept {
  if (!block_) return;
  auto& s = *pool_;
  std::vector<std::unique_ptr<Block>> drop;  // unmapped outside the lock
  {
    std::lock_guard lk(s.mu);
    if (block_->capacity == 0 || block_->capacity > s.max_idle) {
      drop.push_back(std::move(block_));
    } else {
      while (s.idle_bytes + block_->capacity > s.max_idle) drop.push_back(s.pop_oldest_locked());
      const size_t cap = block_->capacity;
      s.idle.push_back(std::move(block_));
      s.by_size.emplace(cap, std::prev(s.idle.end()));
      s.idle_bytes += cap;
    }
    s.counters.dropped += drop.size();
  }
  for (auto& b : drop) s.destroy(std::move(b));
  block_.reset();
  pool_.reset();
}

BufferPool::BufferPool(transport::Transport& transport, uint64_t max_idle_bytes)
    : shared_(std::make_shared<Buffer::Shared>()) {
  shared_->transport = &transport;
  shared_->max_idle = max_idle_bytes;
}

BufferPool::~BufferPool() {
  clear();
}

void BufferPool::set_max_idle(uint64_t bytes) {
  std::vector<std::unique_ptr<Buffer::Block>> drop;
  {
    std::lock_guard lk(shared_->mu);
    shared_->max_idle = bytes;
    while (shared_->idle_bytes > bytes) drop.push_back(shared_->pop_oldest_locked());
    shared_->counters.dropped += drop.size();
  }
  for (auto& b : drop) shared_->destroy(std::move(b));
}

Expected<Buffer> BufferPool::acquire(size_t size) {
  auto& s = *shared_;
  {
    // Best fit, and no more than 1/8 (plus a page) larger than asked: a much
    // larger buffer would hold memory the object does not use.
    std::lock_guard lk(s.mu);
    auto it = s.by_size.lower_bound(size);
    if (it != s.by_size.end() && it->first <= size + size / 8 + 4096) {
      auto pos = it->second;
      std::unique_ptr<Buffer::Block> b = std::move(*pos);
      s.by_size.erase(it);
      s.idle.erase(pos);
      s.idle_bytes -= b->capacity;
      ++s.counters.reuses;
      return Buffer(std::move(b), shared_);
    }
    ++s.counters.fresh;
  }
  // mmap rather than new[]: the memory goes back to the system as soon as the
  // pool drops it, instead of staying in malloc's heap.
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t cap = std::max<size_t>(page, (size + page - 1) / page * page);
  void* p = ::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return Status{Errc::kOutOfMemory, "cannot map " + std::to_string(cap) +
                                          " bytes for an object: " + std::strerror(errno)};
  auto b = std::make_unique<Buffer::Block>();
  b->data = static_cast<std::byte*>(p);
  b->capacity = cap;
  b->mapped = true;
  auto r = s.transport->register_memory(b->data, cap);
  if (!r) {
    s.destroy(std::move(b));
    return r.status();
  }
  b->region = std::move(r.value());
  return Buffer(std::move(b), shared_);
}

Expected<Buffer> BufferPool::adopt(std::vector<std::byte> bytes) {
  auto b = std::make_unique<Buffer::Block>();
  b->data = bytes.data();
  b->capacity = bytes.capacity();
  b->adopted = std::move(bytes);  // moving a vector keeps its storage
  if (b->capacity) {
    auto r = shared_->transport->register_memory(b->data, b->capacity);
    if (!r) return r.status();
    b->region = std::move(r.value());
  }
  return Buffer(std::move(b), shared_);
}

PoolStats BufferPool::stats() const {
  std::lock_guard lk(shared_->mu);
  PoolStats st = shared_->counters;
  st.idle_buffers = shared_->idle.size();
  st.idle_bytes = shared_->idle_bytes;
  return st;
}

}  // namespace prism::object_store
