// Element-wise combining for the collectives (members of a group on one
// node rank are combined in memory before node ranks meet).
#pragma once

#include <cstddef>
#include <string>

#include "prism/collective.hpp"

namespace prism::groups {

using detail::DataType;
using Op = collective::Op;

size_t size_of(DataType t) noexcept;
const char* name_of(DataType t) noexcept;                // "float"
const char* name_of(detail::CollectiveKind k) noexcept;  // "allreduce"
/// dst[i] = dst[i] op src[i] for `count` elements of type t.
void reduce_into(DataType t, Op op, void* dst, const void* src, size_t count) noexcept;

}  // namespace prism::groups
