// The two futex(2) calls and the spin-loop hint that Prism's own wait
// primitives (the progress engine, AdaptiveMutex) are built on.
// std::atomic::wait has no timeout, hence plain syscalls.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <ctime>

namespace prism {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Sleeps while `word` holds `expected`, at most `timeout_ns` (< 0: no limit).
inline void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeout_ns = -1) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr,
          0);
}

inline void futex_wake(std::atomic<uint32_t>& word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

inline void futex_wake_all(std::atomic<uint32_t>& word) {
  futex_wake(word, INT_MAX);
}

}  // namespace prism
