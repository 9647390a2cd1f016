#include "membership/liveness.hpp"
#include "common/thread_name.hpp"

#include <algorithm>
#include <chrono>

namespace prism::membership {

FailureDetector::FailureDetector(std::vector<int> ranks, int64_t timeout_us, int64_t now_us)
    : timeout_us_(timeout_us), last_tick_us_(now_us) {
  for (int r : ranks) watched_.push_back({r, now_us});
}

void FailureDetector::heard(int rank, int64_t now_us) {
  for (auto& w : watched_)
    if (w.rank == rank) w.last_us = std::max(w.last_us, now_us);
}

std::vector<int> FailureDetector::tick(int64_t now_us) {
  std::vector<int> lost;
  if (now_us - last_tick_us_ > timeout_us_ / 2) {  // we stalled: nobody is judged on it
    for (auto& w : watched_) w.last_us = std::max(w.last_us, now_us);
  } else {
    for (auto& w : watched_)
      if (!w.lost && now_us - w.last_us > timeout_us_) {
        w.lost = true;
        lost.push_back(w.rank);
      }
  }
  last_tick_us_ = now_us;
  return lost;
}

Heartbeats::Heartbeats(Options options, std::function<void(int)> send,
                       std::function<void(int)> lost)
    : options_(std::move(options)), send_(std::move(send)), lost_(std::move(lost)) {
  int top = 0;
  for (int r : options_.watch) top = std::max(top, r + 1);
  heard_ = std::vector<std::atomic<int64_t>>(static_cast<size_t>(top));
}

Heartbeats::~Heartbeats() {
  stop();
}

int64_t Heartbeats::now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Heartbeats::start() {
  if (options_.send_to.empty() && options_.watch.empty()) return;
  thread_ = std::thread([this] {
    name_this_thread("prism-heartbeat");
    run();
  });
}

void Heartbeats::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeats::heard(int rank) noexcept {
  if (rank >= 0 && static_cast<size_t>(rank) < heard_.size())
    heard_[static_cast<size_t>(rank)].store(now_us(), std::memory_order_relaxed);
}

void Heartbeats::run() {
  FailureDetector detector(options_.watch, options_.timeout_us, now_us());
  std::unique_lock lk(mu_);
  while (!stop_) {
    lk.unlock();
    for (int r : options_.send_to) send_(r);
    const int64_t now = now_us();
    for (int r : options_.watch)
      if (int64_t t = heard_[static_cast<size_t>(r)].load(std::memory_order_relaxed); t > 0)
        detector.heard(r, t);
    for (int r : detector.tick(now)) lost_(r);
    lk.lock();
    cv_.wait_for(lk, std::chrono::microseconds(options_.interval_us), [this] { return stop_; });
  }
}

}  // namespace prism::membership
