#include "worker/worker_pool.hpp"

#include <algorithm>

namespace prism::worker {
namespace {
thread_local WorkerPool* tls_pool = nullptr;
thread_local int tls_index = -1;
}  // namespace

int WorkerPool::current_index() noexcept {
  return tls_index;
}

WorkerPool::WorkerPool(Options options, transport::ProgressEngine& engine)
    : options_(options), engine_(engine) {
  if (options_.slots < 1) options_.slots = 1;
}

WorkerPool::~WorkerPool() {
  stop();
}

WorkerPool* WorkerPool::current() noexcept {
  return tls_pool;
}

void WorkerPool::start() {
  std::lock_guard lk(mu_);
  for (int i = 0; i < options_.slots; ++i) spawn_locked();
}

void WorkerPool::spawn_locked() {
  const int index = static_cast<int>(threads_.size());
  threads_.emplace_back([this, index] { thread_main(index); });
}

void WorkerPool::ensure_runner_locked() {
  if (stop_ || queued_.load() == 0 || active_.load() >= options_.slots) return;
  if (static_cast<int>(threads_.size()) < options_.slots + blocked_.load()) spawn_locked();
}

void WorkerPool::submit(Job job, uint64_t key) {
  uint32_t needed;
  {
    std::lock_guard lk(mu_);
    auto e = std::make_shared<Entry>(Entry{std::move(job), key, false});
    if (key) by_key_[key] = e;
    queue_.push_back(std::move(e));
    queued_.fetch_add(1, std::memory_order_release);
    ensure_runner_locked();
    needed = static_cast<uint32_t>(std::max<int64_t>(
        1,
        std::min<int64_t>(static_cast<int64_t>(queued_.load()), options_.slots - active_.load())));
  }
  engine_.notify(transport::ProgressEngine::kWork, needed);
}

std::shared_ptr<WorkerPool::Entry> WorkerPool::pop_locked() {
  while (!queue_.empty()) {
    auto e = std::move(queue_.front());
    queue_.pop_front();
    if (e->claimed) continue;  // run inline by a waiter already
    e->claimed = true;
    if (e->key) by_key_.erase(e->key);
    queued_.fetch_sub(1, std::memory_order_release);
    return e;
  }
  return nullptr;
}

bool WorkerPool::run_inline(uint64_t key) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lk(mu_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return false;
    e = it->second.lock();
    by_key_.erase(it);
    if (!e || e->claimed) return false;
    e->claimed = true;
    queued_.fetch_sub(1, std::memory_order_release);
  }
  // A worker running a nested job inline is busy already; another thread
  // (the driver) becomes busy for the job's duration.
  const bool counted = tls_pool == this;
  if (!counted) engine_.enter_busy();
  e->job();
  if (!counted) engine_.leave_busy();
  return true;
}

void WorkerPool::thread_main(int index) {
  tls_pool = this;
  tls_index = index;
  if (options_.pin && options_.topology)
    options_.topology->pin_current_thread(options_.first_core + index);
  while (true) {
    idle_.fetch_add(1, std::memory_order_acq_rel);
    engine_.wait_until(
        [this] {
          return stop_.load(std::memory_order_acquire) ||
                 (queued_.load(std::memory_order_acquire) > 0 &&
                  active_.load(std::memory_order_acquire) < options_.slots);
        },
        transport::ProgressEngine::Clock::time_point::max(), transport::ProgressEngine::kWork);
    idle_.fetch_sub(1, std::memory_order_acq_rel);
    if (stop_.load(std::memory_order_acquire)) break;
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard lk(mu_);
      if (active_.load() >= options_.slots) continue;  // another thread won the slot
      entry = pop_locked();
      if (!entry) continue;  // another thread won the job
      active_.fetch_add(1, std::memory_order_acq_rel);
    }
    engine_.enter_busy();
    entry->job();
    engine_.leave_busy();
    entry.reset();
    active_.fetch_sub(1, std::memory_order_acq_rel);
    if (queued_.load(std::memory_order_acquire) > 0)
      engine_.notify(transport::ProgressEngine::kWork, 1);
  }
  tls_pool = nullptr;
}

void WorkerPool::lend_slot() {
  engine_.leave_busy();  // blocked in get(): its core is free for others
  {
    std::lock_guard lk(mu_);
    blocked_.fetch_add(1, std::memory_order_acq_rel);
    active_.fetch_sub(1, std::memory_order_acq_rel);
    ensure_runner_locked();
  }
  engine_.notify(transport::ProgressEngine::kWork, 1);
}

void WorkerPool::reclaim_slot() {
  engine_.enter_busy();
  std::lock_guard lk(mu_);
  active_.fetch_add(1, std::memory_order_acq_rel);
  blocked_.fetch_sub(1, std::memory_order_acq_rel);
}

size_t WorkerPool::stop() {
  std::vector<std::thread> threads;
  size_t dropped;
  {
    std::lock_guard lk(mu_);
    stop_.store(true, std::memory_order_release);
    dropped = queued_.load();
    queue_.clear();
    by_key_.clear();
    queued_.store(0);
    threads.swap(threads_);
  }
  engine_.notify_all();
  for (auto& t : threads)
    if (t.joinable()) t.join();
  return dropped;
}

}  // namespace prism::worker
