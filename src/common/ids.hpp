// Identifiers of tasks and objects.
//
// An ObjectId names its owner (the rank whose process submitted the creating
// task or called put) and a sequence number unique on that owner, so any rank
// can find an object's owner without asking the GCS (Ray's ownership design).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace prism {

struct ObjectId {
  uint32_t owner_rank = 0;  // world rank of the owner
  uint32_t index = 0;       // return index within the creating task (0 for put)
  uint64_t seq = 0;         // owner-local sequence number; 0 = nil

  bool is_nil() const noexcept { return seq == 0; }
  friend bool operator==(const ObjectId&, const ObjectId&) = default;
  friend auto operator<=>(const ObjectId&, const ObjectId&) = default;
  /// "obj:3.17.0"
  std::string to_string() const {
    return "obj:" + std::to_string(owner_rank) + "." + std::to_string(seq) + "." +
           std::to_string(index);
  }
};

/// A task is named by the id of its first return object's (owner, seq).
using TaskId = ObjectId;

struct ObjectIdHash {
  size_t operator()(const ObjectId& id) const noexcept {
    uint64_t h = id.seq * 0x9E3779B97F4A7C15ull;
    h ^= (static_cast<uint64_t>(id.owner_rank) << 32 | id.index) + 0x7F4A7C15ull + (h << 6) +
         (h >> 2);
    return static_cast<size_t>(h);
  }
};

}  // namespace prism
