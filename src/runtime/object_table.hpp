// ObjectTable: the NodeRuntime's table of the objects a process knows about,
// keyed by ObjectId.
//
// Most entries are objects this process owns, and their ids are dense: the
// sequence numbers of put and submit come from one per-process counter. So
// owned return-index-0 ids live in a window indexed by seq - base (a deque,
// appended at the back and trimmed at the front as the oldest objects are
// freed); everything else (borrowed objects, and the rare owned object left
// behind the window) lives in a hash map. A put then costs an append to the
// window instead of a hash-map node allocation and a cache-missing bucket walk
// over hundreds of thousands of entries.
//
// Invariant: an owned index-0 id with seq >= base_ is only ever in the window,
// one with seq < base_ only in the map (base_ only grows).
//
// Not thread-safe: the NodeRuntime guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

#include "common/block_pool.hpp"
#include "common/ids.hpp"

namespace prism::runtime {

template <class Ptr>  // a nullable, movable handle to an entry (shared_ptr)
class ObjectTable {
 public:
  explicit ObjectTable(uint32_t self_rank) : self_(self_rank) {}

  /// The entry of `id`, or nullptr.
  Ptr* find(const ObjectId& id) {
    if (in_window(id)) {
      Ptr& p = window_[id.seq - base_];
      return p ? &p : nullptr;
    }
    auto it = others_.find(id);
    return it == others_.end() ? nullptr : &it->second;
  }
  bool contains(const ObjectId& id) const {
    if (in_window(id)) return static_cast<bool>(window_[id.seq - base_]);
    return others_.count(id) > 0;
  }
  /// The entry slot of `id`, created empty (null) if absent: the caller fills it.
  Ptr& slot(const ObjectId& id) {
    if (windowed(id) && id.seq >= base_) {
      // An empty window restarts at `id`. Otherwise sparse ids (the GCS
      // agent's few task entries among a million calls) each allocated, and
      // freed again, every slot of the gap behind them: ~4% of a 1:1 async
      // actor benchmark's samples, in malloc.
      if (window_.empty()) base_ = id.seq;
      const uint64_t at = id.seq - base_;
      if (at >= window_.size()) window_.resize(at + 1);
      Ptr& p = window_[at];
      if (!p) ++window_live_;  // counted now: callers always fill a fresh slot
      return p;
    }
    return others_[id];
  }
  /// Removes the entry of `id`; returns whether it was there.
  bool erase(const ObjectId& id) {
    if (!in_window(id)) return others_.erase(id) > 0;
    Ptr& p = window_[id.seq - base_];
    if (!p) return false;
    p = Ptr();
    --window_live_;
    trim();
    return true;
  }
  size_t size() const noexcept { return window_live_ + others_.size(); }
  /// Slots the window spans, empty ones included (for tests).
  size_t window_slots() const noexcept { return window_.size(); }
  /// Calls f(id, entry) for every entry (rare: a node rank was lost).
  template <class F>
  void for_each(F&& f) {
    for (size_t i = 0; i < window_.size(); ++i)
      if (window_[i]) f(ObjectId{self_, 0, base_ + i}, window_[i]);
    for (auto& [id, p] : others_) f(id, p);
  }

 private:
  bool windowed(const ObjectId& id) const noexcept {
    return id.owner_rank == self_ && id.index == 0;
  }
  bool in_window(const ObjectId& id) const noexcept {
    return windowed(id) && id.seq >= base_ && id.seq - base_ < window_.size();
  }
  // Drops freed slots at the front. When long-lived objects at the front keep
  // a mostly empty window alive, they move to the map so the window's memory
  // stays proportional to the live objects in it.
  void trim() {
    while (!window_.empty() && !window_.front()) pop_front();
    if (window_.size() < kMinCompactSize || window_live_ * 4 >= window_.size()) return;
    while (!window_.empty() && window_live_ * 2 < window_.size()) {
      if (window_.front()) {
        others_.emplace(ObjectId{self_, 0, base_}, std::move(window_.front()));
        --window_live_;
      }
      pop_front();
    }
  }
  void pop_front() {
    window_.pop_front();
    ++base_;
  }

  static constexpr size_t kMinCompactSize = 4096;
  const uint32_t self_;
  uint64_t base_ = 1;  // seq of window_[0] (seq 0 is the nil id)
  PooledDeque<Ptr> window_;
  size_t window_live_ = 0;
  std::unordered_map<ObjectId, Ptr, ObjectIdHash> others_;
};

}  // namespace prism::runtime
