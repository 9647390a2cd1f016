#include "transport/loopback_transport.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

namespace prism::transport {
namespace {

struct Message {
  int src;
  std::vector<std::byte> bytes;
};

class LoopbackTransport final : public Transport {
 public:
  LoopbackTransport(int rank, std::vector<std::unique_ptr<LoopbackTransport>>* peers)
      : rank_(rank), peers_(peers) {}

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return static_cast<int>(peers_->size()); }
  void set_handler(MessageHandler h) override { handler_ = std::move(h); }

  Status send(int dst, std::span<const std::byte> header,
              std::span<const std::byte> body) override {
    if (dst < 0 || dst >= size()) return {Errc::kInvalidArgument, "send to bad rank"};
    Message m{rank_, {}};
    m.bytes.reserve(header.size() + body.size());
    m.bytes.insert(m.bytes.end(), header.begin(), header.end());
    m.bytes.insert(m.bytes.end(), body.begin(), body.end());
    sent_msgs_++;
    sent_bytes_ += m.bytes.size();
    {
      std::lock_guard lk(hold_mu_);
      if (dst == hold_dst_) {
        held_.push_back(std::move(m));
        return Status::ok();
      }
    }
    (*peers_)[dst]->deliver(std::move(m));
    return Status::ok();
  }

  void hold(int dst) {
    std::lock_guard lk(hold_mu_);
    hold_dst_ = dst;
  }
  size_t release_held() {
    std::lock_guard lk(hold_mu_);  // a send meanwhile waits: the channel stays in order
    const size_t n = held_.size();
    for (auto& m : held_) (*peers_)[hold_dst_]->deliver(std::move(m));
    held_.clear();
    hold_dst_ = -1;
    return n;
  }

  void deliver(Message m) {
    {
      std::lock_guard lk(mu_);
      inbox_.push_back(std::move(m));
    }
    cv_.notify_all();
  }

  int try_poll() override {
    std::unique_lock role(poll_mu_, std::try_to_lock);
    if (!role.owns_lock()) return -1;
    std::vector<Message> work;
    {
      std::lock_guard lk(mu_);
      work.swap(inbox_);
    }
    for (auto& m : work) {
      recv_msgs_++;
      recv_bytes_ += m.bytes.size();
      handler_(m.src, m.bytes);
    }
    return static_cast<int>(work.size());
  }

  void wait_for_events(int64_t timeout_us) override {
    std::unique_lock lk(mu_);
    auto ready = [&] { return !inbox_.empty() || woken_; };
    if (timeout_us < 0)
      cv_.wait(lk, ready);
    else
      cv_.wait_for(lk, std::chrono::microseconds(timeout_us), ready);
    woken_ = false;
  }

  void wake() override {
    {
      std::lock_guard lk(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

  Expected<MemoryRegion> register_memory(void* address, size_t length) override {
    MemoryRegion r;
    r.address = address;
    r.length = length;
    r.remote_key.resize(sizeof(void*));
    std::memcpy(r.remote_key.data(), &address, sizeof(void*));
    return r;
  }
  void deregister_memory(MemoryRegion& r) override { r.remote_key.clear(); }

  Status rdma_get(int src, uint64_t remote_address, std::span<const std::byte> key, void* local,
                  size_t length) override {
    if (src < 0 || src >= size() || key.size() != sizeof(void*))
      return {Errc::kInvalidArgument, "loopback rdma_get: bad rank or key"};
    std::memcpy(local, reinterpret_cast<const void*>(remote_address), length);
    rdma_gets_++;
    rdma_bytes_ += length;
    return Status::ok();
  }

  Status flush() override { return Status::ok(); }
  TransportStats stats() const override {
    return {sent_msgs_, sent_bytes_, recv_msgs_, recv_bytes_, rdma_gets_, rdma_bytes_};
  }
  std::string describe(int) const override { return "loopback (in-process copy)"; }

 private:
  int rank_;
  std::vector<std::unique_ptr<LoopbackTransport>>* peers_;
  MessageHandler handler_;
  std::mutex poll_mu_, mu_;
  std::condition_variable cv_;
  std::vector<Message> inbox_;
  bool woken_ = false;
  std::mutex hold_mu_;
  int hold_dst_ = -1;  // hold(): messages to this rank wait in held_
  std::vector<Message> held_;
  std::atomic<uint64_t> sent_msgs_{0}, sent_bytes_{0}, recv_msgs_{0}, recv_bytes_{0}, rdma_gets_{0},
      rdma_bytes_{0};
};

}  // namespace

struct LoopbackFabric::Impl {
  std::vector<std::unique_ptr<LoopbackTransport>> ranks;
};

LoopbackFabric::LoopbackFabric(int size) : impl_(std::make_unique<Impl>()) {
  for (int r = 0; r < size; ++r)
    impl_->ranks.push_back(std::make_unique<LoopbackTransport>(r, &impl_->ranks));
}
LoopbackFabric::~LoopbackFabric() = default;
Transport& LoopbackFabric::at(int rank) {
  return *impl_->ranks.at(rank);
}
int LoopbackFabric::size() const {
  return static_cast<int>(impl_->ranks.size());
}
void LoopbackFabric::hold(int src, int dst) {
  impl_->ranks.at(src)->hold(dst);
}
size_t LoopbackFabric::release_held() {
  size_t n = 0;
  for (auto& r : impl_->ranks) n += r->release_held();
  return n;
}

}  // namespace prism::transport
