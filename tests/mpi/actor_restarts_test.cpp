// Actor restarts across real ranks (docs/fault-tolerance.md, "Actor
// restarts"): a crash (prism::kill with .no_restart = false) restarts an
// actor with restarts left, from its last checkpoint when its class has
// checkpoint hooks; calls queued at the dead instance go again
// (max_task_retries) in their caller's order or fail naming the death;
// callers on other ranks reach the new instance.
#include <gtest/gtest.h>

#include <chrono>
#include <prism/prism.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

int other_node() {
  return prism::num_nodes() > 1 ? 1 : 0;
}

// Keeps every number it was given, in order; saves them in checkpoints.
class Journal {
 public:
  explicit Journal(std::string name) : name_(std::move(name)) {}
  int append(int x, int sleep_ms) {
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    log_.push_back(x);
    return static_cast<int>(log_.size());
  }
  std::vector<int> entries() const { return log_; }
  std::string name() const { return name_; }
  void save_checkpoint(prism::Checkpoint& cp) const {
    cp.write("log", log_);
    cp.write("name", name_);
    cp.write("size", static_cast<uint64_t>(log_.size()));
  }
  void load_checkpoint(const prism::Checkpoint& cp) {
    log_ = cp.read_vector<int>("log");
    name_ = cp.read_string("name") + " (restored)";
    if (cp.read<uint64_t>("size") != log_.size()) throw std::runtime_error("torn checkpoint");
  }

 private:
  std::string name_;
  std::vector<int> log_;
};
PRISM_ACTOR(Journal, &Journal::append, &Journal::entries, &Journal::name);

// The same without hooks: a restart starts from the constructor.
class Tally {
 public:
  int add(int k) { return n_ += k; }

 private:
  int n_ = 0;
};
PRISM_ACTOR(Tally, &Tally::add);

std::string error_of(const prism::ObjectRef<int>& r) {
  try {
    prism::get(r);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

// A task on another rank that appends through a handle it was given.
int append_from_task(prism::ActorHandle<Journal> j, int x) {
  return prism::get(j.call(&Journal::append).remote(x, 0));
}
PRISM_REMOTE(append_from_task);

}  // namespace

TEST(ActorRestarts, ACrashedActorWithCheckpointsContinuesFromItsLastOne) {
  auto j = prism::actor<Journal>(std::string("j"))
               .options({.node = other_node(), .max_restarts = 2, .max_task_retries = -1})
               .remote();
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(prism::get(j.call(&Journal::append).remote(i, 0)), i);
  prism::kill(j, {.no_restart = false});
  // Calls made after the crash reach the restarted instance, whose state
  // is the checkpoint taken after the fifth call.
  EXPECT_EQ(prism::get(j.call(&Journal::append).remote(6, 0)), 6);
  EXPECT_EQ(prism::get(j.call(&Journal::entries).remote()), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(prism::get(j.call(&Journal::name).remote()), "j (restored)");
  // A task on another rank reaches it too.
  EXPECT_EQ(prism::get(prism::task(append_from_task).options({.node = 0}).remote(j, 7)), 7);
  // A second crash, then no restarts are left after a third.
  prism::kill(j, {.no_restart = false});
  EXPECT_EQ(prism::get(j.call(&Journal::append).remote(8, 0)), 8);
  prism::kill(j, {.no_restart = false});
  try {
    prism::get(j.call(&Journal::append).remote(9, 0));
    FAIL() << "an actor out of restarts answered";
  } catch (const prism::TaskError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no restarts left"), std::string::npos) << what;
    EXPECT_NE(what.find("as a crash"), std::string::npos) << what;
  }
}

TEST(ActorRestarts, WithoutHooksARestartStartsFromTheConstructor) {
  // (A call that reaches the dead instance before its callers learn of the
  // restart is rejected: one retry sends it to the new one.)
  auto t = prism::actor<Tally>()
               .options({.node = other_node(), .max_restarts = 1, .max_task_retries = 1})
               .remote();
  EXPECT_EQ(prism::get(t.call(&Tally::add).remote(5)), 5);
  prism::kill(t, {.no_restart = false});
  EXPECT_EQ(prism::get(t.call(&Tally::add).remote(1)), 1);
}

TEST(ActorRestarts, QueuedCallsGoAgainInTheirOrderWithTaskRetries) {
  auto j = prism::actor<Journal>(std::string("q"))
               .options({.node = other_node(), .max_restarts = 1, .max_task_retries = -1})
               .remote();
  std::vector<prism::ObjectRef<int>> calls;
  for (int i = 1; i <= 20; ++i) calls.push_back(j.call(&Journal::append).remote(i, 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(70));  // a few have run
  prism::kill(j, {.no_restart = false});
  for (int i = 21; i <= 25; ++i) calls.push_back(j.call(&Journal::append).remote(i, 0));
  // Every call ran exactly once, in the order it was made: the ones the dead
  // instance ran are in its checkpoint, the others ran on the new one.
  for (size_t i = 0; i < calls.size(); ++i)
    EXPECT_EQ(prism::get(calls[i]), static_cast<int>(i + 1)) << "call " << i + 1;
  std::vector<int> expected(25);
  for (int i = 0; i < 25; ++i) expected[static_cast<size_t>(i)] = i + 1;
  EXPECT_EQ(prism::get(j.call(&Journal::entries).remote()), expected);
}

TEST(ActorRestarts, WithoutTaskRetriesQueuedCallsFailNamingTheCrash) {
  auto j = prism::actor<Journal>(std::string("f"))
               .options({.node = other_node(), .max_restarts = 1})
               .remote();
  std::vector<prism::ObjectRef<int>> calls;
  for (int i = 1; i <= 10; ++i) calls.push_back(j.call(&Journal::append).remote(i, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  prism::kill(j, {.no_restart = false});
  int ok = 0, failed = 0;
  for (auto& c : calls) {
    const std::string err = error_of(c);
    if (err.empty()) {
      EXPECT_EQ(prism::get(c), ok + 1) << "the calls that ran, ran in order";
      ++ok;
      continue;
    }
    ++failed;
    EXPECT_NE(err.find("killed by prism::kill (as a crash)"), std::string::npos) << err;
    EXPECT_NE(err.find("Journal.append"), std::string::npos) << err;
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(failed, 1);
  // The new instance has what the old one checkpointed, and takes new calls
  // (this one may reach the dead instance first and fail: then the next).
  std::string err = error_of(j.call(&Journal::append).remote(100, 0));
  if (!err.empty()) {
    EXPECT_NE(err.find("as a crash"), std::string::npos) << err;
  }
  EXPECT_EQ(prism::get(j.call(&Journal::entries).remote()).size(),
            static_cast<size_t>(ok + (err.empty() ? 1 : 0)));
}

TEST(ActorRestarts, BadOptionsAreRefused) {
  EXPECT_THROW(prism::actor<Tally>().options({.max_task_retries = -2}).remote(), prism::Error);
  EXPECT_THROW(prism::actor<Tally>().options({.checkpoint_interval = -1}).remote(), prism::Error);
  // A crash of an actor without restarts ends it like a kill.
  auto t = prism::actor<Tally>().options({.node = other_node()}).remote();
  EXPECT_EQ(prism::get(t.call(&Tally::add).remote(2)), 2);
  prism::kill(t, {.no_restart = false});
  const std::string err = error_of(t.call(&Tally::add).remote(1));
  EXPECT_NE(err.find("as a crash"), std::string::npos) << err;
}
