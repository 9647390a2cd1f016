// Names the calling thread for top -H, perf and gdb ("prism-worker-3"), so a
// profile of a rank shows which of Prism's threads spends the time.
#pragma once

#include <pthread.h>

#include <cstdio>

namespace prism {

/// Sets the calling thread's name; Linux keeps the first 15 characters.
inline void name_this_thread(const char* name) noexcept {
  char cut[16];
  std::snprintf(cut, sizeof cut, "%s", name);
  pthread_setname_np(pthread_self(), cut);
}

}  // namespace prism
