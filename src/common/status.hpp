// Status and Expected<T>: how the runtime reports failure internally.
//
// Exceptions stay at the user API (STYLE.md habit 5); inside the runtime every
// fallible call returns a [[nodiscard]] Status or Expected<T>, so an ignored
// error is a compile warning (and with -Werror, an error).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace prism {

/// What went wrong, grouped by the layer that detects it.
enum class Errc {
  kOk = 0,
  kInvalidArgument,   // bad flag, bad option, bad user input
  kMalformedMessage,  // a decoder found a truncated or inconsistent message
  kTransport,         // UCX/MPI failure
  kNotFound,          // unknown object, function, table or key
  kOutOfMemory,       // object store capacity exceeded even after spilling
  kBusy,              // no room now, but pinned objects will make room when released
  kInfeasible,        // no node can ever satisfy a resource request
  kTaskFailed,        // a task threw; message carries the remote text
  kShutdown,          // the runtime is stopping
  kTimeout,
  kInternal,
  kAlreadyExists,  // an insert found the key taken (e.g. an actor name)
  kAborted,        // given up: a group broke while its members waited
  kLost,           // an object's copy is gone (its spill file was deleted): made again or failed
};
/// The highest Errc value (decoders check codes against it).
inline constexpr Errc kLastErrc = Errc::kLost;

/// Short stable name of an error code, e.g. "malformed message".
const char* errc_name(Errc code) noexcept;

/// Result of an operation that returns nothing. Cheap when ok (no allocation).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == Errc::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  /// "malformed message: task spec truncated at byte 12"
  std::string to_string() const;

 private:
  Errc code_ = Errc::kOk;
  std::string message_;
};

/// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Expected(Status status) : v_(std::move(status)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const { return std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace prism

/// Propagate a failed Status out of the enclosing function.
#define PRISM_RETURN_IF_ERROR(expr)           \
  do {                                        \
    ::prism::Status prism_st_ = (expr);       \
    if (!prism_st_.is_ok()) return prism_st_; \
  } while (0)
