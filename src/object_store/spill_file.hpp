// One spilled object as an HDF5 file: a 1-D dataset "data" of bytes, plus the
// object's size as an attribute for inspection with h5dump.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::object_store {

[[nodiscard]] Status write_spill_file(const std::string& path, std::span<const std::byte> bytes);
/// Reads the object back into `into`, which must be exactly its size.
[[nodiscard]] Status read_spill_file(const std::string& path, std::span<std::byte> into);

}  // namespace prism::object_store
