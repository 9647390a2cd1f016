// An actor's checkpoint as bytes: the class's save hook writes into a group
// of an in-memory HDF5 file, whose image is what travels to the actor's
// owner and back to a restarted instance (docs/fault-tolerance.md).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "prism/checkpoint.hpp"

namespace prism::actors {

/// Runs `save` on `instance` and returns the HDF5 file image. Throws
/// prism::Error (or what the hook throws).
std::vector<std::byte> save_checkpoint(detail::CheckpointSaver save, const void* instance);
/// Opens `image` and runs `load` on `instance`. Throws prism::Error for an
/// image that is not a checkpoint (or what the hook throws).
void load_checkpoint(std::span<const std::byte> image, detail::CheckpointLoader load,
                     void* instance);

}  // namespace prism::actors
