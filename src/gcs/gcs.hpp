// Global Control Store (GCS): the one include the runtime needs.
//
// Tables (tasks, objects, actors, nodes; each described once in records.hpp)
// sharded by key over S shards; each shard a chain of R replicas on distinct
// GCS ranks (chain replication, van Renesse & Schneider, OSDI 2004, as in the
// Ray paper's GCS): writes enter at the head and commit at the tail, which
// replies, publishes to subscribers and acks up the chain; reads go to the
// tail. Clients retry with request ids that replicas remember, so a write
// takes effect once. There is no master: every GCS rank gossips its view of
// every chain, and each chain's first live member that holds its state cuts
// out silent members and appends spares (epoch + 1); a chain of R survives
// R - 1 failures. Failure model: ranks fail by stopping; a partition inside
// the GCS group is outside it.
//
// Transport-free: GcsServer and GcsClient take bytes in through handle(),
// send bytes through an Outbox and keep time only through tick(now_us). No
// threads inside; each object is driven by one thread, and callbacks run
// inside handle()/tick(). The protocol, its safety rules, the wire format and
// how to add a table or a column: docs/gcs.md.
#pragma once

#include "gcs/client.hpp"    // IWYU pragma: export
#include "gcs/layout.hpp"    // IWYU pragma: export
#include "gcs/messages.hpp"  // IWYU pragma: export
#include "gcs/outbox.hpp"    // IWYU pragma: export
#include "gcs/records.hpp"   // IWYU pragma: export
#include "gcs/server.hpp"    // IWYU pragma: export
#include "gcs/snapshot.hpp"  // IWYU pragma: export
