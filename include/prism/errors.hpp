// Exceptions thrown by Prism's public API.
#pragma once

#include <stdexcept>
#include <string>

namespace prism {

/// Base of every error Prism throws. Catch this to handle them all.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A remote task threw. what() holds the task's name, the rank it ran on and
/// the remote exception's message; get() rethrows it on the caller.
/// Example: try { prism::get(ref); } catch (const prism::TaskError& e) { ... }
class TaskError : public Error {
 public:
  TaskError(std::string task_name, std::string remote_message)
      : Error("task '" + task_name + "' failed: " + remote_message),
        task_name_(std::move(task_name)),
        remote_message_(std::move(remote_message)) {}
  const std::string& task_name() const noexcept { return task_name_; }
  const std::string& remote_message() const noexcept { return remote_message_; }

 private:
  std::string task_name_, remote_message_;
};

/// A value could not be encoded or decoded: wrong type, truncated or corrupt bytes.
class SerializationError : public Error {
 public:
  using Error::Error;
};

/// A request can never be satisfied (e.g. more GPUs than any node has).
class InfeasibleError : public Error {
 public:
  using Error::Error;
};

/// The function was not registered with PRISM_REMOTE, or not on every rank.
class RegistrationError : public Error {
 public:
  using Error::Error;
};

/// An object does not fit in the object store even after spilling.
class ObjectStoreFullError : public Error {
 public:
  using Error::Error;
};

/// The call needs a running Prism runtime (inside prism::run).
class NotRunningError : public Error {
 public:
  using Error::Error;
};

}  // namespace prism
