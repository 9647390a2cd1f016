// Per-rank logging on spdlog.
//
// spdlog's default logger is process-wide; a rank is a process, so that is
// exactly "one logger per rank". init_rank_logging() names it after the rank
// and role, and optionally sends it to <run_dir>/rank-<N>.log.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/status.hpp"

namespace prism {

/// Configure this process's logger. Thread-safe after it returns.
Status init_rank_logging(int rank, const std::string& role, const std::string& level,
                         const std::string& file /* "" = stderr */);

}  // namespace prism

#define PRISM_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define PRISM_LOG_DEBUG(...) spdlog::debug(__VA_ARGS__)
#define PRISM_LOG_INFO(...) spdlog::info(__VA_ARGS__)
#define PRISM_LOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define PRISM_LOG_ERROR(...) spdlog::error(__VA_ARGS__)
