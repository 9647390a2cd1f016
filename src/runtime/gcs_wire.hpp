// How GCS messages travel between ranks: a gcs::Outbox over the Transport
// that bundles what one round of work produced for each destination into one
// transport message, and the matching unbundling on receipt.
//
// Why bundles: one GCS write costs a request, a Forward per replica hop, an
// Ack per hop and a Reply. Sent one by one, a chain of 3 needs ~6 transport
// messages and as many wake-ups per write; the GCS would then bound task
// throughput on a small host. Bundled per round (everything a poll round or an
// agent round produced), a batch of N writes costs one message per hop, and
// cumulative Acks to the same neighbour collapse into the newest one.
//
// Bundle layout (kinds reserved in gcs/messages.hpp):
//   u8 kind (0x4F to a GCS rank, 0x5F to a client rank), u32 count,
//   count x (u32 length, length bytes: one whole GCS message, never a bundle)
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "gcs/layout.hpp"
#include "gcs/outbox.hpp"
#include "transport/transport.hpp"

namespace prism::runtime {

/// Counters of one GcsOutbox.
struct GcsWireStats {
  uint64_t messages = 0;        // GCS messages queued
  uint64_t acks_coalesced = 0;  // Acks folded into a newer one before sending
  uint64_t transport_sends = 0; // bundles or bare messages handed to the transport
  uint64_t send_errors = 0;
};

/// gcs::Outbox that queues and sends bundles on flush(). Not thread-safe: the
/// one thread that drives a GcsServer or GcsClient calls send() (through
/// them) and flush(). send() never calls back into the GCS object.
/// Example:
///   GcsOutbox out(transport, layout);
///   gcs::GcsServer server(layout, rank, out);
///   server.handle(src, msg); ...; out.flush();   // after every round
class GcsOutbox : public gcs::Outbox {
 public:
  /// Bundles above this size are split (eager UCX messages stay moderate).
  static constexpr size_t kMaxBundleBytes = 7 * 1024;

  GcsOutbox(transport::Transport& transport, const gcs::GcsLayout& layout);

  void send(int rank, std::vector<std::byte> msg) override;
  /// Sends everything queued; returns the number of GCS messages sent.
  size_t flush();
  bool empty() const noexcept { return dirty_.empty(); }
  const GcsWireStats& stats() const noexcept { return stats_; }

 private:
  transport::Transport& transport_;
  const gcs::GcsLayout layout_;
  std::vector<std::vector<std::vector<std::byte>>> queued_;  // by destination rank
  std::vector<int> dirty_;                                   // destinations with queued messages
  std::map<std::pair<int, uint32_t>, size_t> last_ack_;      // (dst, shard) -> index in queued_[dst]
  std::vector<std::byte> bundle_;                            // reused send buffer
  GcsWireStats stats_;
};

/// Calls `fn(message)` for each GCS message in `msg`: the messages of a
/// bundle, or `msg` itself. A malformed bundle stops at the first bad entry
/// and returns why (the entries before it were delivered).
Status for_each_gcs_message(std::span<const std::byte> msg,
                            const std::function<void(std::span<const std::byte>)>& fn);

}  // namespace prism::runtime
