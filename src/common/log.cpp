#include "common/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace prism {

Status init_rank_logging(int rank, const std::string& role, const std::string& level,
                         const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return {Errc::kInvalidArgument,
            "unknown log level '" + level + "' (use trace, debug, info, warn, error or off)"};
  std::shared_ptr<spdlog::logger> logger;
  const std::string name = role + "-" + std::to_string(rank);
  try {
    if (file.empty())
      logger =
          std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    else
      logger = std::make_shared<spdlog::logger>(
          name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/true));
  } catch (const spdlog::spdlog_ex& e) {
    return {Errc::kInvalidArgument, std::string("cannot open log file: ") + e.what()};
  }
  logger->set_pattern("[%H:%M:%S.%f] [prism %n] [%l] %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return Status::ok();
}

}  // namespace prism
