// Liveness: which ranks of the job are still there (docs/fault-tolerance.md).
//
// The driver's rank watches every other node rank and they watch it: each
// sends the other a small heartbeat every interval, and a rank not heard
// from for the timeout is lost. A transport-level signal would be faster,
// but a process killed with SIGKILL leaves shared-memory peers nothing to
// notice, and UCX aborts on a dead TCP peer unless every endpoint runs in
// peer-error mode; a heartbeat works the same over every transport.
//
// FailureDetector is the pure part (unit-tested with a fake clock);
// Heartbeats runs it on a thread of its own that sleeps between ticks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace prism::membership {

class FailureDetector {
 public:
  /// Watches `ranks` from `now_us` on.
  FailureDetector(std::vector<int> ranks, int64_t timeout_us, int64_t now_us);
  void heard(int rank, int64_t now_us);
  /// The watched ranks silent for longer than the timeout, each reported
  /// once. A tick more than half a timeout after the previous one means
  /// this process stalled (descheduled on a busy host): every rank's clock
  /// restarts instead, so a stall here is never taken for deaths there.
  std::vector<int> tick(int64_t now_us);

 private:
  struct Watched {
    int rank;
    int64_t last_us;
    bool lost = false;
  };
  std::vector<Watched> watched_;
  int64_t timeout_us_;
  int64_t last_tick_us_;
};

class Heartbeats {
 public:
  struct Options {
    std::vector<int> send_to;  // ranks that hear from this one every interval
    std::vector<int> watch;    // ranks this one declares lost when silent
    int64_t interval_us = 300'000;
    int64_t timeout_us = 3'000'000;
  };
  /// `send(rank)` sends one heartbeat; `lost(rank)` is called once per lost
  /// rank. Both run on the heartbeat thread.
  Heartbeats(Options options, std::function<void(int)> send, std::function<void(int)> lost);
  ~Heartbeats();
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;

  void start();
  void stop();
  /// A heartbeat from `rank` arrived. Thread-safe, cheap (no lock).
  void heard(int rank) noexcept;

  static int64_t now_us() noexcept;

 private:
  void run();

  Options options_;
  std::function<void(int)> send_, lost_;
  std::vector<std::atomic<int64_t>> heard_;  // by rank: last heartbeat (us), 0: none yet
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace prism::membership
