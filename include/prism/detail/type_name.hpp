// Readable type names for error messages, and a per-type fingerprint stored
// with every object so a get() with the wrong type fails clearly.
#pragma once

#include <cstdint>
#include <string>
#include <typeinfo>

namespace prism::detail {

/// Demangled name of a std::type_info, e.g. "std::vector<int, ...>".
std::string demangle(const std::type_info& info);

template <class T>
const std::string& type_name() {
  static const std::string name = demangle(typeid(T));
  return name;
}

/// FNV-1a of the mangled name: stable across the ranks of one binary.
template <class T>
uint64_t type_fingerprint() {
  static const uint64_t fp = [] {
    uint64_t h = 1469598103934665603ull;
    for (const char* p = typeid(T).name(); *p; ++p)
      h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
    return h;
  }();
  return fp;
}

}  // namespace prism::detail
