// The registry of actor classes, their methods (PRISM_ACTOR) and their
// constructor signatures (prism::actor<C>(args...)). Filled during static
// initialization, read-only afterwards: lookups take no lock.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "actor/registry.hpp"
#include "prism/actor.hpp"

namespace prism::detail {
namespace {

struct ClassEntry {
  std::string name;
  std::vector<std::unique_ptr<ActorMethodInfo>> methods;  // in PRISM_ACTOR's order
};

// Looked up by string_view without building a std::string (a call's class
// lookup runs per call; mangled names rarely fit the small-string buffer).
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using ByName = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;

struct ActorRegistry {
  ByName<ClassEntry> classes;                    // by class key
  ByName<const ActorMethodInfo*> methods;        // by method key
  ByName<std::unique_ptr<ActorCtorInfo>> ctors;  // by signature
};
ActorRegistry& registry() {
  static ActorRegistry r;
  return r;
}

// "&Counter::add, &Counter::get" -> {"add", "get"}: the last name of each
// top-level, comma-separated entry (a cast with template arguments keeps its
// commas inside <> or ()).
std::vector<std::string> method_names(std::string_view text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  auto flush = [&] {
    std::string s = cur;
    cur.clear();
    while (!s.empty() && (s.back() == ' ' || s.back() == ')')) s.pop_back();
    const auto colons = s.rfind("::");
    if (colons != std::string::npos) s = s.substr(colons + 2);
    while (!s.empty() && (s.front() == ' ' || s.front() == '&')) s.erase(s.begin());
    out.push_back(s);
  };
  for (char ch : text) {
    if (ch == '<' || ch == '(') ++depth;
    if (ch == '>' || ch == ')') --depth;
    if (ch == ',' && depth == 0) {
      flush();
      continue;
    }
    cur += ch;
  }
  flush();
  return out;
}

}  // namespace

void register_actor_class(const char* class_key, const char* class_name) {
  auto& r = registry();
  auto [it, inserted] = r.classes.try_emplace(class_key);
  if (!inserted)
    throw RegistrationError(std::string("actor class '") + class_name +
                            "' is registered twice: one PRISM_ACTOR line per class");
  it->second.name = class_name;
}

void register_actor_method(const char* class_key, size_t index, const char* names,
                           ActorMethodInfo info) {
  auto& r = registry();
  auto& cls = r.classes.at(class_key);
  for (const auto& m : cls.methods)
    if (m->pointer_size == info.pointer_size &&
        std::memcmp(m->pointer.data(), info.pointer.data(), info.pointer_size) == 0)
      throw RegistrationError("PRISM_ACTOR(" + cls.name + ", ...) lists " + m->name + " twice");
  const auto listed = method_names(names);
  const std::string method = index < listed.size() && !listed[index].empty()
                                 ? listed[index]
                                 : "method" + std::to_string(index);
  info.key = std::string(class_key) + "#" + std::to_string(index);
  info.name = cls.name + "." + method;
  cls.methods.push_back(std::make_unique<ActorMethodInfo>(std::move(info)));
  r.methods[cls.methods.back()->key] = cls.methods.back().get();
}

const ActorCtorInfo* register_actor_ctor(ActorCtorInfo info) {
  auto& slot = registry().ctors[info.key];
  if (!slot) slot = std::make_unique<ActorCtorInfo>(std::move(info));
  return slot.get();
}

const ActorMethodInfo* find_actor_method(const char* class_key, const void* pointer,
                                         size_t size) noexcept {
  const auto& r = registry();
  auto it = r.classes.find(std::string_view(class_key));
  if (it == r.classes.end()) return nullptr;
  for (const auto& m : it->second.methods)
    if (m->pointer_size == size && std::memcmp(m->pointer.data(), pointer, size) == 0)
      return m.get();
  return nullptr;
}

std::string actor_class_name(std::string_view class_key) {
  const auto& r = registry();
  auto it = r.classes.find(class_key);
  return it == r.classes.end() ? std::string() : it->second.name;
}

const ActorMethodInfo* find_actor_method(std::string_view key) noexcept {
  const auto& r = registry();
  auto it = r.methods.find(key);
  return it == r.methods.end() ? nullptr : it->second;
}

const ActorCtorInfo* find_actor_ctor(std::string_view key) noexcept {
  const auto& r = registry();
  auto it = r.ctors.find(key);
  return it == r.ctors.end() ? nullptr : it->second.get();
}

}  // namespace prism::detail
