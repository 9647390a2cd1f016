#include "runtime/gcs_wire.hpp"

#include <algorithm>
#include <cstring>

#include "common/codec.hpp"
#include "gcs/messages.hpp"

namespace prism::runtime {
namespace {

constexpr size_t kAckSize = 1 + 4 + 8 + 8;  // kind, shard, epoch, committed
constexpr size_t kAckEpochAt = 1 + 4;
constexpr size_t kAckCommittedAt = 1 + 4 + 8;

template <class T>
T load_at(const std::vector<std::byte>& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

}  // namespace

GcsOutbox::GcsOutbox(transport::Transport& transport, const gcs::GcsLayout& layout)
    : transport_(transport), layout_(layout), queued_(static_cast<size_t>(transport.size())) {}

void GcsOutbox::send(int rank, std::vector<std::byte> msg) {
  if (rank < 0 || rank >= static_cast<int>(queued_.size()) || msg.empty()) {
    ++stats_.send_errors;
    return;
  }
  ++stats_.messages;
  auto& q = queued_[static_cast<size_t>(rank)];
  if (q.empty()) dirty_.push_back(rank);
  // Acks are cumulative: a newer Ack of the same shard and epoch to the same
  // neighbour makes the queued one redundant, so fold it in.
  if (msg.size() == kAckSize && msg[0] == std::byte{static_cast<uint8_t>(gcs::MsgKind::kAck)}) {
    const auto shard = load_at<uint32_t>(msg, 1);
    auto [it, fresh] = last_ack_.try_emplace({rank, shard}, q.size());
    if (!fresh) {
      auto& prev = q[it->second];
      if (load_at<uint64_t>(prev, kAckEpochAt) == load_at<uint64_t>(msg, kAckEpochAt)) {
        const auto c = std::max(load_at<uint64_t>(prev, kAckCommittedAt),
                                load_at<uint64_t>(msg, kAckCommittedAt));
        std::memcpy(prev.data() + kAckCommittedAt, &c, sizeof c);
        ++stats_.acks_coalesced;
        return;
      }
      it->second = q.size();
    }
  }
  q.push_back(std::move(msg));
}

size_t GcsOutbox::flush() {
  size_t sent = 0;
  for (int dst : dirty_) {
    auto& q = queued_[static_cast<size_t>(dst)];
    const std::byte kind = layout_.is_gcs_rank(dst) ? gcs::kBundleToServer : gcs::kBundleToClient;
    size_t i = 0;
    while (i < q.size()) {
      Status st;
      if (i + 1 == q.size() || q[i].size() >= kMaxBundleBytes) {  // alone: send it bare
        st = transport_.send(dst, q[i]);
        ++i;
        ++sent;
      } else {
        size_t bytes = 5, j = i;
        while (j < q.size() && (j == i || bytes + 4 + q[j].size() <= kMaxBundleBytes))
          bytes += 4 + q[j++].size();
        // Built in a buffer that is reused: a fresh large allocation per
        // bundle made malloc consolidate its free lists every time.
        bundle_.resize(bytes);
        std::byte* out = bundle_.data();
        const auto put = [&out](const void* p, size_t n) {
          std::memcpy(out, p, n);
          out += n;
        };
        const auto count = static_cast<uint32_t>(j - i);
        put(&kind, 1);
        put(&count, sizeof count);
        for (; i < j; ++i) {
          const auto len = static_cast<uint32_t>(q[i].size());
          put(&len, sizeof len);
          put(q[i].data(), len);
          ++sent;
        }
        st = transport_.send(dst, bundle_);
      }
      ++stats_.transport_sends;
      if (!st) ++stats_.send_errors;  // the protocol retries; nothing else to do
    }
    q.clear();
  }
  dirty_.clear();
  last_ack_.clear();
  return sent;
}

Status for_each_gcs_message(std::span<const std::byte> msg,
                            const std::function<void(std::span<const std::byte>)>& fn) {
  if (msg.empty()) return {Errc::kMalformedMessage, "empty GCS message"};
  if (msg[0] != gcs::kBundleToServer && msg[0] != gcs::kBundleToClient) {
    fn(msg);
    return Status::ok();
  }
  Reader r(msg.subspan(1));
  const auto n = r.get<uint32_t>();
  if (!r.ok() || static_cast<size_t>(n) * 5 > r.rest().size())
    return {Errc::kMalformedMessage, "GCS bundle count exceeds its bytes"};
  for (uint32_t i = 0; i < n; ++i) {
    auto part = r.get_bytes();
    if (!r.ok()) return {Errc::kMalformedMessage, "GCS bundle entry truncated"};
    if (part.empty() || part[0] == gcs::kBundleToServer || part[0] == gcs::kBundleToClient)
      return {Errc::kMalformedMessage, "empty or nested entry in a GCS bundle"};
    fn(part);
  }
  return r.finish("GCS bundle");
}

}  // namespace prism::runtime
