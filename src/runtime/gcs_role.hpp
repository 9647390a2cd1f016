// What a GCS rank runs: its progress loop, serving GCS messages until the
// driver's shutdown arrives.
#pragma once

#include "common/config.hpp"
#include "runtime/layout.hpp"
#include "transport/progress_engine.hpp"

namespace prism::runtime {

class GcsRole {
 public:
  GcsRole(const Config& config, transport::Transport& transport, ClusterLayout layout);
  /// Serves until shutdown; returns the job's exit code. Call on the main thread.
  int run();

 private:
  void on_message(int src, std::span<const std::byte> msg);

  transport::Transport& transport_;
  ClusterLayout layout_;
  transport::ProgressEngine engine_;
  int exit_code_ = 0;
};

}  // namespace prism::runtime
