#include "common/block_pool.hpp"

#include <algorithm>

namespace prism {

BlockPool::BlockPool(size_t size, size_t align, size_t keep_bytes)
    : size_(size),
      align_(std::max(align, alignof(std::max_align_t))),
      keep_(std::max<size_t>(keep_bytes / std::max<size_t>(size, 1), 1)) {}

BlockPool::~BlockPool() {
  for (void* p : free_) ::operator delete(p, std::align_val_t{align_});
}

void* BlockPool::allocate() {
  {
    std::lock_guard lk(mu_);
    if (!free_.empty()) {
      void* p = free_.back();
      free_.pop_back();
      return p;
    }
  }
  return ::operator new(size_, std::align_val_t{align_});
}

void BlockPool::deallocate(void* p) noexcept {
  give(&p, 1);
}

size_t BlockPool::take(void** out, size_t n) {
  std::lock_guard lk(mu_);
  const size_t k = std::min(n, free_.size());
  std::copy(free_.end() - static_cast<std::ptrdiff_t>(k), free_.end(), out);
  free_.resize(free_.size() - k);
  return k;
}

void BlockPool::give(void* const* in, size_t n) noexcept {
  size_t kept = 0;
  {
    std::lock_guard lk(mu_);
    try {
      for (; kept < n && free_.size() < keep_; ++kept) free_.push_back(in[kept]);
    } catch (...) {  // no room to remember them: the rest go back below
    }
  }
  for (size_t i = kept; i < n; ++i) ::operator delete(in[i], std::align_val_t{align_});
}

void* BlockPool::fresh() {
  return ::operator new(size_, std::align_val_t{align_});
}

size_t BlockPool::kept() const {
  std::lock_guard lk(mu_);
  return free_.size();
}

}  // namespace prism
