// End-of-job reports, collected on rank 0 at shutdown: the timeline file and
// the run summary (tasks, failures, bytes moved, per-node utilisation).
#pragma once

#include <cstdint>
#include <string>

#include "common/config.hpp"
#include "runtime/layout.hpp"
#include "runtime/mpi_bootstrap.hpp"
#include "runtime/node_runtime.hpp"

namespace prism::runtime {

/// Collective over `boot`: every rank calls it after its runtime stopped.
/// `node` is null on GCS ranks. `wall_us` is the job's duration so far.
void write_job_reports(MpiBootstrap& boot, const ClusterLayout& layout, const Config& config,
                       NodeRuntime* node, const transport::TransportStats& transport,
                       int64_t wall_us);

}  // namespace prism::runtime
