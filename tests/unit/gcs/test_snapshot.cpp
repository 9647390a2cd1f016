// HDF5 snapshots: round trip, per-rank files merged, fetched through the
// protocol, bad files, and the prism-gcs-dump tool.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "fake_network.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::oid;

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("prism-gcs-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Fills a cluster with a bit of everything.
void populate(Cluster& c) {
  int pending = 0;
  auto done = [&](Status s) {
    EXPECT_TRUE(s) << s.to_string();
    --pending;
  };
  for (uint64_t i = 1; i <= 12; ++i) {
    TaskRecord t = testing::task("fn" + std::to_string(i % 3), static_cast<TaskState>(i % 4));
    t.node = static_cast<int32_t>(i % 5);
    t.args = {oid(i + 100), oid(i + 200, 1, 2)};
    if (i > 1) t.parent = oid(i - 1);
    t.num_returns = static_cast<uint32_t>(i % 3 + 1);
    ++pending;
    c.client().put<TaskTable>(oid(i), t, done);
    ++pending;
    c.client().add_object_location(oid(i), static_cast<int32_t>(i % 4), i * 1000, 0, done);
  }
  for (uint64_t i = 1; i <= 3; ++i) {
    ++pending;
    c.client().put<ActorTable>(
        oid(i, 7),
        ActorRecord{"Class" + std::to_string(i), 2, ActorState::kAlive, static_cast<uint32_t>(i),
                    i == 2 ? "named" : "", i == 2 ? oid(9, 7) : ObjectId{}},
        done);
  }
  for (NodeRank n = 0; n < 4; ++n) {
    NodeRecord r;
    r.resources = {{"CPU", 4}, {"fpga", 1}};
    r.available = {{"CPU", 4.0 - n}};
    r.queue_length = static_cast<uint32_t>(n);
    r.last_heartbeat_us = 1000u * static_cast<uint64_t>(n);
    r.alive = n != 3;
    ++pending;
    c.client().put<NodeTable>(n, r, done);
  }
  // An empty string and an empty location list survive too.
  ++pending;
  c.client().put<ObjectTable>(oid(99), ObjectRecord{{}, 0, -1}, done);
  ++pending;
  c.client().put<TaskTable>(oid(98), testing::task(""), done);
  ASSERT_TRUE(c.run_until([&] { return pending == 0; }));
  ASSERT_TRUE(c.run_until([&] { return c.all_settled(3); }));
}

std::vector<const GcsServer*> all_servers(Cluster& c) {
  std::vector<const GcsServer*> v;
  for (auto& [r, s] : c.servers) v.push_back(s.get());
  return v;
}

TEST(GcsSnapshot, WriteThenReadGivesTheSameTables) {
  TempDir dir;
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  populate(c);
  const auto servers = all_servers(c);
  const SnapshotData want = collect_snapshot(servers);
  EXPECT_EQ(want.shard_info.size(), 2u);
  EXPECT_EQ(want.tasks.size(), 13u);
  EXPECT_EQ(want.objects.size(), 13u);
  EXPECT_EQ(want.actors.size(), 3u);
  EXPECT_EQ(want.nodes.size(), 4u);
  for (const auto& s : want.shard_info) EXPECT_EQ(s.source_rank, s.chain.back());  // the tails
  ASSERT_TRUE(write_snapshot(servers, dir.file("gcs.h5")));
  auto got = read_snapshot(dir.file("gcs.h5"));
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_EQ(*got, want);
}

// A snapshot written by the GCS of 2026-12-06, before the tables became one
// description each (issue "The GCS as one table-generic mechanism"): files
// in that format still load, with the same rows. To write the fixture again
// (only ever from that format's code): PRISM_WRITE_GCS_FIXTURE=<file>.
TEST(GcsSnapshot, ReadsAFileWrittenBeforeTheTableRework) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  populate(c);
  const SnapshotData want = collect_snapshot(all_servers(c));
  if (const char* out = std::getenv("PRISM_WRITE_GCS_FIXTURE")) {
    ASSERT_TRUE(write_snapshot(all_servers(c), out));
  }
  auto got = read_snapshot(std::string(PRISM_GCS_FIXTURES) + "/snapshot-2026-12-06.h5");
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_EQ(got->tasks, want.tasks);
  EXPECT_EQ(got->objects, want.objects);
  EXPECT_EQ(got->actors, want.actors);
  EXPECT_EQ(got->nodes, want.nodes);
  EXPECT_EQ(got->shards, want.shards);
  EXPECT_EQ(got->replicas, want.replicas);
}

// A file written before a table existed has no group for it: that table
// reads as empty, every other as written.
TEST(GcsSnapshot, ReadsAFileWrittenBeforeATableExisted) {
  TempDir dir;
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  populate(c);
  const SnapshotData want = collect_snapshot(c.server(102));
  ASSERT_FALSE(want.actors.empty());
  ASSERT_TRUE(write_snapshot(want, dir.file("gcs.h5")));
  const hid_t f = H5Fopen(dir.file("gcs.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_GE(H5Ldelete(f, "actors", H5P_DEFAULT), 0);
  H5Fclose(f);
  auto got = read_snapshot(dir.file("gcs.h5"));
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  SnapshotData expect = want;
  expect.actors.clear();
  EXPECT_EQ(*got, expect);
}

TEST(GcsSnapshot, EmptyStoreRoundTrips) {
  TempDir dir;
  Cluster c({.gcs = 1, .replicas = 1, .clients = 1});
  ASSERT_TRUE(write_snapshot(c.server(100), dir.file("empty.h5")));
  auto got = read_snapshot(dir.file("empty.h5"));
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_EQ(*got, collect_snapshot(c.server(100)));
  EXPECT_TRUE(got->tasks.empty());
}

TEST(GcsSnapshot, PerRankFilesMergeIntoTheWhole) {
  TempDir dir;
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  populate(c);
  std::vector<SnapshotData> parts;
  for (auto& [r, s] : c.servers) {
    const std::string f = dir.file("gcs-" + std::to_string(r) + ".h5");
    ASSERT_TRUE(write_snapshot(*s, f));
    auto d = read_snapshot(f);
    ASSERT_TRUE(d.has_value());
    parts.push_back(std::move(*d));
  }
  auto merged = merge_snapshots(parts);
  ASSERT_TRUE(merged.has_value()) << merged.status().to_string();
  const SnapshotData whole = collect_snapshot(all_servers(c));
  EXPECT_EQ(merged->tasks, whole.tasks);
  EXPECT_EQ(merged->objects, whole.objects);
  EXPECT_EQ(merged->actors, whole.actors);
  EXPECT_EQ(merged->nodes, whole.nodes);
  EXPECT_EQ(merged->shard_info.size(), 2u);
}

TEST(GcsSnapshot, FetchedThroughTheProtocol) {
  Cluster c({.gcs = 6, .replicas = 3, .clients = 1});
  populate(c);
  std::optional<Expected<SnapshotData>> got;
  fetch_snapshot(c.client(), [&](Expected<SnapshotData> d) { got.emplace(std::move(d)); });
  ASSERT_TRUE(c.run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->has_value());
  const SnapshotData whole = collect_snapshot(all_servers(c));
  EXPECT_EQ((*got)->tasks, whole.tasks);
  EXPECT_EQ((*got)->objects, whole.objects);
  EXPECT_EQ((*got)->actors, whole.actors);
  EXPECT_EQ((*got)->nodes, whole.nodes);
}

TEST(GcsSnapshot, BadFilesAreReportedNotCrashedOn) {
  TempDir dir;
  EXPECT_EQ(read_snapshot(dir.file("missing.h5")).status().code(), Errc::kNotFound);
  {
    std::ofstream f(dir.file("text.h5"));
    f << "not hdf5";
  }
  EXPECT_FALSE(read_snapshot(dir.file("text.h5")).has_value());
  // A valid file cut short.
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  populate(c);
  ASSERT_TRUE(write_snapshot(c.server(102), dir.file("full.h5")));
  const auto size = std::filesystem::file_size(dir.file("full.h5"));
  std::filesystem::copy_file(dir.file("full.h5"), dir.file("cut.h5"));
  std::filesystem::resize_file(dir.file("cut.h5"), size / 2);
  EXPECT_FALSE(read_snapshot(dir.file("cut.h5")).has_value());
  EXPECT_FALSE(write_snapshot(c.server(102), dir.file("no/such/dir/x.h5")));
}

#ifdef PRISM_GCS_DUMP
TEST(GcsSnapshot, DumpToolPrintsTheTables) {
  TempDir dir;
  Cluster c({.gcs = 3, .replicas = 3, .clients = 1});
  populate(c);
  ASSERT_TRUE(write_snapshot(c.server(102), dir.file("gcs.h5")));
  const std::string cmd = std::string(PRISM_GCS_DUMP) + " " + dir.file("gcs.h5") + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p.get())) out.append(buf, n);
  EXPECT_NE(out.find("tasks: 13"), std::string::npos) << out;
  EXPECT_NE(out.find("finished 3"), std::string::npos) << out;
  EXPECT_NE(out.find("objects: 13"), std::string::npos) << out;
  EXPECT_NE(out.find("Class2"), std::string::npos) << out;
  EXPECT_NE(out.find("nodes: 4"), std::string::npos) << out;
  EXPECT_NE(out.find("dead"), std::string::npos) << out;
  EXPECT_NE(out.find("CPU 3/4"), std::string::npos) << out;
}
#endif

}  // namespace
}  // namespace prism::gcs
