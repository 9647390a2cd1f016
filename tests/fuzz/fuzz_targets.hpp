// The fuzz target's parts (decoders_fuzz.cpp: messages and the entry point;
// values_fuzz.cpp: user values, in their own file because Boost's templates
// make it the slowest to compile, so the two build in parallel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace prism::fuzz {

using Bytes = std::vector<std::byte>;

// Selector bytes: family (runtime 0, GCS 1, value 2) + 3 * the decoder's index.
inline Bytes with_selector(uint8_t family, uint8_t index, std::span<const std::byte> body) {
  Bytes b{static_cast<std::byte>(family + 3 * index)};
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

/// Decodes `payload` as the user value type number `which` (any number).
void fuzz_value(uint8_t which, std::span<const std::byte> payload);
/// Appends a valid encoding of each value type.
void add_value_seeds(std::vector<Bytes>& out);

}  // namespace prism::fuzz
