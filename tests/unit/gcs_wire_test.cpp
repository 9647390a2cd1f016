// runtime/gcs_wire: GCS messages bundled per destination over a transport,
// cumulative Acks folded, and bundles taken apart (or refused) on receipt.
#include <gtest/gtest.h>

#include <vector>

#include "gcs/gcs.hpp"
#include "runtime/gcs_wire.hpp"
#include "transport/loopback_transport.hpp"

namespace prism::runtime {
namespace {

using gcs::Bytes;

struct Received {
  int src;
  Bytes bytes;
};

// Rank 0 is a client, ranks 1 and 2 form the GCS group.
struct Fixture {
  transport::LoopbackFabric fabric{3};
  gcs::GcsLayout layout = *gcs::GcsLayout::make({1, 2}, 2);
  std::vector<std::vector<Received>> got = std::vector<std::vector<Received>>(3);
  Fixture() {
    for (int r = 0; r < 3; ++r)
      fabric.at(r).set_handler([this, r](int src, std::span<const std::byte> m) {
        got[static_cast<size_t>(r)].push_back({src, Bytes(m.begin(), m.end())});
      });
  }
  void poll_all() {
    for (int r = 0; r < 3; ++r)
      while (fabric.at(r).try_poll() > 0) {
      }
  }
  // The GCS messages rank `r` received, unbundled.
  std::vector<Bytes> unbundled(int r) {
    std::vector<Bytes> out;
    for (auto& m : got[static_cast<size_t>(r)])
      EXPECT_TRUE(for_each_gcs_message(m.bytes, [&](std::span<const std::byte> part) {
        out.emplace_back(part.begin(), part.end());
      }));
    return out;
  }
};

TEST(GcsWire, OneTransportMessagePerDestinationAndRound) {
  Fixture f;
  GcsOutbox out(f.fabric.at(1), f.layout);
  std::vector<Bytes> to_client, to_peer;
  for (uint64_t i = 1; i <= 50; ++i) {
    to_client.push_back(gcs::encode(gcs::Reply{i, i, {}}));
    out.send(0, to_client.back());
  }
  to_peer.push_back(gcs::encode(gcs::Heartbeat{}));
  out.send(2, to_peer.back());
  EXPECT_EQ(out.flush(), 51u);
  EXPECT_TRUE(out.empty());
  f.poll_all();
  ASSERT_EQ(f.got[0].size(), 1u);  // one bundle of 50 replies
  EXPECT_EQ(f.got[0][0].bytes[0], gcs::kBundleToClient);
  EXPECT_EQ(f.unbundled(0), to_client);
  ASSERT_EQ(f.got[2].size(), 1u);  // a lone message travels bare
  EXPECT_EQ(f.got[2][0].bytes, to_peer[0]);
}

TEST(GcsWire, LargeRoundsSplitIntoBoundedBundles) {
  Fixture f;
  GcsOutbox out(f.fabric.at(0), f.layout);
  std::vector<Bytes> sent;
  for (uint64_t i = 1; i <= 400; ++i) {
    gcs::WriteOp op = gcs::make_op(gcs::OpKind::kPut, gcs::TableId::kActors, Bytes(16), Bytes(40));
    sent.push_back(gcs::encode(gcs::WriteRequest{i, 1, 1, 0, op}));
    out.send(1, sent.back());
  }
  out.flush();
  f.poll_all();
  EXPECT_GT(f.got[1].size(), 1u);
  for (auto& m : f.got[1]) {
    EXPECT_LE(m.bytes.size(), GcsOutbox::kMaxBundleBytes);
    EXPECT_EQ(m.bytes[0], gcs::kBundleToServer);
  }
  EXPECT_EQ(f.unbundled(1), sent);  // all of them, in order
}

TEST(GcsWire, CumulativeAcksToANeighbourFoldIntoTheNewest) {
  Fixture f;
  GcsOutbox out(f.fabric.at(2), f.layout);
  out.send(1, gcs::encode(gcs::Ack{0, 3, 10}));
  out.send(1, gcs::encode(gcs::Heartbeat{}));
  out.send(1, gcs::encode(gcs::Ack{0, 3, 12}));
  out.send(1, gcs::encode(gcs::Ack{1, 3, 5}));  // another shard: kept
  out.send(1, gcs::encode(gcs::Ack{0, 4, 1}));  // another epoch: kept
  out.flush();
  EXPECT_EQ(out.stats().acks_coalesced, 1u);
  f.poll_all();
  const auto msgs = f.unbundled(1);
  ASSERT_EQ(msgs.size(), 4u);
  gcs::Ack a;
  ASSERT_TRUE(gcs::decode(msgs[0], a));
  EXPECT_EQ(a.committed, 12u);  // the newest, in the first one's place
  ASSERT_TRUE(gcs::decode(msgs[2], a));
  EXPECT_EQ(a.shard, 1u);
  ASSERT_TRUE(gcs::decode(msgs[3], a));
  EXPECT_EQ(a.epoch, 4u);
}

TEST(GcsWire, MalformedBundlesAreRefused) {
  int seen = 0;
  auto count = [&](std::span<const std::byte>) { ++seen; };
  const Bytes empty;
  EXPECT_FALSE(for_each_gcs_message(empty, count));
  // Count beyond the bytes.
  EXPECT_FALSE(for_each_gcs_message(
      Bytes{gcs::kBundleToServer, std::byte{0xFF}, std::byte{0xFF}, std::byte{0}, std::byte{0}},
      count));
  // An entry longer than what is left.
  EXPECT_FALSE(for_each_gcs_message(Bytes{gcs::kBundleToClient, std::byte{1}, std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{9}, std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{0x50}},
                                    count));
  // A bundle inside a bundle; an empty entry.
  EXPECT_FALSE(for_each_gcs_message(Bytes{gcs::kBundleToServer, std::byte{1}, std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{1}, std::byte{0},
                                          std::byte{0}, std::byte{0}, gcs::kBundleToServer},
                                    count));
  EXPECT_FALSE(for_each_gcs_message(Bytes{gcs::kBundleToServer, std::byte{1}, std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                                          std::byte{0}, std::byte{0}},
                                    count));
  // Trailing bytes after the last entry.
  EXPECT_FALSE(for_each_gcs_message(Bytes{gcs::kBundleToServer, std::byte{0}, std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{7}},
                                    count));
  EXPECT_EQ(seen, 0);
  // A bare message is passed through as is.
  EXPECT_TRUE(for_each_gcs_message(gcs::encode(gcs::Heartbeat{}), count));
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace prism::runtime
