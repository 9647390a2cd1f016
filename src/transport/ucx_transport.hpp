// UCX implementation of Transport: active messages for the control plane,
// ucp_get_nbx with packed rkeys for the data plane, and the worker's event fd
// (UCP_FEATURE_WAKEUP) so an idle rank sleeps in epoll instead of spinning.
#pragma once

#include <memory>

#include "transport/bootstrap.hpp"
#include "transport/transport.hpp"

namespace prism::transport {

/// Creates the UCX context and worker, all-gathers worker addresses through
/// `boot` and connects to every rank. Collective: every rank must call it.
[[nodiscard]] Expected<std::unique_ptr<Transport>> create_ucx_transport(Bootstrap& boot);

/// Closes endpoints (collective: keeps progressing through `boot`'s barrier so
/// peers can finish their flushes) and destroys the transport.
void destroy_ucx_transport(std::unique_ptr<Transport> transport, Bootstrap& boot);

}  // namespace prism::transport
