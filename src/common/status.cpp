#include "common/status.hpp"

namespace prism {

const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::kOk:
      return "ok";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kMalformedMessage:
      return "malformed message";
    case Errc::kTransport:
      return "transport error";
    case Errc::kNotFound:
      return "not found";
    case Errc::kOutOfMemory:
      return "out of memory";
    case Errc::kBusy:
      return "busy";
    case Errc::kInfeasible:
      return "infeasible";
    case Errc::kTaskFailed:
      return "task failed";
    case Errc::kShutdown:
      return "shutdown";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kAlreadyExists:
      return "already exists";
    case Errc::kAborted:
      return "aborted";
    case Errc::kLost:
      return "object lost";
    case Errc::kInternal:
      return "internal error";
  }
  return "unknown error";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(errc_name(code_)) + ": " + message_;
}

}  // namespace prism
