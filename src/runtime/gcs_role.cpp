#include "runtime/gcs_role.hpp"

#include "common/codec.hpp"
#include "common/log.hpp"
#include "runtime/protocol.hpp"

namespace prism::runtime {

GcsRole::GcsRole(const Config& config, transport::Transport& transport, ClusterLayout layout)
    : transport_(transport), layout_(std::move(layout)), engine_(transport, config.spin_us) {
  transport_.set_handler([this](int src, std::span<const std::byte> m) { on_message(src, m); });
}

int GcsRole::run() {
  engine_.run();
  transport_.set_handler([](int, std::span<const std::byte>) {});
  return exit_code_;
}

void GcsRole::on_message(int src, std::span<const std::byte> msg) {
  Reader r(msg);
  const auto kind = r.get<MessageKind>();
  if (kind == MessageKind::kShutdown) {
    exit_code_ = r.get<int32_t>();
    engine_.stop();
    return;
  }
  PRISM_LOG_WARN("GCS rank {}: dropped a message of unknown kind {} from rank {}",
                 layout_.world_rank, static_cast<int>(kind), src);
}

}  // namespace prism::runtime
