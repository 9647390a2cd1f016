// Remote functions: registration (PRISM_REMOTE) and submission (prism::task).
#pragma once

#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "prism/detail/core.hpp"
#include "prism/errors.hpp"
#include "prism/object_ref.hpp"
#include "prism/options.hpp"
#include "prism/serialization.hpp"

namespace prism {
namespace detail {

/// A task's encoded result and the refs serialized inside it.
struct InvokeResult {
  std::vector<std::byte> bytes;
  std::vector<HandlePtr> contained;
};
/// Runs a registered function on encoded arguments; returns its encoded result.
using Invoker = InvokeResult (*)(const void* fn, std::span<const ArgValue> args);

struct RemoteFunctionInfo {
  std::string name;
  const void* fn;
  Invoker invoke;
  uint32_t index;  ///< dense, in registration order: this process's id for per-function state
};

/// Registers `fn` under `name`. Two functions under one name is a startup error.
void register_function(const char* name, const void* fn, Invoker invoke);
/// nullptr when not registered.
const RemoteFunctionInfo* find_function(std::string_view name) noexcept;
const RemoteFunctionInfo* find_function(const void* fn) noexcept;

template <class F>
const void* fn_address(F* f) noexcept {
  return reinterpret_cast<const void*>(f);
}

// The type a task returns to its caller: void becomes Unit on the wire.
template <class R>
using wire_t = std::conditional_t<std::is_void_v<R>, Unit, R>;

template <class D>
D decode_arg(const ArgValue& a, size_t position) {
  if constexpr (is_object_ref_v<D>) {
    if (!a.is_ref)
      throw SerializationError("argument " + std::to_string(position) +
                               ": expected an object reference");
    return D(borrow_handle(a.ref, a.ref_sender));
  } else {
    if (a.is_ref)
      throw SerializationError("argument " + std::to_string(position) +
                               ": got a reference where a value of type " + type_name<D>() +
                               " was expected");
    RefSenderScope sender(a.ref_sender);  // refs inside were pinned by the submitter
    return decode<D>(a.bytes);
  }
}

/// Decodes `args` as parameters P... (in order) and calls `call` with them.
template <class... P, class Call>
decltype(auto) with_decoded(std::span<const ArgValue> args, Call&& call) {
  if (args.size() != sizeof...(P))
    throw SerializationError("expects " + std::to_string(sizeof...(P)) + " arguments, got " +
                             std::to_string(args.size()));
  return [&]<size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
    // Braced: the arguments decode left to right.
    std::tuple<std::decay_t<P>...> decoded{decode_arg<std::decay_t<P>>(args[I], I)...};
    return call(static_cast<P&&>(std::get<I>(decoded))...);
  }
  (std::index_sequence_for<P...>{});
}

/// Calls `call` on `args` decoded as P... and encodes what it returns (R).
template <class R, class... P, class Call>
InvokeResult invoke_decoded(std::span<const ArgValue> args, Call&& call) {
  if constexpr (std::is_void_v<R>) {
    with_decoded<P...>(args, call);
    return InvokeResult{encode(Unit{}), {}};
  } else {
    R result = with_decoded<P...>(args, call);
    RefCapture refs;  // refs inside the result live as long as it does
    auto bytes = encode<R>(result);
    return InvokeResult{std::move(bytes), refs.take()};
  }
}

template <class R, class... P>
InvokeResult invoke_function(const void* fn, std::span<const ArgValue> args) {
  auto* f = reinterpret_cast<R (*)(P...)>(const_cast<void*>(fn));
  return invoke_decoded<R, P...>(args, f);
}

/// Made by PRISM_REMOTE at static-initialization time.
struct Registrar {
  template <class R, class... P>
  Registrar(const char* name, R (*fn)(P...)) {
    static_assert(!std::is_reference_v<R> && !std::is_pointer_v<R>,
                  "a remote function must return a value, not a reference or pointer");
    static_assert((!std::is_pointer_v<std::decay_t<P>> && ...),
                  "remote function parameters cannot be pointers (they cross process boundaries)");
    register_function(name, fn_address(fn), &invoke_function<R, P...>);
  }
};

// Builds one TaskArg for parameter type P from an argument A.
template <class P, class A>
TaskArg make_task_arg(A&& a) {
  using D = std::decay_t<P>;
  using AD = std::decay_t<A>;
  if constexpr (is_object_ref_v<AD>) {
    if constexpr (is_object_ref_v<D>) {
      static_assert(std::is_same_v<D, AD>, "ObjectRef argument type differs from the parameter's");
      return {TaskArg::Kind::kPassRef, {}, a.handle()};
    } else {
      static_assert(std::is_same_v<D, typename AD::value_type>,
                    "an ObjectRef<U> argument needs a parameter of type U (or ObjectRef<U>)");
      if (!a.valid()) throw Error("invalid (default-constructed) ObjectRef passed to a task");
      return {TaskArg::Kind::kResolveRef, {}, a.handle()};
    }
  } else {
    static_assert(!is_object_ref_v<D>,
                  "this parameter takes an ObjectRef: pass a ref (e.g. prism::put(value))");
    static_assert(std::is_convertible_v<A&&, D>,
                  "argument type does not convert to the remote function's parameter type");
    RefCapture refs;  // refs inside the value stay pinned until the executor counts them
    std::vector<std::byte> bytes;
    if constexpr (std::is_same_v<AD, D>)
      bytes = encode<D>(a);
    else
      bytes = encode<D>(D(std::forward<A>(a)));
    return {TaskArg::Kind::kValue, std::move(bytes), nullptr, refs.take()};
  }
}

}  // namespace detail

template <class F>
class RemoteFunction;

/// A handle to a registered function, made by prism::task(f). Cheap to copy.
/// Thread-safe: remote() may be called from any thread inside prism::run,
/// including from inside tasks (nested tasks).
template <class R, class... P>
class RemoteFunction<R(P...)> {
 public:
  using result_type = std::conditional_t<std::is_void_v<R>, Unit, R>;

  explicit RemoteFunction(R (*fn)(P...)) : fn_(fn) {}

  /// A copy with these options. Example: task(f).options({.num_gpus = 1})
  RemoteFunction options(TaskOptions opts) const {
    RemoteFunction copy = *this;
    copy.opts_ = std::move(opts);
    return copy;
  }

  /// Submits the task and returns at once. Bad argument types are compile
  /// errors; an unregistered function throws RegistrationError.
  /// Example: `ObjectRef<int> r = prism::task(square).remote(7);`
  template <class... A>
  ObjectRef<result_type> remote(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of arguments for remote function");
    const auto* info = detail::find_function(detail::fn_address(fn_));
    if (!info)
      throw RegistrationError(
          "function is not registered: add PRISM_REMOTE(<function>) at namespace scope");
    std::vector<detail::TaskArg> encoded;
    encoded.reserve(sizeof...(A));
    (encoded.push_back(detail::make_task_arg<P>(std::forward<A>(args))), ...);
    return ObjectRef<result_type>(detail::submit_task(*info, std::move(encoded), opts_));
  }

 private:
  R (*fn_)(P...);
  TaskOptions opts_;
};

/// Wraps a registered free function for remote execution.
/// Example: `auto f = prism::task(square); auto r = f.remote(3);`
template <class R, class... P>
RemoteFunction<R(P...)> task(R (*fn)(P...)) {
  return RemoteFunction<R(P...)>(fn);
}

}  // namespace prism

#define PRISM_DETAIL_CAT2(a, b) a##b
#define PRISM_DETAIL_CAT(a, b) PRISM_DETAIL_CAT2(a, b)

/// Registers a free function for remote execution under its (qualified) name,
/// on every rank. Use once per function, at namespace scope:
///   int square(int x) { return x * x; }
///   PRISM_REMOTE(square);
#define PRISM_REMOTE(fn)                                                                    \
  static const ::prism::detail::Registrar PRISM_DETAIL_CAT(prism_registrar_, __COUNTER__) { \
#fn, &fn                                                                                \
  }
