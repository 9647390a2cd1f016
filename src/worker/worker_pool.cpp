#include "worker/worker_pool.hpp"

namespace prism::worker {
namespace {
thread_local WorkerPool* tls_pool = nullptr;
thread_local int tls_index = -1;
}

int WorkerPool::current_index() noexcept { return tls_index; }

WorkerPool::WorkerPool(Options options, transport::ProgressEngine& engine)
    : options_(options), engine_(engine) {
  if (options_.slots < 1) options_.slots = 1;
}

WorkerPool::~WorkerPool() { stop(); }

WorkerPool* WorkerPool::current() noexcept { return tls_pool; }

void WorkerPool::start() {
  std::lock_guard lk(mu_);
  for (int i = 0; i < options_.slots; ++i) spawn_locked();
}

void WorkerPool::spawn_locked() {
  const int index = static_cast<int>(threads_.size());
  threads_.emplace_back([this, index] { thread_main(index); });
}

size_t WorkerPool::threads() const {
  std::lock_guard lk(mu_);
  return threads_.size();
}

void WorkerPool::ensure_runner_locked() {
  if (stop_ || queued_.load() == 0 || active_.load() >= options_.slots) return;
  if (static_cast<int>(threads_.size()) < options_.slots + blocked_.load()) spawn_locked();
}

void WorkerPool::submit(Job job) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(job));
    queued_.fetch_add(1, std::memory_order_release);
    ensure_runner_locked();
  }
  engine_.notify(transport::ProgressEngine::kWork);
}

void WorkerPool::thread_main(int index) {
  tls_pool = this;
  tls_index = index;
  if (options_.pin && options_.topology) options_.topology->pin_current_thread(index);
  while (true) {
    idle_.fetch_add(1, std::memory_order_acq_rel);
    engine_.wait_until([this] {
      return stop_.load(std::memory_order_acquire) ||
             (queued_.load(std::memory_order_acquire) > 0 &&
              active_.load(std::memory_order_acquire) < options_.slots);
    }, transport::ProgressEngine::Clock::time_point::max(), transport::ProgressEngine::kWork);
    idle_.fetch_sub(1, std::memory_order_acq_rel);
    if (stop_.load(std::memory_order_acquire)) break;
    Job job;
    {
      std::lock_guard lk(mu_);
      if (queue_.empty() || active_.load() >= options_.slots) continue;  // another thread won
      job = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_release);
      active_.fetch_add(1, std::memory_order_acq_rel);
    }
    job();
    active_.fetch_sub(1, std::memory_order_acq_rel);
    if (queued_.load(std::memory_order_acquire) > 0) engine_.notify(transport::ProgressEngine::kWork);
  }
  tls_pool = nullptr;
}

void WorkerPool::lend_slot() {
  {
    std::lock_guard lk(mu_);
    blocked_.fetch_add(1, std::memory_order_acq_rel);
    active_.fetch_sub(1, std::memory_order_acq_rel);
    ensure_runner_locked();
  }
  engine_.notify(transport::ProgressEngine::kWork);
}

void WorkerPool::reclaim_slot() {
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
    dropped = queue_.size();
    queue_.clear();
    queued_.store(0);
    threads.swap(threads_);
  }
  engine_.notify(transport::ProgressEngine::kWork);
  for (auto& t : threads)
    if (t.joinable()) t.join();
  return dropped;
}

}  // namespace prism::worker
