#include "worker/worker_pool.hpp"
#include "common/thread_name.hpp"

#include <algorithm>
#include <cmath>

namespace prism::worker {
namespace {
thread_local WorkerPool* tls_pool = nullptr;
thread_local int tls_index = -1;
thread_local const scheduler::ResourceDemand* tls_demand = nullptr;  // of the running job
thread_local std::vector<int> tls_gpu_ids;                           // of the running job
thread_local bool tls_short = false;  // the pool thread's running job was submitted as short
thread_local WorkerPool::Entry* tls_entry = nullptr;  // the job running on this thread
thread_local WorkerPool::Entry* tls_outer_entry = nullptr;  // the one thread_main took
thread_local bool tls_finishing = false;  // in a FinishingScope: this thread looks next
}  // namespace

int WorkerPool::current_index() noexcept {
  return tls_index;
}
const std::vector<int>& WorkerPool::current_gpu_ids() noexcept {
  return tls_gpu_ids;
}

WorkerPool::WorkerPool(Options options, transport::ProgressEngine& engine)
    : options_(std::move(options)),
      slots_(std::max(1, static_cast<int>(std::ceil(options_.resources.num_cpus - 1e-9)))),
      engine_(engine),
      ledger_(options_.resources) {}

WorkerPool::~WorkerPool() {
  stop();
}

WorkerPool* WorkerPool::current() noexcept {
  return tls_pool;
}

void WorkerPool::start() {
  std::lock_guard lk(mu_);
  for (int i = 0; i < slots_; ++i) spawn_locked();
}

void WorkerPool::spawn_locked() {
  ++live_;
  if (!retired_.empty()) {  // its thread has left thread_main: the join is short
    const int index = retired_.back();
    retired_.pop_back();
    auto& t = threads_[static_cast<size_t>(index)];
    t.join();
    t = std::thread([this, index] { thread_main(index); });
    return;
  }
  const int index = static_cast<int>(threads_.size());
  threads_.emplace_back([this, index] { thread_main(index); });
}

size_t WorkerPool::threads() const {
  std::lock_guard lk(mu_);
  return live_;
}

bool WorkerPool::head_fits_locked() const {
  // Called on every submit and pop while all threads are busy. With only
  // plain one-CPU jobs queued (the common case) one ledger check answers.
  static const scheduler::ResourceDemand plain_one{};
  if (unusual_queued_ == 0) return ledger_.fits(plain_one);
  // Otherwise look at a few jobs only, and check one plain one-CPU job for all of them.
  size_t scanned = 0;
  bool plain_checked = false;
  for (const auto& e : queue_) {
    if (e->claimed) continue;
    if (++scanned > kSpawnScanDepth) break;
    if (plain_one_cpu(e->demand)) {
      if (plain_checked) continue;
      plain_checked = true;
    }
    if (ledger_.fits(e->demand)) return true;
  }
  return false;
}

void WorkerPool::ensure_runner_locked() {
  if (stop_ || queued_.load() == 0 || threads_.empty()) return;  // not started: start() spawns
  if (live_ > running_.load()) return;  // a thread is free (idle or about to look again)
  if (head_fits_locked()) spawn_locked();
}

WorkerPool::Ticket WorkerPool::submit(Job job, scheduler::ResourceDemand demand, bool short_job,
                                      std::shared_ptr<void> keep, uint64_t move_tag) {
  bool wake = true;
  Ticket ticket;
  {
    // Built before the lock (a pooled block; nothing shared yet).
    auto e = std::allocate_shared<Entry>(PoolAllocator<Entry>());
    e->job = std::move(job);
    e->keep = std::move(keep);
    e->demand = std::move(demand);
    e->short_job = short_job;
    if (plain_one_cpu(e->demand)) e->move_tag = move_tag;
    ticket = e;
    std::lock_guard lk(mu_);
    if (!plain_one_cpu(e->demand)) ++unusual_queued_;
    if (e->move_tag != kStays) add_locked(movable_queued_, 1);
    queue_.push_back(std::move(e));
    add_locked(queued_, 1);
    add_locked(generation_, 1);
    ensure_runner_locked();
    // A thread running a short job looks at the queue again in microseconds,
    // and so does this one if it is finishing its job (FinishingScope).
    const bool self_next = tls_finishing && tls_pool == this;
    if (short_job || self_next) {
      uint32_t looking = short_job ? running_short_.load(std::memory_order_relaxed) : 0;
      if (self_next && !(short_job && tls_short)) ++looking;
      wake = queued_.load(std::memory_order_relaxed) > looking;
    }
  }
  if (wake) engine_.notify(transport::ProgressEngine::kWork, 1);
  return ticket;
}

std::shared_ptr<WorkerPool::Entry> WorkerPool::pop_locked() {
  const scheduler::ResourceDemand* reserved = nullptr;  // a starving job's demand
  Entry* first_unfit = nullptr;
  size_t scanned = 0;
  for (auto it = queue_.begin(); it != queue_.end() && scanned < kScanDepth;) {
    auto& e = *it;
    if (e->claimed) {  // run inline by a waiter already
      it = queue_.erase(it);
      --claimed_queued_;
      continue;
    }
    ++scanned;
    if (reserved && ledger_.competes(*reserved, e->demand)) {
      ++it;
      continue;
    }
    if (auto grant = ledger_.try_acquire(e->demand)) {
      auto taken = std::move(e);
      queue_.erase(it);
      taken->grant = std::move(*grant);
      taken->claimed = true;
      if (!plain_one_cpu(taken->demand)) --unusual_queued_;
      if (taken->move_tag != kStays) add_locked(movable_queued_, -1);
      add_locked(queued_, -1);
      if (first_unfit) ++first_unfit->passed_over;
      return taken;
    }
    if (!first_unfit) {
      first_unfit = e.get();
      if (e->passed_over >= kStarving) reserved = &e->demand;
    }
    ++it;
  }
  return nullptr;
}

bool WorkerPool::run_inline(const Ticket& ticket) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lk(mu_);
    e = ticket.lock();
    // Only plain jobs. On a worker they run on the caller's CPU (it waits
    // for the job); any other thread (the driver) must get a CPU from the
    // ledger like a worker would. Anything needing a grant (GPUs, several
    // CPUs, ...) waits for the ledger like the rest.
    if (!e || e->claimed || !e->demand.is_plain_cpu()) return false;
    if (tls_pool != this) {
      auto grant = ledger_.try_acquire(e->demand);
      if (!grant) return false;
      e->grant = std::move(*grant);
      add_locked(running_, 1);
    }
    e->claimed = true;
    if (!plain_one_cpu(e->demand)) --unusual_queued_;
    if (e->move_tag != kStays) add_locked(movable_queued_, -1);
    add_locked(queued_, -1);
    // It stays queued (its position is unknown) until a pop passes it; when
    // such jobs make up most of the queue (a recursion run inline by its
    // waiting parents), they go at once, so scans stay proportional to the
    // jobs still waiting.
    if (++claimed_queued_ >= kCompactAt && claimed_queued_ * 2 > queue_.size()) {
      std::erase_if(queue_, [](const std::shared_ptr<Entry>& q) { return q->claimed; });
      claimed_queued_ = 0;
    }
  }
  // A worker running a nested job inline is busy already; another thread
  // (the driver) becomes busy for the job's duration.
  const bool counted = tls_pool == this;
  if (!counted) engine_.enter_busy();
  auto outer_gpus = std::move(tls_gpu_ids);  // the inline job holds no GPUs of the caller's
  tls_gpu_ids.clear();
  // On another thread the job holds a ledger CPU: while it runs, the thread
  // counts as this pool's, so a get() inside it lends that CPU like a worker's.
  auto* outer_pool = tls_pool;
  const auto* outer_demand = tls_demand;
  if (!counted) {
    tls_pool = this;
    tls_demand = &e->demand;
  }
  auto* outer_entry = tls_entry;
  tls_entry = e.get();
  e->job();
  tls_entry = outer_entry;
  tls_pool = outer_pool;
  tls_demand = outer_demand;
  tls_gpu_ids = std::move(outer_gpus);
  if (!counted) {
    engine_.leave_busy();
    std::lock_guard lk(mu_);
    finish_locked(*e);
  }
  if (!counted && queued_.load(std::memory_order_acquire) > 0)
    engine_.notify(transport::ProgressEngine::kWork, 1);
  return true;
}

void WorkerPool::finish_locked(const Entry& e) {
  if (e.keeps) {  // what is not kept goes back (CPUs beyond the kept ones)
    scheduler::ResourceDemand rest;
    rest.num_cpus = std::max(0.0, e.demand.num_cpus - e.kept.num_cpus);
    ledger_.release(rest, {});
    if (e.kept.num_gpus <= 0 && e.demand.num_gpus > 0) {  // GPUs not kept
      scheduler::ResourceDemand gpus;
      gpus.num_cpus = 0;
      gpus.num_gpus = e.demand.num_gpus;
      ledger_.release(gpus, e.grant);
    }
  } else {
    ledger_.release(e.demand, e.grant);
  }
  add_locked(running_, -1);
  add_locked(generation_, 1);
}

void WorkerPool::thread_main(int index) {
  tls_pool = this;
  tls_index = index;
  name_this_thread(("prism-worker-" + std::to_string(index)).c_str());
  if (options_.pin && options_.topology)
    options_.topology->pin_current_thread(options_.first_core + index);
  // Busy (for the host's spin budget) from the first job after a wake-up
  // until it sleeps again, not per job: back-to-back jobs keep the core.
  bool busy = false;
  // A thread beyond the slots' retires once idle for options_.retire_idle.
  const bool extra = index >= slots_;
  auto idle_since = std::chrono::steady_clock::now();
  while (!stop_.load(std::memory_order_acquire)) {
    std::shared_ptr<Entry> entry;
    uint64_t seen;
    {
      std::lock_guard lk(mu_);
      seen = generation_.load(std::memory_order_acquire);
      if (queued_.load() > 0) entry = pop_locked();
      if (entry) {
        add_locked(running_, 1);
        if (entry->short_job) add_locked(running_short_, 1);
        ensure_runner_locked();  // more may fit (fractional CPUs, lent slots)
      } else if (extra && !stop_.load() &&
                 std::chrono::steady_clock::now() - idle_since >= options_.retire_idle) {
        // Under mu_, with nothing to take: a job queued from now on sees
        // one thread fewer and starts another if it needs one.
        --live_;
        retired_.push_back(index);
        break;
      }
    }
    // Took one and more wait: wake the next thread (notify() sends one wake
    // at a time, so threads woken for a burst wake each other in turn).
    if (entry && queued_.load(std::memory_order_acquire) > 0)
      engine_.notify(transport::ProgressEngine::kWork, 1);
    if (!entry) {  // sleep until a job arrives or resources free up
      if (busy) engine_.leave_busy();
      busy = false;
      engine_.wait_until(
          [&] {
            return stop_.load(std::memory_order_acquire) ||
                   (generation_.load(std::memory_order_acquire) != seen &&
                    queued_.load(std::memory_order_acquire) > 0);
          },
          extra ? idle_since + options_.retire_idle
                : transport::ProgressEngine::Clock::time_point::max(),
          transport::ProgressEngine::kWork);
      continue;
    }
    tls_demand = &entry->demand;
    tls_gpu_ids = entry->grant.gpu_ids;
    tls_short = entry->short_job;
    if (!busy) engine_.enter_busy();
    busy = true;
    tls_entry = tls_outer_entry = entry.get();
    entry->job();
    tls_entry = tls_outer_entry = nullptr;
    tls_finishing = false;
    tls_demand = nullptr;
    tls_gpu_ids.clear();
    {
      std::lock_guard lk(mu_);
      if (tls_short) add_locked(running_short_, -1);
      finish_locked(*entry);
    }
    tls_short = false;
    entry.reset();
    if (extra) idle_since = std::chrono::steady_clock::now();
    if (options_.after_job) options_.after_job();
    // This thread looks again itself; wake another only if more may fit.
    if (queued_.load(std::memory_order_acquire) > 1)
      engine_.notify(transport::ProgressEngine::kWork, 1);
  }
  if (busy) engine_.leave_busy();
  tls_pool = nullptr;
}

WorkerPool::FinishingScope::FinishingScope(WorkerPool& pool)
    : active_(tls_pool == &pool && tls_entry && tls_entry == tls_outer_entry) {
  if (active_) tls_finishing = true;
}

WorkerPool::FinishingScope::~FinishingScope() {
  if (active_) tls_finishing = false;
}

void WorkerPool::lend_slot() {
  engine_.leave_busy();  // blocked in get(): its core is free for others
  {
    std::lock_guard lk(mu_);
    if (tls_demand) ledger_.lend_cpus(tls_demand->num_cpus);
    add_locked(blocked_, 1);
    if (tls_short) add_locked(running_short_, -1);
    add_locked(generation_, 1);
    ensure_runner_locked();
  }
  engine_.notify(transport::ProgressEngine::kWork, 1);
}

scheduler::ResourceGrant WorkerPool::keep_after_job(const scheduler::ResourceDemand& part) {
  if (!tls_entry || tls_pool != this) return {};
  std::lock_guard lk(mu_);
  tls_entry->keeps = true;
  tls_entry->kept = part;
  scheduler::ResourceGrant g;
  if (part.num_gpus > 0) g = tls_entry->grant;
  return g;
}

void WorkerPool::release_kept(const scheduler::ResourceDemand& part,
                              const scheduler::ResourceGrant& grant) {
  {
    std::lock_guard lk(mu_);
    ledger_.release(part, grant);
    add_locked(generation_, 1);
    ensure_runner_locked();
  }
  engine_.notify(transport::ProgressEngine::kWork, 1);  // a queued job may fit now
}

std::optional<scheduler::ResourceGrant> WorkerPool::try_reserve(
    const scheduler::ResourceDemand& demand) {
  std::lock_guard lk(mu_);
  return ledger_.try_acquire(demand);
}

int WorkerPool::room_for(const scheduler::ResourceDemand& each, int limit) const {
  std::lock_guard lk(mu_);
  // Take and give back on the real ledger (it knows how GPUs share), under
  // one lock hold: nobody sees the trial.
  auto& ledger = const_cast<scheduler::ResourceLedger&>(ledger_);
  std::vector<scheduler::ResourceGrant> taken;
  while (static_cast<int>(taken.size()) < limit) {
    auto g = ledger.try_acquire(each);
    if (!g) break;
    taken.push_back(std::move(*g));
  }
  for (const auto& g : taken) ledger.release(each, g);
  return static_cast<int>(taken.size());
}

WorkerPool::GpuScope::GpuScope(const std::vector<int>& ids) : outer_(std::move(tls_gpu_ids)) {
  tls_gpu_ids = ids;
}
WorkerPool::GpuScope::~GpuScope() {
  tls_gpu_ids = std::move(outer_);
}

void WorkerPool::reclaim_slot() {
  engine_.enter_busy();
  std::lock_guard lk(mu_);
  if (tls_demand) ledger_.reclaim_cpus(tls_demand->num_cpus);
  add_locked(blocked_, -1);
  if (tls_short) add_locked(running_short_, 1);
}

std::vector<uint64_t> WorkerPool::take_movable(size_t n,
                                               const std::function<bool(uint64_t)>& take) {
  std::vector<uint64_t> tags;
  std::lock_guard lk(mu_);
  if (n == 0 || movable_queued_.load(std::memory_order_relaxed) == 0) return tags;
  // One pass, oldest first: the oldest jobs of a recursion are its largest
  // subtrees, the ones worth a message to another node.
  bool done = false;
  std::erase_if(queue_, [&](const std::shared_ptr<Entry>& e) {
    if (done || e->claimed || e->move_tag == kStays) return false;
    if (tags.size() == n || (take && !take(e->move_tag))) {
      done = true;
      return false;
    }
    tags.push_back(e->move_tag);
    return true;
  });
  add_locked(movable_queued_, -static_cast<int>(tags.size()));
  add_locked(queued_, -static_cast<int>(tags.size()));
  return tags;
}

size_t WorkerPool::queue_entries() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

bool WorkerPool::has_room(const scheduler::ResourceDemand& demand, size_t max_queued) const {
  if (queued_.load(std::memory_order_acquire) >= max_queued) return false;
  if (demand.is_plain_cpu()) return true;
  std::lock_guard lk(mu_);
  return ledger_.fits(demand);
}

WorkerPool::Load WorkerPool::load() const {
  Load l;
  l.queued = static_cast<uint32_t>(queued_.load());
  l.movable = std::min(l.queued, movable_queued_.load());
  const size_t running = running_.load();
  l.running = static_cast<uint32_t>(running - std::min<size_t>(running, blocked_.load()));
  return l;
}

size_t WorkerPool::stop() {
  std::vector<std::thread> threads;
  size_t dropped;
  {
    std::lock_guard lk(mu_);
    stop_.store(true, std::memory_order_release);
    dropped = queued_.load();
    queue_.clear();
    unusual_queued_ = 0;
    claimed_queued_ = 0;
    queued_.store(0);
    movable_queued_.store(0);
    threads.swap(threads_);
    retired_.clear();
    live_ = 0;
  }
  engine_.notify_all();
  for (auto& t : threads)
    if (t.joinable()) t.join();
  return dropped;
}

}  // namespace prism::worker
