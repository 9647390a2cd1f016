// Transport: the control plane (small messages between any two ranks) and the
// data plane (one-sided reads of another rank's registered memory).
//
// Two implementations: UcxTransport (UCX active messages + RDMA get, workers
// found through an MPI all-gather at start-up) and LoopbackFabric (in-process,
// for tests that run a whole "cluster" in one gtest binary).
//
// Threading: send(), rdma_get() and wake() may be called from any thread.
// poll() dispatches received messages to the handler; only one thread polls at
// a time (try_poll() returns -1 when another thread is polling), so messages
// from one source are handled in the order they were sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace prism::transport {

/// Called for every received message on the polling thread. It must not block
/// (it may send); the payload is valid only during the call.
using MessageHandler = std::function<void(int src_rank, std::span<const std::byte> payload)>;

/// Memory made readable by other ranks. `remote_key` is what a peer needs (with
/// the address) to read it; it travels inside control messages.
struct MemoryRegion {
  void* address = nullptr;
  size_t length = 0;
  std::vector<std::byte> remote_key;
  void* handle = nullptr;  // implementation's registration handle
};

/// Counters for the run summary and the benchmarks.
struct TransportStats {
  uint64_t messages_sent = 0, bytes_sent = 0;
  uint64_t messages_received = 0, bytes_received = 0;
  uint64_t rdma_gets = 0, rdma_bytes = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  /// Set once, before any message can arrive.
  virtual void set_handler(MessageHandler handler) = 0;

  /// Sends header+body as one message to `dst` (may be this rank). Returns
  /// when both buffers may be reused. Thread-safe.
  [[nodiscard]] virtual Status send(int dst, std::span<const std::byte> header,
                                    std::span<const std::byte> body = {}) = 0;

  /// Makes progress and dispatches what arrived; returns the number of messages
  /// dispatched, or -1 if another thread holds the poll role.
  virtual int try_poll() = 0;

  /// Sleeps until a message may have arrived, wake() was called, or timeout_us
  /// passed (negative: no timeout). Spurious returns are allowed.
  virtual void wait_for_events(int64_t timeout_us) = 0;
  /// Makes a thread blocked in wait_for_events() or wait_for_wake() return.
  /// Thread-safe.
  virtual void wake() = 0;
  /// Sleeps until wake() or timeout_us, while other threads of this rank poll:
  /// messages that arrive meanwhile need not end the sleep (UCX: the worker
  /// is not re-armed and its event fd is out of the epoll set, so nothing
  /// wakes this thread). The default sleeps as wait_for_events() does.
  virtual void wait_for_wake(int64_t timeout_us) { wait_for_events(timeout_us); }

  /// Registers [address, address+length) for remote reads. Thread-safe.
  [[nodiscard]] virtual Expected<MemoryRegion> register_memory(void* address, size_t length) = 0;
  virtual void deregister_memory(MemoryRegion& region) = 0;
  /// Reads `length` bytes at `remote_address` of `src` (registered there with
  /// `remote_key`) into `local`. Blocks the caller until done; other threads
  /// keep polling meanwhile. Thread-safe.
  [[nodiscard]] virtual Status rdma_get(int src, uint64_t remote_address,
                                        std::span<const std::byte> remote_key, void* local,
                                        size_t length) = 0;

  /// Ensures every message this rank sent has left (before shutdown).
  [[nodiscard]] virtual Status flush() = 0;

  virtual TransportStats stats() const = 0;
  /// Which lanes the endpoint to `peer` uses, for docs and troubleshooting.
  virtual std::string describe(int peer) const = 0;
};

}  // namespace prism::transport
