// libFuzzer target over every decoder of bytes that come from another rank:
// the runtime's messages (runtime/protocol.hpp), the GCS messages, records,
// shard state and bundles (src/gcs, runtime/gcs_wire.hpp), and user values
// (prism/serialization.hpp, Boost archives through CheckedBinaryIArchive).
//
// The first input byte picks the decoder, the rest is the message. A decoder
// must return an error (or throw SerializationError for a user value): a
// crash, a sanitizer report, an allocation above -malloc_limit_mb or any
// other exception is a finding. Decoded runtime messages are also encoded
// again and decoded a second time, which must succeed and give the same
// bytes (the encoder and decoder agree on the layout).
//
// Build and run: scripts/fuzz.sh (docs/hardening.md).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/codec.hpp"
#include "fuzz_targets.hpp"
#include "gcs/messages.hpp"
#include "gcs/records.hpp"
#include "gcs/store.hpp"
#include "runtime/gcs_wire.hpp"
#include "runtime/protocol.hpp"

using namespace prism;
using namespace prism::fuzz;

namespace {

// A finding that is not a crash by itself (a round trip that disagrees).
[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "FINDING: %s\n", what);
  std::abort();
}

Bytes encoded_task(const runtime::TaskSpec& t) {
  Writer w;
  runtime::encode_task(t, w);
  return w.take();
}

void fuzz_task(std::span<const std::byte> b) {
  Reader r(b);
  runtime::TaskSpec t;
  if (!runtime::decode_task(r, t)) return;
  // decode_task reads a prefix (the caller checks trailing bytes); what it
  // decoded must survive another round trip unchanged.
  const Bytes once = encoded_task(t);
  Reader r2(once);
  runtime::TaskSpec u;
  if (!runtime::decode_task(r2, u) || !r2.finish("task").is_ok())
    finding("a decoded task spec does not decode again");
  if (encoded_task(u) != once) finding("task spec round trip changed the bytes");
}

void fuzz_task_result(std::span<const std::byte> b) {
  Reader r(b);
  ObjectId id;
  runtime::ObjectValue v;
  std::vector<ObjectId> contained;
  uint32_t attempt = 0;
  if (!runtime::decode_task_result(r, id, v, contained, &attempt)) return;
  Writer w;
  runtime::encode_task_result(id, v, contained, w, attempt);
  const Bytes once = w.take();
  Reader r2(std::span<const std::byte>(once).subspan(1));
  ObjectId id2;
  runtime::ObjectValue v2;
  std::vector<ObjectId> contained2;
  uint32_t attempt2 = 0;
  if (!runtime::decode_task_result(r2, id2, v2, contained2, &attempt2))
    finding("a decoded task result does not decode again");
  if (id2 != id || contained2 != contained || attempt2 != attempt || v2.kind != v.kind)
    finding("task result round trip changed it");
}

// A message struct of runtime/protocol.hpp: what decodes must encode to a
// message that decodes to the same bytes again.
template <class M>
void fuzz_message(std::span<const std::byte> b) {
  Reader r(b);
  M m;
  if (!runtime::decode_message(r, m)) return;
  Writer w;
  runtime::encode_message(m, w);
  const Bytes once = w.take();
  Reader r2(std::span<const std::byte>(once).subspan(1));  // after the kind byte
  M again;
  if (!runtime::decode_message(r2, again))
    finding("a decoded runtime message does not decode again");
  Writer w2;
  runtime::encode_message(again, w2);
  if (w2.take() != once) finding("runtime message round trip changed the bytes");
}

void fuzz_runtime(uint8_t which, std::span<const std::byte> b) {
  switch (which % 11) {
    case 0:
      fuzz_task(b);
      break;
    case 1:
      fuzz_task_result(b);
      break;
    case 2: {
      Reader r(b);
      runtime::ObjectValue v;
      (void)runtime::decode_object_value(r, v);
      break;
    }
    case 3: {  // a batch of task specs, as kSubmitTasks carries them
      Reader r(b);
      (void)runtime::for_each_batched(r, [](std::span<const std::byte> body) { fuzz_task(body); });
      break;
    }
    case 4: {
      Reader r(b);
      scheduler::TaskRequest q;
      (void)runtime::decode_spill_header(r, q);
      break;
    }
    case 5: {
      Reader r(b);
      scheduler::NodeLoad l;
      (void)runtime::decode_node_load(r, l);
      break;
    }
    case 6: {
      Reader r(b);
      scheduler::StealOrder o;
      (void)runtime::decode_steal_order(r, o);
      break;
    }
    case 7:
      fuzz_message<runtime::KillActorMsg>(b);
      break;
    case 8:
      fuzz_message<runtime::ActorDiedMsg>(b);
      break;
    case 9:
      fuzz_message<runtime::ActorCheckpointMsg>(b);
      break;
    case 10:
      fuzz_message<runtime::ObjectLostMsg>(b);
      break;
  }
}

template <class M>
void decode_as(std::span<const std::byte> b) {
  M m;
  (void)gcs::decode(b, m);
}

void fuzz_gcs(uint8_t which, std::span<const std::byte> b) {
  switch (which % 4) {
    case 0: {  // a whole GCS message, routed on its kind byte as the server does
      auto k = gcs::peek_kind(b);
      if (!k) return;
      switch (*k) {
        case gcs::MsgKind::kWriteRequest:
          return decode_as<gcs::WriteRequest>(b);
        case gcs::MsgKind::kReadRequest:
          return decode_as<gcs::ReadRequest>(b);
        case gcs::MsgKind::kReply:
          return decode_as<gcs::Reply>(b);
        case gcs::MsgKind::kRedirect:
          return decode_as<gcs::Redirect>(b);
        case gcs::MsgKind::kNotify:
          return decode_as<gcs::Notify>(b);
        case gcs::MsgKind::kHeartbeat:
          return decode_as<gcs::Heartbeat>(b);
        case gcs::MsgKind::kForward:
          return decode_as<gcs::Forward>(b);
        case gcs::MsgKind::kAck:
          return decode_as<gcs::Ack>(b);
        case gcs::MsgKind::kSyncRequest:
          return decode_as<gcs::SyncRequest>(b);
        case gcs::MsgKind::kStateTransfer:
          return decode_as<gcs::StateTransfer>(b);
      }
      return;
    }
    case 1: {  // a key and a record of the table named by the first byte
      if (b.empty()) return;
      const auto table = static_cast<gcs::TableId>(b[0]);
      (void)gcs::validate_key(table, b.subspan(1));
      (void)gcs::validate_record(table, b.subspan(1));
      gcs::WriteOp op;
      Reader r(b);
      gcs::get_op(r, op);
      if (r.ok()) (void)gcs::validate(op);
      break;
    }
    case 2: {  // a replica's whole state (state transfer) and scan listings
      Reader r(b);
      gcs::ShardStore store;
      store.decode(r);
      (void)gcs::decode_scan<gcs::TaskTable>(b);
      (void)gcs::decode_scan<gcs::ObjectTable>(b);
      (void)gcs::decode_scan<gcs::ActorTable>(b);
      (void)gcs::decode_scan<gcs::NodeTable>(b);
      break;
    }
    case 3: {  // a bundle of GCS messages (runtime/gcs_wire.hpp), or one log entry
      (void)runtime::for_each_gcs_message(
          b, [](std::span<const std::byte> part) { (void)gcs::peek_kind(part); });
      Reader r(b);
      gcs::LogEntry e;
      gcs::get_entry(r, e, /*with_outcome=*/true);
      gcs::ChainConfig c;
      Reader r2(b);
      gcs::get_config(r2, c);
      break;
    }
  }
}

// ---- seeds: one valid encoding of each input shape --------------------------

std::vector<Bytes> seeds() {
  std::vector<Bytes> out;
  runtime::TaskSpec t;
  t.id = {0, 0, 1};
  t.function = "f";
  t.resources.custom["fpga"] = 1;
  t.args.resize(3);
  t.args[0].value.assign(8, std::byte{1});
  t.args[1].kind = runtime::WireArg::Kind::kValueWithRefs;
  t.args[1].contained = {{1, 0, 2}};
  t.args[2].kind = runtime::WireArg::Kind::kPendingRef;
  t.group = {0, 0, 9};
  t.group_nodes = {1, 2};
  out.push_back(with_selector(0, 0, encoded_task(t)));
  runtime::TaskSpec call = t;
  call.group = {};
  call.kind = runtime::TaskKind::kActorCall;
  call.actor = {1, 0, 5};
  call.caller_rank = 0;
  call.call_seq = 1;
  out.push_back(with_selector(0, 0, encoded_task(call)));
  runtime::ObjectValue v;
  v.bytes.assign(std::span<const std::byte>(encoded_task(t)));
  Writer w;
  const ObjectId refs[] = {{1, 0, 2}};
  runtime::encode_task_result({2, 0, 7}, v, refs, w, 1);
  out.push_back(with_selector(0, 1, std::span<const std::byte>(w.buffer()).subspan(1)));
  Writer ov;
  v.kind = runtime::ObjectValue::Kind::kError;
  v.error = "task 'f' failed";
  runtime::encode_object_value(v, ov);
  out.push_back(with_selector(0, 2, ov.buffer()));
  runtime::MessageBatch batch(runtime::MessageKind::kSubmitTasks);
  runtime::encode_task(t, batch.begin());
  batch.end();
  runtime::encode_task(call, batch.begin());
  batch.end();
  out.push_back(with_selector(0, 3, std::span<const std::byte>(batch.take().buffer()).subspan(1)));
  Writer sh;
  runtime::encode_spill_header(scheduler::TaskRequest{}, sh);
  out.push_back(with_selector(0, 4, sh.buffer()));
  Writer nl;
  runtime::encode_node_load(scheduler::NodeLoad{}, nl);
  out.push_back(with_selector(0, 5, nl.buffer()));
  Writer so;
  runtime::encode_steal_order({0, 1, 64}, so);
  out.push_back(with_selector(0, 6, so.buffer()));
  auto message_seed = [&](uint8_t which, const auto& m) {
    Writer mw;
    runtime::encode_message(m, mw);
    out.push_back(with_selector(0, which, std::span<const std::byte>(mw.buffer()).subspan(1)));
  };
  message_seed(7, runtime::KillActorMsg{{1, 0, 5}, "was killed by prism::kill", true});
  message_seed(8, runtime::ActorDiedMsg{{1, 0, 5}, "crashed", 2, true});
  const std::byte image[] = {std::byte{0x89}, std::byte{'H'}, std::byte{'D'}, std::byte{'F'}};
  message_seed(9, runtime::ActorCheckpointMsg{{1, 0, 5}, 1, 40, image});
  message_seed(10, runtime::ObjectLostMsg{{2, 0, 7}, "its spill file is gone"});

  using namespace gcs;
  WriteOp loc =
      make_op(OpKind::kAddLocation, TableId::kObjects, encode_key<ObjectTable>({1, 0, 3}));
  loc.rank = 2;
  loc.size = 99;
  loc.owner = 1;
  out.push_back(with_selector(1, 0, encode(WriteRequest{7, 1, 3, 0, loc})));
  out.push_back(with_selector(1, 0, encode(Reply{9, 3, {Errc::kOk, "", true, Bytes(5)}})));
  out.push_back(with_selector(1, 0, encode(Redirect{10, 1, ChainConfig{2, {1, 2}, {1, 2}}})));
  out.push_back(with_selector(1, 0, encode(Heartbeat{{{0, ChainConfig{1, {5, 6}, {1, 1}}}}})));
  LogEntry e;
  e.seq = 12;
  e.client = 3;
  e.op = make_batch({loc, loc});
  e.notices.resize(1);
  out.push_back(with_selector(1, 0, encode(Forward{0, 2, e})));
  Writer op;
  put_op(op, loc);
  out.push_back(with_selector(1, 1, op.buffer()));
  Writer st;
  ShardStore store;
  store.encode(st);
  out.push_back(with_selector(1, 2, st.buffer()));
  Writer le;
  put_entry(le, e, /*with_outcome=*/true);
  out.push_back(with_selector(1, 3, le.buffer()));

  add_value_seeds(out);
  return out;
}

}  // namespace

// PRISM_FUZZ_WRITE_SEEDS=DIR: write the seed corpus into DIR and exit
// (scripts/fuzz.sh starts every run from it, so no corpus is kept in git).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("PRISM_FUZZ_WRITE_SEEDS");
  if (!dir) return 0;
  int n = 0;
  for (const Bytes& b : seeds()) {
    const std::string path = std::string(dir) + "/seed-" + std::to_string(n++);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size()) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      std::exit(1);
    }
    std::fclose(f);
  }
  std::fprintf(stderr, "wrote %d seeds to %s\n", n, dir);
  std::exit(0);
}

// api.cpp defines this, but linking it would pull in the whole runtime (MPI,
// UCX): type names in error messages stay mangled here.
namespace prism::detail {
std::string demangle(const std::type_info& info) {
  return info.name();
}
}  // namespace prism::detail

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (selector % 3) {
    case 0:
      fuzz_runtime(selector / 3, body);
      break;
    case 1:
      fuzz_gcs(selector / 3, body);
      break;
    case 2:
      fuzz_value(selector / 3, body);
      break;
  }
  return 0;
}
