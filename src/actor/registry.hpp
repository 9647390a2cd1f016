// Lookups of the actor registry by wire name, for the executing side (the
// registering side is in include/prism/actor.hpp). Read-only after static
// initialization; no lock.
#pragma once

#include <string_view>

#include "prism/actor.hpp"

namespace prism::detail {

/// The method named `key` on the wire ("<class key>#<index>"), or nullptr.
const ActorMethodInfo* find_actor_method(std::string_view key) noexcept;
/// The constructor signature named `key`, or nullptr.
const ActorCtorInfo* find_actor_ctor(std::string_view key) noexcept;

}  // namespace prism::detail
