#include "transport/ucx_transport.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace prism::transport {
namespace {

constexpr unsigned kAmId = 7;

Status ucs_error(const char* what, ucs_status_t st) {
  return {Errc::kTransport, std::string(what) + ": " + ucs_status_string(st)};
}

// One received message, stored in the inbox arena (see UcxTransport::inbox_).
struct InboxEntry {
  int src;
  size_t offset;
  size_t length;
};

class UcxTransport final : public Transport {
 public:
  ~UcxTransport() override { teardown(); }

  Status init(Bootstrap& boot) {
    rank_ = boot.rank();
    size_ = boot.size();
    ucp_config_t* config = nullptr;
    if (auto st = ucp_config_read(nullptr, nullptr, &config); st != UCS_OK)
      return ucs_error("ucp_config_read", st);
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
    params.features = UCP_FEATURE_AM | UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP;
    params.mt_workers_shared = 0;
    auto st = ucp_init(&params, config, &ctx_);
    ucp_config_release(config);
    if (st != UCS_OK) return ucs_error("ucp_init", st);

    // The worker is used under our own mutex (ucx_mu_), so UCX's internal
    // locking (THREAD_MODE_MULTI) would only add cost.
    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    if ((st = ucp_worker_create(ctx_, &wp, &worker_)) != UCS_OK)
      return ucs_error("ucp_worker_create", st);

    ucp_am_handler_param_t hp{};
    hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                    UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    hp.id = kAmId;
    hp.cb = &UcxTransport::am_callback;
    hp.arg = this;
    hp.flags = UCP_AM_FLAG_WHOLE_MSG;
    if ((st = ucp_worker_set_am_recv_handler(worker_, &hp)) != UCS_OK)
      return ucs_error("ucp_worker_set_am_recv_handler", st);

    // Sleeping: UCX's event fd plus our own eventfd for local wake-ups.
    if ((st = ucp_worker_get_efd(worker_, &ucx_fd_)) != UCS_OK)
      return ucs_error("ucp_worker_get_efd", st);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (wake_fd_ < 0 || epoll_fd_ < 0) return {Errc::kTransport, "eventfd/epoll_create1 failed"};
    for (int fd : {ucx_fd_, wake_fd_}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return {Errc::kTransport, "epoll_ctl failed"};
    }

    ucp_address_t* addr = nullptr;
    size_t addr_len = 0;
    if ((st = ucp_worker_get_address(worker_, &addr, &addr_len)) != UCS_OK)
      return ucs_error("ucp_worker_get_address", st);
    auto all = boot.all_gather({reinterpret_cast<const std::byte*>(addr), addr_len});
    ucp_worker_release_address(worker_, addr);

    eps_.assign(size_, nullptr);
    for (int r = 0; r < size_; ++r) {
      ucp_ep_params_t ep{};
      ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
      ep.address = reinterpret_cast<const ucp_address_t*>(all[r].data());
      if ((st = ucp_ep_create(worker_, &ep, &eps_[r])) != UCS_OK)
        return ucs_error("ucp_ep_create", st);
    }
    return Status::ok();
  }

  void close_endpoints(Bootstrap& boot) {
    std::vector<void*> reqs;
    {
      std::lock_guard lk(ucx_mu_);
      ucp_request_param_t p{};
      p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      p.flags = 0;  // flush mode: deliver what is in flight first
      for (auto& ep : eps_) {
        if (!ep) continue;
        void* r = ucp_ep_close_nbx(ep, &p);
        if (r && !UCS_PTR_IS_ERR(r)) reqs.push_back(r);
        ep = nullptr;
      }
    }
    for (void* r : reqs) {
      while (true) {
        std::lock_guard lk(ucx_mu_);
        ucp_worker_progress(worker_);
        if (ucp_request_check_status(r) != UCS_INPROGRESS) {
          ucp_request_free(r);
          break;
        }
      }
    }
    boot.barrier([this] {
      std::lock_guard lk(ucx_mu_);
      ucp_worker_progress(worker_);
    });
  }

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  void set_handler(MessageHandler handler) override { handler_ = std::move(handler); }

  Status send(int dst, std::span<const std::byte> header,
              std::span<const std::byte> body) override {
    if (dst < 0 || dst >= size_)
      return {Errc::kInvalidArgument,
              "send to rank " + std::to_string(dst) + " of " + std::to_string(size_)};
    sent_msgs_.fetch_add(1, std::memory_order_relaxed);
    sent_bytes_.fetch_add(header.size() + body.size(), std::memory_order_relaxed);
    if (dst == rank_) {  // loop back without UCX: straight into the inbox
      bool sleeping;
      {
        std::lock_guard lk(ucx_mu_);
        push_inbox(rank_, header, body);
        sleeping = sleeping_;
      }
      if (sleeping) wake();
      return Status::ok();
    }
    ucp_dt_iov_t iov[2] = {{const_cast<std::byte*>(header.data()), header.size()},
                           {const_cast<std::byte*>(body.data()), body.size()}};
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_DATATYPE;
    // Eager only: control messages are small (large objects move by rdma_get),
    // and eager keeps the receive side a plain copy into the inbox.
    p.flags = UCP_AM_SEND_FLAG_EAGER;
    p.datatype = ucp_dt_make_iov();
    std::unique_lock lk(ucx_mu_);
    void* req = ucp_am_send_nbx(eps_[dst], kAmId, &rank_, sizeof(rank_), iov, 2, &p);
    return wait_request(lk, req, "ucp_am_send_nbx");
  }

  int try_poll() override {
    std::unique_lock role(poll_mu_, std::try_to_lock);
    if (!role.owns_lock()) return -1;
    {
      std::lock_guard lk(ucx_mu_);
      while (ucp_worker_progress(worker_) != 0) {
      }
      if (inbox_index_.empty()) return 0;
      std::swap(inbox_index_, work_index_);
      std::swap(inbox_bytes_, work_bytes_);
    }
    // Dispatch outside ucx_mu_: handlers send, and a send takes ucx_mu_.
    for (const auto& e : work_index_) {
      recv_msgs_.fetch_add(1, std::memory_order_relaxed);
      recv_bytes_.fetch_add(e.length, std::memory_order_relaxed);
      handler_(e.src, {work_bytes_.data() + e.offset, e.length});
    }
    int n = static_cast<int>(work_index_.size());
    work_index_.clear();
    work_bytes_.clear();
    return n;
  }

  void wait_for_events(int64_t timeout_us) override {
    {
      std::lock_guard lk(ucx_mu_);
      if (!inbox_index_.empty()) return;
      watch_ucx_fd(true);
      if (ucp_worker_arm(worker_) == UCS_ERR_BUSY) return;  // events pending: poll instead
      sleeping_ = true;
    }
    sleep_in_epoll(timeout_us);
  }

  // Why: a message that arrives while this rank's progress thread sleeps
  // with the worker armed wakes it, even when a worker of the same rank is
  // about to take the message itself. On a node rank that shares a core
  // between the two, that wake-up preempts the worker (perf sched, a
  // two-node stencil of 500 us tasks: ~2,400 such wake-ups a second per node
  // rank, 10-25 us of the core each). Resting, the worker is not re-armed
  // and its event fd is out of the epoll set: arrivals wake nothing, and
  // senders stop signalling after the first.
  void wait_for_wake(int64_t timeout_us) override {
    {
      std::lock_guard lk(ucx_mu_);
      watch_ucx_fd(false);
      sleeping_ = true;
    }
    sleep_in_epoll(timeout_us);
  }

  void sleep_in_epoll(int64_t timeout_us) {
    epoll_event evs[2];
    int timeout_ms = timeout_us < 0 ? -1 : static_cast<int>((timeout_us + 999) / 1000);
    int n = epoll_wait(epoll_fd_, evs, 2, timeout_ms);
    {
      std::lock_guard lk(ucx_mu_);
      sleeping_ = false;
    }
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.fd == wake_fd_) {
        uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof(v));
      }
    }
  }

  void wake() override {
    uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof(one));
  }

  Expected<MemoryRegion> register_memory(void* address, size_t length) override {
    ucp_mem_map_params_t mp{};
    mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
    mp.address = address;
    mp.length = length;
    ucp_mem_h memh = nullptr;
    if (auto st = ucp_mem_map(ctx_, &mp, &memh); st != UCS_OK) return ucs_error("ucp_mem_map", st);
    void* key = nullptr;
    size_t key_len = 0;
    if (auto st = ucp_rkey_pack(ctx_, memh, &key, &key_len); st != UCS_OK) {
      ucp_mem_unmap(ctx_, memh);
      return ucs_error("ucp_rkey_pack", st);
    }
    MemoryRegion region;
    region.address = address;
    region.length = length;
    region.remote_key.assign(static_cast<std::byte*>(key), static_cast<std::byte*>(key) + key_len);
    region.handle = memh;
    ucp_rkey_buffer_release(key);
    return region;
  }

  void deregister_memory(MemoryRegion& region) override {
    if (region.handle) ucp_mem_unmap(ctx_, static_cast<ucp_mem_h>(region.handle));
    region.handle = nullptr;
  }

  Status rdma_get(int src, uint64_t remote_address, std::span<const std::byte> remote_key,
                  void* local, size_t length) override {
    if (src < 0 || src >= size_) return {Errc::kInvalidArgument, "rdma_get from bad rank"};
    std::unique_lock lk(ucx_mu_);
    ucp_rkey_h rkey = nullptr;
    if (auto st = ucp_ep_rkey_unpack(eps_[src], remote_key.data(), &rkey); st != UCS_OK)
      return ucs_error("ucp_ep_rkey_unpack", st);
    ucp_request_param_t p{};
    void* req = ucp_get_nbx(eps_[src], local, length, remote_address, rkey, &p);
    Status st = wait_request(lk, req, "ucp_get_nbx");
    ucp_rkey_destroy(rkey);
    if (st) {
      rdma_gets_.fetch_add(1, std::memory_order_relaxed);
      rdma_bytes_.fetch_add(length, std::memory_order_relaxed);
    }
    return st;
  }

  Status flush() override {
    std::unique_lock lk(ucx_mu_);
    ucp_request_param_t p{};
    void* req = ucp_worker_flush_nbx(worker_, &p);
    return wait_request(lk, req, "ucp_worker_flush_nbx");
  }

  TransportStats stats() const override {
    return {sent_msgs_.load(),  sent_bytes_.load(), recv_msgs_.load(),
            recv_bytes_.load(), rdma_gets_.load(),  rdma_bytes_.load()};
  }

  std::string describe(int peer) const override {
    if (peer < 0 || peer >= size_ || !eps_[peer]) return "no endpoint";
    char* buf = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&buf, &len);
    if (!f) return "open_memstream failed";
    ucp_ep_print_info(eps_[peer], f);
    std::fclose(f);
    std::string s(buf, len);
    std::free(buf);
    return s;
  }

 private:
  static ucs_status_t am_callback(void* arg, const void* header, size_t header_length, void* data,
                                  size_t length, const ucp_am_recv_param_t* param) {
    auto* self = static_cast<UcxTransport*>(arg);
    int src = -1;
    if (header_length == sizeof(int)) std::memcpy(&src, header, sizeof(int));
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
      // Never sent by us (all sends are eager); drop rather than stall.
      return UCS_OK;
    }
    // Called inside ucp_worker_progress, i.e. with ucx_mu_ held.
    self->push_inbox(src, {static_cast<const std::byte*>(data), length}, {});
    return UCS_OK;
  }

  void push_inbox(int src, std::span<const std::byte> a, std::span<const std::byte> b) {
    const size_t at = inbox_bytes_.size();
    inbox_bytes_.resize(at + a.size() + b.size());
    if (!a.empty()) std::memcpy(inbox_bytes_.data() + at, a.data(), a.size());
    if (!b.empty()) std::memcpy(inbox_bytes_.data() + at + a.size(), b.data(), b.size());
    inbox_index_.push_back({src, at, a.size() + b.size()});
  }

  // Completes `req`, progressing the worker; lets other threads in between.
  Status wait_request(std::unique_lock<std::mutex>& lk, void* req, const char* what) {
    if (req == nullptr) return Status::ok();
    if (UCS_PTR_IS_ERR(req)) return ucs_error(what, UCS_PTR_STATUS(req));
    ucs_status_t st;
    for (unsigned spins = 0;; ++spins) {
      ucp_worker_progress(worker_);
      st = ucp_request_check_status(req);
      if (st != UCS_INPROGRESS) break;
      if (spins > 64) {  // long transfer: let other threads use the worker too
        lk.unlock();
        std::this_thread::yield();
        lk.lock();
      }
    }
    ucp_request_free(req);
    return st == UCS_OK ? Status::ok() : ucs_error(what, st);
  }

  void teardown() {
    if (worker_) ucp_worker_destroy(worker_);
    if (ctx_) ucp_cleanup(ctx_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    worker_ = nullptr;
    ctx_ = nullptr;
  }

  int rank_ = 0, size_ = 0;
  ucp_context_h ctx_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::vector<ucp_ep_h> eps_;
  MessageHandler handler_;
  int wake_fd_ = -1, epoll_fd_ = -1, ucx_fd_ = -1;
  bool ucx_fd_watched_ = true;  // UCX's event fd is in the epoll set (ucx_mu_)

  // Adds UCX's event fd to the epoll set or takes it out (ucx_mu_ held).
  void watch_ucx_fd(bool watch) {
    if (watch == ucx_fd_watched_) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = ucx_fd_;
    if (epoll_ctl(epoll_fd_, watch ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, ucx_fd_, &ev) == 0)
      ucx_fd_watched_ = watch;
  }

  std::mutex poll_mu_;  // the poll role: one dispatcher at a time keeps per-source order
  std::mutex ucx_mu_;   // guards the UCX worker, the inbox and sleeping_
  bool sleeping_ = false;
  std::vector<std::byte> inbox_bytes_, work_bytes_;
  std::vector<InboxEntry> inbox_index_, work_index_;

  std::atomic<uint64_t> sent_msgs_{0}, sent_bytes_{0}, recv_msgs_{0}, recv_bytes_{0};
  std::atomic<uint64_t> rdma_gets_{0}, rdma_bytes_{0};
};

}  // namespace

Expected<std::unique_ptr<Transport>> create_ucx_transport(Bootstrap& boot) {
  auto t = std::make_unique<UcxTransport>();
  if (Status st = t->init(boot); !st) return st;
  return std::unique_ptr<Transport>(std::move(t));
}

void destroy_ucx_transport(std::unique_ptr<Transport> transport, Bootstrap& boot) {
  if (auto* ucx = dynamic_cast<UcxTransport*>(transport.get())) ucx->close_endpoints(boot);
  transport.reset();
}

}  // namespace prism::transport
