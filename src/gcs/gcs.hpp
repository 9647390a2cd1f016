// Global Control Store (GCS): the one include the runtime needs.
//
// WHAT IT IS
//   Four tables (tasks, objects, actors, nodes; see records.hpp) sharded by
//   key hash over S shards; each shard is a chain of R replicas on distinct
//   GCS ranks (chain replication, van Renesse & Schneider, OSDI 2004, as in
//   the Ray paper's GCS). The component is transport-free: GcsServer and
//   GcsClient consume bytes through handle(), emit bytes through an Outbox,
//   and keep time only through tick(now_us). Tests run whole chains in one
//   thread through a fake network; the runtime runs them over UCX.
//
// WRITES AND READS
//   A client sends a write to the head of the key's shard. The head assigns
//   the next sequence number, applies it, and forwards it; each replica
//   applies in sequence order and forwards; the tail applies, replies to the
//   client, publishes to subscribers, and sends a cumulative Ack up the
//   chain (each replica trims its log as acks arrive). Reads go to the tail,
//   which holds only committed writes. Subscriptions are writes too, so every
//   replica knows every subscriber; notifications are sent by the tail at
//   commit, carry the row and its version (the commit sequence number), and
//   are delivered at least once. A kBatch write carries many row updates of
//   one shard as one write (one sequence number, one reply with a code per
//   update): the runtime records lineage that way.
//
// CLIENT RETRIES
//   Every request has a client-unique id. A client that gets no reply
//   resends the same bytes, rotating through the chain members and then the
//   other GCS ranks; a rank that is not the head (writes) or tail (reads)
//   answers with a Redirect carrying its newer chain. Each replica records
//   the outcome of each write per (client rank, client incarnation, request
//   id) as part of the replicated state, so a retried write is answered from
//   that record instead of being applied twice. Clients piggyback an "ack
//   floor" (all ids below it are answered) so replicas forget old outcomes.
//
// MEMBERSHIP: WHO DECIDES THE CHAIN (the choice, and why)
//   There is no master. Every GCS rank heartbeats every other GCS rank, and
//   each heartbeat carries the sender's ChainConfig of every shard (epoch,
//   members head->tail, the epoch at which each member joined). A rank adopts
//   any config that supersedes its own (higher epoch; see supersedes()).
//   A chain's *coordinator* is, deterministically, the first member of its
//   current config that the observer has heard from within the failure
//   timeout. Only the coordinator changes the chain: it drops members it has
//   not heard from, and while the chain is shorter than R it appends a spare
//   (a live GCS rank in no chain) at the tail; the new config gets epoch+1 and
//   is gossiped at once. Why not a master replica: a master is one more
//   thing to replicate and fail over; with the rule above every rank computes
//   the same coordinator from the same information, and a chain of R replicas
//   survives R-1 failures with no extra ranks.
//
//   Failure model: ranks fail by stopping (crash, or set_silent() in tests);
//   the failure detector is a timeout, so a rank that is alive but silent
//   longer than failure_timeout_us is treated as dead, cut out, and on its
//   return finds (from heartbeats) that it was removed; it drops its copy and
//   becomes a spare. The join epoch in the config stops a rank that missed
//   its own removal and re-addition from keeping stale state. A rank that
//   notices it stalled (a tick after a long gap) restarts its peers' timeouts
//   and serves nothing until a peer's heartbeat refreshes its view. Two ranks
//   that suspect each other at the same instant can still propose
//   conflicting configs of the same epoch; supersedes() orders them totally
//   so all ranks converge, and epoch/predecessor checks on every Forward keep
//   a write from committing through a chain its members disagree on. This is
//   not consensus: a true network partition inside the GCS group is outside
//   the model (MPI jobs do not survive one anyway).
//
// RECONFIGURATION WITHOUT LOSING ACKNOWLEDGED WRITES
//   Invariant: along a chain each replica's history is a prefix of its
//   predecessor's; the tail's is the committed history. On adopting a new
//   config every non-head member sends its predecessor a SyncRequest (its
//   applied sequence number); the predecessor re-sends the log entries after
//   it, or the whole shard state when its log does not reach back (a new
//   spare, or a long gap). A member that becomes tail commits everything it
//   has applied (replying to those clients again; replies are idempotent).
//   Unacknowledged entries are also re-sent on a retransmission timer, so
//   lost, delayed or reordered messages only cost time. Forwards carry the
//   epoch and are accepted only from the current predecessor in the current
//   epoch; out-of-order ones wait in a reorder buffer.
//
// THREADING
//   None inside. Each object is driven by one thread; callbacks run inside
//   handle()/tick().
#pragma once

#include "gcs/client.hpp"    // IWYU pragma: export
#include "gcs/layout.hpp"    // IWYU pragma: export
#include "gcs/messages.hpp"  // IWYU pragma: export
#include "gcs/outbox.hpp"    // IWYU pragma: export
#include "gcs/records.hpp"   // IWYU pragma: export
#include "gcs/server.hpp"    // IWYU pragma: export
#include "gcs/snapshot.hpp"  // IWYU pragma: export
