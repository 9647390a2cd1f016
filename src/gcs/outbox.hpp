// How the GCS sends: the only thing it needs from a transport.
#pragma once

#include <cstddef>
#include <vector>

namespace prism::gcs {

/// Where GcsServer and GcsClient put their outgoing messages. The runtime
/// implements it over its Transport (UCX); tests implement it with a fake
/// network. send() must not call back into the GCS object that called it
/// (queue the message instead): handle() and tick() are not reentrant.
/// Messages to one destination must be delivered in order where possible;
/// the protocol tolerates loss, duplication and reordering, at some cost.
/// Example:
///   struct UcxOutbox : gcs::Outbox {
///     void send(int rank, std::vector<std::byte> m) override { (void)t.send(rank, m); }
///   };
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void send(int rank, std::vector<std::byte> msg) = 0;
};

}  // namespace prism::gcs
