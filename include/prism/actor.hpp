// Actors: stateful workers whose methods run where the actor lives, one
// caller's calls in the order they were made (docs/actors.md).
//
//   class Counter {
//    public:
//     explicit Counter(int start) : n_(start) {}
//     int add(int k) { return n_ += k; }
//    private:
//     int n_;
//   };
//   PRISM_ACTOR(Counter, &Counter::add);           // one line per class
//
//   auto c = prism::actor<Counter>(10).remote();   // an ActorHandle<Counter>
//   prism::ObjectRef<int> r = c.call(&Counter::add).remote(5);
//   prism::get(r);                                 // 15
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "prism/checkpoint.hpp"
#include "prism/errors.hpp"
#include "prism/object_ref.hpp"
#include "prism/options.hpp"
#include "prism/remote.hpp"

namespace prism {

/// How an actor is placed and what it holds. Designated initializers read well:
///   prism::actor<Policy>(42).options({.num_gpus = 1, .name = "policy"}).remote();
/// Plain value type; thread-compatible.
struct ActorOptions {
  /// CPUs held for the actor's whole life. With 0 (the default) an idle
  /// actor holds nothing, and each method it runs takes a CPU slot like a
  /// task; with more, its methods run on the CPUs it holds.
  /// A threaded actor (max_concurrency > 1) runs its methods on threads of
  /// its own, whatever it holds.
  double num_cpus = 0;
  double num_gpus = 0;  ///< GPUs held for its life; its methods see them in prism::gpu_ids()
  uint64_t memory = 0;  ///< bytes of node memory reserved for its life
  std::map<std::string, double> resources = {};  ///< custom resources held for its life
  /// A job-wide name: prism::get_actor<Class>(name) finds the actor from
  /// any rank. Taken names are refused; a named actor lives until killed,
  /// the job ends, or the rank that made it is lost (its handles going away
  /// do not end it).
  std::string name = {};
  int node = -1;  ///< create it on this node (0 .. num_nodes()-1); -1: the scheduler decides
  Placement placement = Placement::kDefault;
  /// Methods that may run at once, each on its own thread. Above 1, calls
  /// are no longer ordered (as in Ray's threaded actors).
  int max_concurrency = 1;
  /// Times the actor is created again when it dies with its node rank
  /// or crashes (prism::kill with .no_restart = false; docs/fault-tolerance.md):
  /// its constructor runs again, with the same arguments, wherever it fits,
  /// then its last checkpoint is loaded if the class has checkpoint hooks
  /// (prism/checkpoint.hpp). 0 (the default): it stays dead. -1: always.
  int max_restarts = 0;
  /// Times a call is sent again when the instance it was sent to died
  /// before answering (Ray's max_task_retries): the call then runs on the
  /// restarted actor, in its caller's order. 0 (the default): such calls
  /// fail naming the death. -1: always. A method that throws is not retried.
  int max_task_retries = 0;
  /// With checkpoint hooks and restarts: save a checkpoint after every
  /// n-th call (1: after each). 0: never.
  int checkpoint_interval = 1;
};

/// How prism::kill ends an actor.
struct KillOptions {
  /// true (the default): the actor is gone for good. false: it dies as if
  /// it crashed, and is restarted if it has restarts left (max_restarts),
  /// from its last checkpoint; a fault-injection hook for tests.
  bool no_restart = true;
};

namespace detail {

struct ActorMethodInfo;
/// Runs a registered method on the actor `self` with encoded arguments.
using MethodInvoker = InvokeResult (*)(void* self, const ActorMethodInfo& method,
                                       std::span<const ArgValue> args);

/// A method listed in PRISM_ACTOR. Registered at static initialization,
/// read-only afterwards.
struct ActorMethodInfo {
  std::string key;   ///< "<class key>#<index>": names the method on every rank
  std::string name;  ///< "Counter.add", for errors and the timeline
  MethodInvoker invoke = nullptr;
  std::array<std::byte, 2 * sizeof(void*)> pointer{};  ///< the member pointer (this process)
  size_t pointer_size = 0;
  template <class M>
  M member() const noexcept {
    static_assert(sizeof(M) <= sizeof(pointer));
    M m;
    std::memcpy(static_cast<void*>(&m), pointer.data(), sizeof m);
    return m;
  }
};

/// Builds the instance from encoded constructor arguments (new C(...)).
using CtorInvoker = void* (*)(std::span<const ArgValue> args);
using Destroyer = void (*)(void*);

/// One constructor signature of an actor class, registered on first use in
/// the program text (every rank runs the same binary, so every rank has it).
struct ActorCtorInfo {
  std::string key;        ///< the signature, the same on every rank
  std::string class_key;  ///< typeid(C).name()
  CtorInvoker create = nullptr;
  Destroyer destroy = nullptr;
  CheckpointSaver save = nullptr;  ///< the class's checkpoint hooks, or nullptr
  CheckpointLoader load = nullptr;
};

// The registry (src/actor/registry.cpp). Registration errors throw
// RegistrationError at static initialization.
void register_actor_class(const char* class_key, const char* class_name);
/// `index`: the method's place in PRISM_ACTOR's list, whose text is `names`.
void register_actor_method(const char* class_key, size_t index, const char* names,
                           ActorMethodInfo info);
const ActorCtorInfo* register_actor_ctor(ActorCtorInfo info);
/// The method of class `class_key` whose member pointer has these bytes.
const ActorMethodInfo* find_actor_method(const char* class_key, const void* pointer,
                                         size_t size) noexcept;
/// The class's name as PRISM_ACTOR spelled it; empty if not registered.
std::string actor_class_name(std::string_view class_key);

// The runtime (src/api). All throw prism::Error subclasses.
HandlePtr create_actor(const ActorCtorInfo& ctor, std::vector<TaskArg> args,
                       const ActorOptions& options);
HandlePtr submit_actor_call(const HandlePtr& actor, const ActorMethodInfo& method,
                            std::vector<TaskArg> args);
void kill_actor(const HandlePtr& actor, bool restart);
HandlePtr named_actor(const std::string& name, const char* class_key);

template <class M>
struct method_traits;
template <class B, class R, class... P>
struct method_traits<R (B::*)(P...)> {
  using owner = B;
  using result = R;
  using params = std::tuple<P...>;
};
template <class B, class R, class... P>
struct method_traits<R (B::*)(P...) const> : method_traits<R (B::*)(P...)> {};
template <class B, class R, class... P>
struct method_traits<R (B::*)(P...) noexcept> : method_traits<R (B::*)(P...)> {};
template <class B, class R, class... P>
struct method_traits<R (B::*)(P...) const noexcept> : method_traits<R (B::*)(P...)> {};

template <class C, class M>
InvokeResult invoke_method(void* self, const ActorMethodInfo& info,
                           std::span<const ArgValue> args) {
  using T = method_traits<M>;
  const M m = info.member<M>();
  C* obj = static_cast<C*>(self);
  return [&]<class... P>(std::tuple<P...>*) {
    return invoke_decoded<typename T::result, P...>(
        args, [&](P&&... a) -> typename T::result { return (obj->*m)(static_cast<P&&>(a)...); });
  }(static_cast<typename T::params*>(nullptr));
}

/// Made by PRISM_ACTOR at static-initialization time.
template <class C>
struct ActorRegistrar {
  template <class... M>
  ActorRegistrar(const char* class_name, const char* method_names, M... methods) {
    static_assert(sizeof...(M) > 0, "PRISM_ACTOR(Class, &Class::method, ...) lists no method");
    static_assert((std::is_member_function_pointer_v<M> && ...),
                  "PRISM_ACTOR lists member functions: PRISM_ACTOR(Class, &Class::method, ...)");
    static_assert((std::is_base_of_v<typename method_traits<M>::owner, C> && ...),
                  "PRISM_ACTOR lists a method of another class");
    static_assert(
        (!std::is_reference_v<typename method_traits<M>::result> && ...) &&
            (!std::is_pointer_v<typename method_traits<M>::result> && ...),
        "an actor method must return a value, not a reference or pointer (it crosses processes)");
    register_actor_class(typeid(C).name(), class_name);
    size_t index = 0;
    (add(index++, method_names, methods), ...);
  }

 private:
  template <class M>
  static void add(size_t index, const char* names, M m) {
    ActorMethodInfo info;
    info.invoke = &invoke_method<C, M>;
    std::memcpy(info.pointer.data(), static_cast<const void*>(&m), sizeof m);
    info.pointer_size = sizeof m;
    register_actor_method(typeid(C).name(), index, names, std::move(info));
  }
};

template <class C, class... D>
void* construct_actor(std::span<const ArgValue> args) {
  return with_decoded<D...>(args, [](D&&... d) -> void* { return new C(static_cast<D&&>(d)...); });
}
template <class C>
void destroy_actor(void* instance) {
  delete static_cast<C*>(instance);
}
template <class C>
constexpr CheckpointSaver checkpoint_saver() {
  static_assert(SavesCheckpoints<C> == LoadsCheckpoints<C>,
                "an actor class with checkpoints has both hooks: "
                "void save_checkpoint(prism::Checkpoint&) const and "
                "void load_checkpoint(const prism::Checkpoint&)");
  if constexpr (SavesCheckpoints<C>)
    return
        [](const void* self, Checkpoint& cp) { static_cast<const C*>(self)->save_checkpoint(cp); };
  else
    return nullptr;
}
template <class C>
constexpr CheckpointLoader checkpoint_loader() {
  if constexpr (LoadsCheckpoints<C>)
    return [](void* self, const Checkpoint& cp) { static_cast<C*>(self)->load_checkpoint(cp); };
  else
    return nullptr;
}

/// One constructor signature; `info` registers it during static
/// initialization wherever prism::actor<C>(args...) appears in the program.
template <class C, class... D>
struct ActorCtor {
  static const ActorCtorInfo* const info;
};
template <class C, class... D>
const ActorCtorInfo* const ActorCtor<C, D...>::info = register_actor_ctor(
    {typeid(ActorCtor<C, D...>).name(), typeid(C).name(), &construct_actor<C, D...>,
     &destroy_actor<C>, checkpoint_saver<C>(), checkpoint_loader<C>()});

template <class T>
struct resolved {
  using type = T;
};
template <class T>
struct resolved<ObjectRef<T>> {
  using type = T;
};

/// A method bound to an actor, made by ActorHandle::call.
template <class R, class... P>
class BoundMethod {
 public:
  using result_type = wire_t<R>;
  BoundMethod(HandlePtr actor, const ActorMethodInfo* info)
      : actor_(std::move(actor)), info_(info) {}

  /// Sends the call and returns at once. Arguments as for tasks: values,
  /// ObjectRef<T> for a T parameter (the call waits for it), or refs.
  template <class... A>
  ObjectRef<result_type> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of arguments for the actor method");
    std::vector<TaskArg> encoded;
    encoded.reserve(sizeof...(A));
    (encoded.push_back(make_task_arg<P>(std::forward<A>(args))), ...);
    return ObjectRef<result_type>(submit_actor_call(actor_, *info_, std::move(encoded)));
  }

 private:
  HandlePtr actor_;
  const ActorMethodInfo* info_;
};

template <class M, class Tuple = typename method_traits<M>::params>
struct bound_method;
template <class M, class... P>
struct bound_method<M, std::tuple<P...>> {
  using type = BoundMethod<typename method_traits<M>::result, P...>;
};

}  // namespace detail

/// A handle to an actor: a copyable value that may travel anywhere a value
/// can (task and method arguments, results, objects). The actor lives while
/// any handle to it does (Ray's semantics), unless it was named or killed.
/// Thread-safe to copy, call and destroy from any thread.
template <class C>
class ActorHandle {
 public:
  ActorHandle() = default;
  explicit ActorHandle(detail::HandlePtr creation) : ref_(std::move(creation)) {}

  /// False for a default-constructed handle.
  bool valid() const noexcept { return ref_.valid(); }
  /// A printable id, e.g. "actor:0.3".
  std::string id() const {
    if (!valid()) return "actor:nil";
    const auto& i = ref_.handle()->id();
    return "actor:" + std::to_string(i.owner_rank) + "." + std::to_string(i.seq);
  }
  const detail::HandlePtr& handle() const noexcept { return ref_.handle(); }

  /// A method of the actor, to call with .remote(args...). The method must
  /// be listed in PRISM_ACTOR (RegistrationError otherwise); wrong argument
  /// types do not compile. Example:
  ///   prism::ObjectRef<int> r = counter.call(&Counter::add).remote(1);
  template <class M>
  typename detail::bound_method<M>::type call(M method) const {
    static_assert(std::is_member_function_pointer_v<M>,
                  "call() takes a member function: handle.call(&Class::method)");
    static_assert(std::is_base_of_v<typename detail::method_traits<M>::owner, C>,
                  "call(): the method is not a member of this actor's class");
    if (!valid()) throw Error("call() on an invalid (default-constructed) ActorHandle");
    const auto* info = detail::find_actor_method(typeid(C).name(),
                                                 static_cast<const void*>(&method), sizeof method);
    if (!info)
      throw RegistrationError("a method of actor class '" + detail::type_name<C>() +
                              "' is called but not registered: list it in PRISM_ACTOR(...)");
    return {ref_.handle(), info};
  }

  friend bool operator==(const ActorHandle& a, const ActorHandle& b) noexcept {
    return a.ref_ == b.ref_;
  }

  // Boost.Serialization: a handle travels as the id of its actor.
  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& ref_;
  }

 private:
  ObjectRef<Unit> ref_;  // the actor's creation object
};

/// Builds an actor; made by prism::actor<C>(args...). Cheap to copy.
template <class C>
class ActorCreator {
 public:
  ActorCreator(const detail::ActorCtorInfo* ctor, std::vector<detail::TaskArg> args)
      : ctor_(ctor), args_(std::move(args)) {}
  /// A copy with these options. Example: `.options({.num_gpus = 1})`
  ActorCreator options(ActorOptions opts) const {
    ActorCreator copy = *this;
    copy.opts_ = std::move(opts);
    return copy;
  }
  /// Places the actor and returns its handle at once; calls made before it
  /// is constructed wait for it. InfeasibleError if no node could ever hold
  /// it; Error for a name already taken.
  ActorHandle<C> remote() const {
    return ActorHandle<C>(detail::create_actor(*ctor_, args_, opts_));
  }
  const detail::ActorCtorInfo* ctor_info() const noexcept { return ctor_; }
  const std::vector<detail::TaskArg>& encoded_args() const noexcept { return args_; }

 private:
  const detail::ActorCtorInfo* ctor_;
  std::vector<detail::TaskArg> args_;
  ActorOptions opts_;
};

/// Creates an actor of class C (registered with PRISM_ACTOR) from constructor
/// arguments: values, or ObjectRef<T> where the constructor takes a T (the
/// creation waits for them) or an ObjectRef<T>. Thread-safe.
/// Example: `auto p = prism::actor<Policy>(42).options({.num_gpus = 1}).remote();`
template <class C, class... A>
ActorCreator<C> actor(A&&... args) {
  static_assert(std::is_class_v<C> && !std::is_abstract_v<C>, "an actor is a concrete class");
  if constexpr (std::is_constructible_v<C, std::decay_t<A>&&...>) {
    return ActorCreator<C>(detail::ActorCtor<C, std::decay_t<A>...>::info,
                           {detail::make_task_arg<std::decay_t<A>>(std::forward<A>(args))...});
  } else {
    static_assert(std::is_constructible_v<C, typename detail::resolved<std::decay_t<A>>::type&&...>,
                  "no constructor of the actor class takes these arguments");
    return ActorCreator<C>(
        detail::ActorCtor<C, typename detail::resolved<std::decay_t<A>>::type...>::info,
        {detail::make_task_arg<typename detail::resolved<std::decay_t<A>>::type>(
            std::forward<A>(args))...});
  }
}

/// The actor created with .options({.name = name}), from any rank or task.
/// Error if there is none by that name, or if it is not a C. Blocks for one
/// round trip to the GCS. Example:
///   auto ps = prism::get_actor<ParamServer>("ps");
template <class C>
ActorHandle<C> get_actor(const std::string& name) {
  return ActorHandle<C>(detail::named_actor(name, typeid(C).name()));
}

/// Ends the actor: calls still queued or made later fail with an error that
/// says it was killed; a method running now finishes first, then the
/// destructor runs and the actor's resources are released. Returns at once.
/// With {.no_restart = false} the actor dies as if it crashed: it is
/// restarted if it has restarts left, and calls in flight are retried
/// (max_task_retries) or fail naming the death.
template <class C>
void kill(const ActorHandle<C>& actor, KillOptions options = {}) {
  if (!actor.valid()) throw Error("kill() of an invalid (default-constructed) ActorHandle");
  detail::kill_actor(actor.handle(), !options.no_restart);
}

}  // namespace prism

/// Registers an actor class and the methods callers may call, on every rank.
/// Use once per class, at namespace scope, listing each callable method:
///   PRISM_ACTOR(Counter, &Counter::add, &Counter::get);
#define PRISM_ACTOR(Class, ...)                                                                \
  static const ::prism::detail::ActorRegistrar<Class> PRISM_DETAIL_CAT(prism_actor_registrar_, \
                                                                       __COUNTER__) {          \
#Class, #__VA_ARGS__, __VA_ARGS__                                                          \
  }
