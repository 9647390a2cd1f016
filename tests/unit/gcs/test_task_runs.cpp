// Runs in the task table (TaskRecord::run): one row standing for consecutive
// tasks with the same record. Readers see one row per task: writes split runs,
// get answers one task, scans and subscribers list every task; a run may not
// leave its block (which is what keeps it on one shard).
#include <gtest/gtest.h>

#include <set>

#include "fake_network.hpp"
#include "gcs/store.hpp"

namespace prism::gcs {
namespace {

using testing::Cluster;
using testing::oid;
using testing::task;

TaskRecord run_of(const std::string& fn, uint32_t n, TaskState st = TaskState::kFinished,
                  int32_t node = 2) {
  TaskRecord t = task(fn, st);
  t.node = node;
  t.run = n;
  return t;
}

// Every task k in [from, to) of `t` has function fn (run 1 of its own), and
// the table counts them.
void expect_tasks(const KeyedTable<TaskTable>& t, uint64_t from, uint64_t to,
                  const std::string& fn) {
  for (uint64_t s = from; s < to; ++s) {
    const TaskRecord* r = t.find(oid(s));
    ASSERT_NE(r, nullptr) << s;
    EXPECT_EQ(r->function_name, fn) << s;
  }
}

TEST(TaskRuns, WritesInsideARunSplitIt) {
  KeyedTable<TaskTable> t;
  t.put(oid(1), run_of("f", 10));  // tasks 1..10
  EXPECT_EQ(t.size(), 10u);
  EXPECT_EQ(t.rows().size(), 1u);
  expect_tasks(t, 1, 11, "f");
  EXPECT_EQ(t.find(oid(11)), nullptr);
  EXPECT_EQ(t.find(oid(1, /*owner=*/1)), nullptr);  // another owner's task 1

  t.put(oid(5), run_of("g", 1));  // one task in the middle
  EXPECT_EQ(t.size(), 10u);
  EXPECT_EQ(t.rows().size(), 3u);
  expect_tasks(t, 1, 5, "f");
  expect_tasks(t, 5, 6, "g");
  expect_tasks(t, 6, 11, "f");

  TaskRecord* one = t.isolate(oid(8));  // set one task's state
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->run, 1u);
  one->state = TaskState::kFailed;
  EXPECT_EQ(t.find(oid(7))->state, TaskState::kFinished);
  EXPECT_EQ(t.find(oid(8))->state, TaskState::kFailed);
  EXPECT_EQ(t.find(oid(9))->state, TaskState::kFinished);
  EXPECT_EQ(t.size(), 10u);

  EXPECT_TRUE(t.remove(oid(3)));
  EXPECT_FALSE(t.remove(oid(3)));
  EXPECT_EQ(t.find(oid(3)), nullptr);
  EXPECT_EQ(t.size(), 9u);

  t.put(oid(9), run_of("h", 6));  // overlaps the tail and runs past it: 9..14
  EXPECT_EQ(t.size(), 13u);
  expect_tasks(t, 6, 8, "f");
  expect_tasks(t, 9, 15, "h");

  t.put(oid(1), run_of("k", 20));  // covers everything
  EXPECT_EQ(t.size(), 20u);
  EXPECT_EQ(t.rows().size(), 1u);

  std::vector<uint64_t> seqs;
  t.for_each([&](const TaskId& id, const TaskRecord& r) {
    EXPECT_EQ(r.run, 1u);
    EXPECT_EQ(r.function_name, "k");
    seqs.push_back(id.seq);
  });
  ASSERT_EQ(seqs.size(), 20u);
  EXPECT_EQ(seqs.front(), 1u);
  EXPECT_EQ(seqs.back(), 20u);
}

TEST(TaskRuns, OnlyTheNewestFinishedTasksAreKept) {
  KeyedTable<TaskTable> t;
  t.set_max_finished(5);
  t.put(oid(100), run_of("running", 1, TaskState::kRunning));  // never dropped
  for (uint64_t s = 1; s <= 8; ++s) t.put(oid(s), run_of("f", 1, TaskState::kFinished, 1 + s % 2));
  EXPECT_EQ(t.size(), 6u);  // the 5 newest finished + the running one
  for (uint64_t s = 1; s <= 3; ++s) EXPECT_EQ(t.find(oid(s)), nullptr) << s;
  expect_tasks(t, 4, 9, "f");
  EXPECT_NE(t.find(oid(100)), nullptr);
  // A run counts as its tasks; a row rewritten since (here: failed, then
  // running again) is not dropped by its older finished write.
  t.put(oid(4), run_of("f", 1, TaskState::kRunning));
  t.put(oid(20), run_of("g", 3));  // tasks 20..22: 3 more finished
  EXPECT_NE(t.find(oid(4)), nullptr);
  EXPECT_EQ(t.find(oid(5)), nullptr);
  expect_tasks(t, 20, 23, "g");
  EXPECT_EQ(t.size(), 7u);  // running 100 and 4; finished 7, 8, 20..22
}

TEST(TaskRuns, StateTransferKeepsRuns) {
  ShardStore a;
  a.tasks.put(oid(1), run_of("f", 100));
  a.tasks.put(oid(50), run_of("g", 1));
  Writer w;
  a.encode(w);
  const Bytes bytes = w.take();
  ShardStore b;
  Reader r(bytes);
  b.decode(r);
  ASSERT_TRUE(r.finish("store"));
  EXPECT_EQ(b.tasks.size(), 100u);
  EXPECT_EQ(b.tasks.rows().size(), 3u);
  EXPECT_EQ(b.tasks.find(oid(50))->function_name, "g");
  EXPECT_EQ(b.tasks.find(oid(51))->function_name, "f");
}

TEST(TaskRuns, ABlockOfTasksLivesOnOneShard) {
  auto made = GcsLayout::make({100, 101, 102, 103}, 1);
  ASSERT_TRUE(made) << made.status().to_string();
  const GcsLayout& l = *made;
  ASSERT_EQ(l.shards, 4);
  std::set<int> shards;
  for (uint64_t block = 0; block < 64; ++block) {
    const uint64_t base = block * kTaskBlock;
    const int s = l.shard_of(TableId::kTasks, encode_key<TaskTable>(oid(base)));
    for (uint64_t i : {uint64_t{1}, kTaskBlock / 2, kTaskBlock - 1})
      EXPECT_EQ(l.shard_of(TableId::kTasks, encode_key<TaskTable>(oid(base + i))), s);
    shards.insert(s);
  }
  EXPECT_EQ(shards.size(), 4u);  // blocks still spread over every shard
}

TEST(TaskRuns, GetAnswersOneTaskScanListsEveryTask) {
  Cluster c({.gcs = 1, .replicas = 1, .clients = 1});
  ASSERT_TRUE(
      c.await([&](DoneCallback d) { c.client().put<TaskTable>(oid(10), run_of("f", 300), d); }));
  auto got = c.get<TaskTable>(oid(200));
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ(got->function_name, "f");
  EXPECT_EQ(got->run, 1u);
  EXPECT_EQ(got->node, 2);
  EXPECT_EQ(c.get<TaskTable>(oid(310)).status().code(), Errc::kNotFound);

  std::optional<Expected<std::vector<std::pair<TaskId, TaskRecord>>>> rows;
  c.client().scan<TaskTable>([&](auto r) { rows.emplace(std::move(r)); });
  c.run_until([&] { return rows.has_value(); });
  ASSERT_TRUE(rows && *rows);
  ASSERT_EQ((*rows)->size(), 300u);
  for (size_t i = 0; i < 300; ++i) {
    EXPECT_EQ((**rows)[i].first, oid(10 + i));
    EXPECT_EQ((**rows)[i].second.run, 1u);
  }
}

TEST(TaskRuns, ARunLeavingItsBlockIsRefused) {
  Cluster c({.gcs = 1, .replicas = 1, .clients = 1});
  Status st = c.await(
      [&](DoneCallback d) { c.client().put<TaskTable>(oid(kTaskBlock - 10), run_of("f", 11), d); });
  EXPECT_EQ(st.code(), Errc::kInvalidArgument);
  EXPECT_NE(st.message().find("crosses its block"), std::string::npos) << st.to_string();
  EXPECT_EQ(c.get<TaskTable>(oid(kTaskBlock - 10)).status().code(), Errc::kNotFound);
  // Run 0 does not even decode.
  st = c.await([&](DoneCallback d) { c.client().put<TaskTable>(oid(5), run_of("f", 0), d); });
  EXPECT_EQ(st.code(), Errc::kInvalidArgument);
  // Ending exactly at the block's end is fine.
  EXPECT_TRUE(c.await([&](DoneCallback d) {
    c.client().put<TaskTable>(oid(kTaskBlock - 10), run_of("f", 10), d);
  }));
}

TEST(TaskRuns, SubscribersHearEachTaskOfARun) {
  Cluster c({.gcs = 1, .replicas = 1, .clients = 2});
  std::vector<std::pair<uint64_t, TaskRecord>> key_events;
  size_t table_events = 0;
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe<TaskTable>(
        oid(7),
        [&](const TaskId& id, const std::optional<TaskRecord>& r, uint64_t) {
          ASSERT_TRUE(r.has_value());
          key_events.emplace_back(id.seq, *r);
        },
        d);
  }));
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(1).put<TaskTable>(oid(1), run_of("f", 10), d);  // covers task 7
  }));
  c.deliver_all();
  ASSERT_EQ(key_events.size(), 1u);
  EXPECT_EQ(key_events[0].first, 7u);
  EXPECT_EQ(key_events[0].second.run, 1u);
  EXPECT_EQ(key_events[0].second.function_name, "f");

  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(0).subscribe_all<TaskTable>(
        [&](const TaskId&, const std::optional<TaskRecord>& r, uint64_t) {
          ASSERT_TRUE(r.has_value());
          EXPECT_EQ(r->run, 1u);
          ++table_events;
        },
        d);
  }));
  ASSERT_TRUE(c.await([&](DoneCallback d) {
    c.client(1).write(
        0,
        make_batch({make_op(OpKind::kPut, TableId::kTasks, encode_key<TaskTable>(oid(20)),
                            encode_record<TaskTable>(run_of("g", 5)))}),
        [d](const OpResult& r, uint64_t) { d(r.status()); });
  }));
  c.deliver_all();
  EXPECT_EQ(table_events, 5u);       // every task of the batched run
  EXPECT_EQ(key_events.size(), 1u);  // task 7 was not touched again
}

}  // namespace
}  // namespace prism::gcs
