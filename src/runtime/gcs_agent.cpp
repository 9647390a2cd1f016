// GcsAgent: the agent thread and recording lineage (events, coalescing,
// batched writes); its queries and the node heartbeat are in
// gcs_agent_services.cpp, the actor table in gcs_agent_actors.cpp.
#include "runtime/gcs_agent.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <limits>

#include "common/log.hpp"
#include "common/thread_name.hpp"
#include "prism/actor.hpp"
#include "runtime/node_runtime.hpp"

namespace prism::runtime {
namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// After the last event, the agent keeps its flush timer armed this long (so a
// steady stream costs one timer wake-up per window, not one notify per
// event); then it sleeps until woken.
constexpr uint64_t kActiveWindowUs = 50'000;
// How long after a post() replies wake the agent (deliver()).
constexpr uint64_t kAnswerWindowUs = 100'000;

uint64_t now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::atomic<GcsAgent*> g_current{nullptr};

}  // namespace

namespace {
// A failover costs a client about one failure timeout plus one retry
// interval: retries come every fifth of the GCS failure timeout (200 ms at
// the default 1 s), backing off to twice that.
GcsAgentOptions with_retry_interval(GcsAgentOptions o, const Config& config) {
  if (config.gcs_failure_timeout_ms == 1000) return o;  // the default: as the caller chose
  const uint64_t timeout_us = static_cast<uint64_t>(config.gcs_failure_timeout_ms) * 1000;
  o.client.request_timeout_us = std::max<uint64_t>(timeout_us / 5, 1000);
  o.client.max_backoff_us = 2 * o.client.request_timeout_us;
  o.client.max_attempts =
      static_cast<int>(std::max<uint64_t>(150, 60'000'000 / o.client.max_backoff_us));  // ~60 s
  return o;
}
}  // namespace

GcsAgent::GcsAgent(const Config& config, transport::Transport& transport, gcs::GcsLayout layout,
                   int my_rank, scheduler::NodeResources resources, GcsAgentOptions options)
    : config_(config),
      transport_(transport),
      layout_(std::move(layout)),
      rank_(my_rank),
      resources_(std::move(resources)),
      opt_(with_retry_interval(options, config)),
      outbox_(transport, layout_),
      client_(layout_, my_rank, outbox_, opt_.client),
      tasks_(static_cast<uint32_t>(my_rank)) {}

GcsAgent::~GcsAgent() {
  stop();
  GcsAgent* self = this;
  g_current.compare_exchange_strong(self, nullptr);
}

void GcsAgent::start() {
  if (started_.exchange(true)) return;
  {
    std::lock_guard lk(mu_);
    urgent_ = true;  // the first round registers the node
  }
  thread_ = std::thread([this] {
    name_this_thread("prism-gcs-agent");
    run();
  });
}

void GcsAgent::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool GcsAgent::drain(uint64_t timeout_us) {
  if (!thread_.joinable()) return false;
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  flush([done](Status) { done->set_value(); });
  return fut.wait_for(std::chrono::microseconds(timeout_us)) == std::future_status::ready;
}

// ---- producers ----------------------------------------------------------------

void GcsAgent::deliver(int src, std::span<const std::byte> msg) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    const bool was_empty = inbox_.empty();
    inbox_.push_back({src, {inbox_bytes_.size(), msg.size()}});
    inbox_bytes_.insert(inbox_bytes_.end(), msg.begin(), msg.end());
    // While the flush timer runs, replies wait for it, unless a command
    // posted lately may be waiting for one (urgent: the agent's wait takes
    // only urgent work while its timer runs); an idle agent is woken.
    const bool answer_due = now_us() - last_post_us_ < kAnswerWindowUs;
    if (answer_due) urgent_ = true;
    wake = (was_empty && idle_) || answer_due;
  }
  if (wake) cv_.notify_one();
}

void GcsAgent::enqueue(Event e) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    const bool was_empty = events_.empty();
    events_.push_back(std::move(e));
    ++events_total_;
    const bool backlog = events_.size() == opt_.early_flush_events;
    if (backlog) urgent_ = true;  // a full backlog goes out before the timer
    wake = (was_empty && idle_) || backlog;
  }
  if (wake) cv_.notify_one();
}

namespace {
// The method an actor call runs, by registry entry: its readable name
// ("Counter.add") is then the call's display name (submit_actor_call).
const detail::ActorMethodInfo* registered_method(const TaskSpec& spec) {
  return spec.kind == TaskKind::kActorCall && spec.method && spec.name == spec.method->name
             ? spec.method
             : nullptr;
}
}  // namespace

const std::string& GcsAgent::Event::function_name() const {
  return fn ? fn->name : method ? method->name : function;
}

// A task's row facts from its spec (the function by registry entry if any).
GcsAgent::Event GcsAgent::task_event(Event::Kind kind, const TaskSpec& spec, int node) {
  Event e;
  e.kind = kind;
  e.id = spec.id;
  e.node = node;
  e.fn = spec.fn;
  e.method = registered_method(spec);
  // Actor constructors and methods go by their readable names ("Counter()",
  // "Counter.add"), not their wire keys.
  if (!e.fn && !e.method) e.function = spec.kind == TaskKind::kFunction ? spec.function : spec.name;
  e.args = spec.arg_ids;
  e.parent = spec.parent;
  return e;
}

void GcsAgent::on_task_dispatched(const TaskSpec& spec, int node) {
  enqueue(task_event(Event::Kind::kDispatched, spec, node));
}

void GcsAgent::on_task_finished(const ObjectId& id, bool failed, int executor) {
  Event e;
  e.kind = Event::Kind::kFinished;
  e.id = id;
  e.failed = failed;
  e.node = executor;
  enqueue(std::move(e));
}

void GcsAgent::on_task_done(const TaskSpec& spec, bool failed, int executor) {
  // The common case of a burst: the task (or actor call) after the last one
  // queued, with the same row. One counter bump under the lock, no event
  // built or applied.
  const detail::ActorMethodInfo* method = registered_method(spec);
  if ((spec.fn || method) && spec.arg_ids.empty()) {
    std::lock_guard lk(mu_);
    if (!events_.empty()) {
      Event& last = events_.back();
      if (last.kind == Event::Kind::kDone && last.fn == spec.fn && last.method == method &&
          last.failed == failed && last.node == executor && last.args.empty() &&
          last.parent == spec.parent && gcs::follows_task_run(last.id, last.run, spec.id)) {
        ++last.run;
        ++events_total_;
        return;
      }
    }
  }
  Event e = task_event(Event::Kind::kDone, spec, executor);
  e.failed = failed;
  enqueue(std::move(e));
}

void GcsAgent::on_object_sealed(const ObjectId& id, uint64_t size) {
  Event e;
  e.kind = Event::Kind::kSealed;
  e.id = id;
  e.size = size;
  enqueue(std::move(e));
}

void GcsAgent::on_object_freed(const ObjectId& id) {
  Event e;
  e.kind = Event::Kind::kFreed;
  e.id = id;
  enqueue(std::move(e));
}

void GcsAgent::set_load_source(std::function<NodeLoadSample()> source) {
  std::lock_guard lk(mu_);
  load_source_ = std::move(source);
}

void GcsAgent::post(std::function<void(gcs::GcsClient&)> fn) {
  {
    std::lock_guard lk(mu_);
    commands_.push_back(std::move(fn));
    urgent_ = true;
    last_post_us_ = now_us();
  }
  cv_.notify_one();
}

void GcsAgent::send_raw(int rank, Bytes msg) {
  // Straight to the transport: a forged bundle must not be wrapped in one.
  if (Status st = transport_.send(rank, msg); !st)
    PRISM_LOG_WARN("GCS agent: raw send to {}: {}", rank, st.to_string());
}

void GcsAgent::set_message_tap(std::function<void(int, std::span<const std::byte>)> tap) {
  std::lock_guard lk(mu_);
  tap_ = std::move(tap);
}

GcsAgentStats GcsAgent::stats() const {
  std::lock_guard lk(mu_);
  GcsAgentStats s = shared_stats_;
  s.events = events_total_;
  return s;
}

// ---- the agent thread ----------------------------------------------------------

uint64_t GcsAgent::next_wake(uint64_t now) const {
  uint64_t d = std::min(client_deadline_, next_heartbeat_us_);
  if (now - last_event_us_ < kActiveWindowUs) {
    // Rows deferred for coalescing go out with the next round, not in a round
    // of their own: stamped at a round plus coalesce_us (5 ms), they used to
    // wake the agent (and, with their write, the GCS rank) halfway between
    // two rounds, doubling the rounds of a steady stream of dispatched tasks.
    d = std::min(d, now + opt_.flush_interval_us);
  } else if (!deferred_.empty()) {
    d = std::min(d, std::max(now, deferred_.front().first));
  }
  return d;
}

void GcsAgent::run() {
  std::vector<Event> events;
  std::vector<ActorEvent> actor_events;
  std::vector<std::function<void(gcs::GcsClient&)>> cmds;
  Bytes inbox_bytes;
  std::vector<std::pair<int, std::pair<size_t, size_t>>> inbox;
  while (true) {
    {
      std::unique_lock lk(mu_);
      shared_stats_ = stats_;
      const uint64_t now = now_us();
      const uint64_t wake = next_wake(now);
      idle_ = now - last_event_us_ >= kActiveWindowUs;
      const auto ready = [&] {
        return stop_ || urgent_ ||
               (idle_ && (!events_.empty() || !actor_events_.empty() || !inbox_.empty()));
      };
      if (wake == kNever) {
        cv_.wait(lk, ready);
      } else if (wake > now) {
        const auto until = std::chrono::steady_clock::time_point(std::chrono::microseconds(wake));
        cv_.wait_until(lk, until, ready);
      }
      if (stop_) {
        timespec cpu{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        PRISM_LOG_INFO(
            "GCS agent of rank {}: {} events, {} row updates ({} failed) in {} "
            "batched writes, {} heartbeats, {} rounds, {:.3f} s CPU",
            rank_, events_total_, stats_.ops_written, stats_.writes_failed, stats_.writes_issued,
            stats_.heartbeats, stats_.rounds,
            static_cast<double>(cpu.tv_sec) + 1e-9 * static_cast<double>(cpu.tv_nsec));
        return;
      }
      idle_ = false;  // awake: producers need not notify
      urgent_ = false;
      std::swap(events, events_);
      std::swap(actor_events, actor_events_);
      std::swap(cmds, commands_);
      std::swap(inbox, inbox_);
      std::swap(inbox_bytes, inbox_bytes_);
      const auto tap = tap_;
      lk.unlock();
      ++stats_.rounds;
      // Replies first (they free in-flight slots), then the recorded events,
      // then commands (so a flush() covers every event enqueued before it).
      for (const auto& [src, at] : inbox) {
        const std::span<const std::byte> msg(inbox_bytes.data() + at.first, at.second);
        if (tap) tap(src, msg);
        Status st = for_each_gcs_message(msg, [&](std::span<const std::byte> m) {
          if (Status s = client_.handle(src, m); !s)
            PRISM_LOG_DEBUG("GCS agent: dropped a message from rank {}: {}", src, s.to_string());
        });
        if (!st) PRISM_LOG_WARN("GCS agent: bad bundle from rank {}: {}", src, st.to_string());
      }
    }
    const uint64_t now = now_us();
    // Ticking walks every pending request: do it when a retry is due, or
    // every 10 ms so that the client's clock (new requests' deadlines) stays
    // current.
    if (now >= client_deadline_ || now - last_tick_us_ >= 10'000) {
      client_.tick(now);
      last_tick_us_ = now;
      client_deadline_ = client_.next_deadline_us();
    }
    last_round_us_ = now;
    for (auto& e : events) apply(e);
    for (const auto& e : actor_events) apply_actor(e);
    if (!events.empty() || !actor_events.empty()) last_event_us_ = now;
    for (auto& c : cmds) c(client_);
    heartbeat(now);
    last_round_us_ = now;
    release_deferred(now, /*all=*/!flushes_.empty());
    issue_writes();
    issue_actor_writes();
    fire_flushes();
    outbox_.flush();
    // Requests sent since the tick are due no earlier than this.
    if (client_.in_flight() > 0)
      client_deadline_ = std::min(client_deadline_, last_tick_us_ + opt_.client.request_timeout_us);
    stats_.in_flight = in_flight_;
    stats_.backlog = task_backlog_.size() + object_backlog_.size() + deferred_.size();
    events.clear();
    actor_events.clear();
    cmds.clear();
    inbox.clear();
    inbox_bytes.clear();
  }
}

// ---- coalescing ----------------------------------------------------------------

void GcsAgent::unclean(uint64_t gen, size_t n) {
  // Almost always the newest generation: no tree walk.
  if (!unclean_.empty() && unclean_.rbegin()->first == gen)
    unclean_.rbegin()->second += n;
  else
    unclean_[gen] += n;
}

void GcsAgent::clean(uint64_t gen, size_t n) {
  auto it = unclean_.find(gen);
  if (it == unclean_.end()) return;
  it->second -= std::min(it->second, n);
  if (it->second == 0) unclean_.erase(it);
}

void GcsAgent::fire_flushes() {
  if (flushes_.empty()) return;
  const uint64_t oldest = unclean_.empty() ? kNever : unclean_.begin()->first;
  std::vector<DoneCallback> ready;
  std::erase_if(flushes_, [&](auto& f) {
    if (f.first >= oldest) return false;
    ready.push_back(std::move(f.second));
    return true;
  });
  for (auto& d : ready)
    if (d) d(Status::ok());
}

void GcsAgent::apply(Event& e) {
  switch (e.kind) {
    case Event::Kind::kDispatched: {
      TaskEntry& t = task_entry(e.id);
      t.id = e.id;
      t.rec.function_name = e.function_name();
      t.rec.args = std::move(e.args);
      t.rec.parent = e.parent;
      t.rec.num_returns = 1;
      if (!t.final) {
        t.rec.state = gcs::TaskState::kRunning;
        t.rec.node = e.node;
      }
      t.known = true;
      mark_task(t);
      return;
    }
    case Event::Kind::kFinished: {
      TaskEntry& t = task_entry(e.id);
      t.id = e.id;
      t.rec.state = e.failed ? gcs::TaskState::kFailed : gcs::TaskState::kFinished;
      t.rec.node = e.node;
      t.final = true;
      mark_task(t);
      return;
    }
    case Event::Kind::kDone: {
      DoneRow& d = done_rows_.emplace_back();
      d.id = e.id;
      d.rec.function_name = e.function_name();
      d.rec.args = std::move(e.args);
      d.rec.parent = e.parent;
      d.rec.state = e.failed ? gcs::TaskState::kFailed : gcs::TaskState::kFinished;
      d.rec.node = e.node;
      d.run = e.run;
      d.gen = gen_;
      unclean(gen_, e.run);
      return;
    }
    case Event::Kind::kSealed:
    case Event::Kind::kFreed: {
      const bool sealed = e.kind == Event::Kind::kSealed;
      auto [it, fresh] = objects_.try_emplace(e.id);
      ObjectEntry& o = it->second;
      if (fresh) {
        o.id = e.id;
        o.written = !sealed;  // assume the GCS has the opposite: write it
      }
      o.want = sealed;
      if (sealed) o.size = e.size;
      mark_object(o);
      return;
    }
  }
}

GcsAgent::TaskEntry& GcsAgent::task_entry(const ObjectId& id) {
  auto& p = tasks_.slot(id);
  if (!p) p = make_pooled<TaskEntry>();
  return *p;
}

void GcsAgent::mark_task(TaskEntry& t) {
  if (!t.dirty && !t.in_flight) {
    t.gen = gen_;
    unclean(t.gen);
  }
  if (!t.dirty) {
    t.dirty = true;
    if (t.in_flight) return;  // queued again when the write completes
    if (t.final || opt_.coalesce_us == 0) {
      task_backlog_.push_back(&t);
    } else {
      // Only dispatched: wait a little for the finish, so that a short task
      // costs one row write instead of two.
      t.deferred = true;
      deferred_.emplace_back(last_round_us_ + opt_.coalesce_us, t.id);
    }
  } else if (t.deferred && t.final) {
    t.deferred = false;  // finished while waiting: write it now
    task_backlog_.push_back(&t);
  }
}

void GcsAgent::release_deferred(uint64_t now, bool all) {
  while (!deferred_.empty() && (all || deferred_.front().first <= now)) {
    auto* found = tasks_.find(deferred_.front().second);
    deferred_.pop_front();
    if (!found || !(*found)->deferred) continue;
    (*found)->deferred = false;
    task_backlog_.push_back(found->get());
  }
}

// An object entry is counted unclean (gen != 0) from its first change until
// the GCS has what it wants; it is queued at most once at a time.
void GcsAgent::mark_object(ObjectEntry& o) {
  if (o.in_flight) return;  // re-examined when the write completes
  if (o.want == o.written) {
    if (o.gen != 0) {
      // Sealed and freed before anything was written: nothing to record. It
      // may still sit in the backlog: leave it there, erased there.
      return;
    }
    objects_.erase(o.id);
    return;
  }
  if (o.gen == 0) {
    o.gen = gen_;
    unclean(o.gen);
    object_backlog_.push_back(&o);
  }
}

// Ready keys become ops, grouped by shard into kBatch writes of up to
// kBatchOps ops: one request, one log entry per replica and one reply per
// batch instead of per key (a task row costs the GCS ~3 us as a write of its
// own, a fraction of that inside a batch).
void GcsAgent::issue_writes() {
  std::map<int, std::vector<Pending>> by_shard;
  size_t taken = 0;
  auto add = [&](gcs::WriteOp op, TaskEntry* t, ObjectEntry* o, bool put_or_add, uint32_t run = 1,
                 uint64_t gen = 0) {
    const int shard = layout_.shard_of(op.table, op.key);
    by_shard[shard].push_back(Pending{std::move(op), t, o, put_or_add, run, gen});
    ++taken;
  };
  issue_done_rows([&](gcs::WriteOp op, uint32_t run, uint64_t gen) {
    add(std::move(op), nullptr, nullptr, true, run, gen);
  });
  // The ready task rows, in id order: tasks finished out of order by several
  // workers still form runs.
  std::vector<TaskEntry*> ready;
  while (in_flight_ + taken + ready.size() < opt_.max_in_flight && !task_backlog_.empty()) {
    TaskEntry* t = task_backlog_.front();
    task_backlog_.pop_front();
    if (!t->dirty || t->in_flight) continue;
    t->dirty = false;
    t->in_flight = true;
    ready.push_back(t);
  }
  std::sort(ready.begin(), ready.end(),
            [](const TaskEntry* a, const TaskEntry* b) { return a->id < b->id; });
  for (size_t i = 0; i < ready.size();) {
    TaskEntry* t = ready[i++];
    gcs::Bytes key = gcs::encode_key<gcs::TaskTable>(t->id);
    // A known task's row is always written whole, also when it only changes
    // state: rows of a burst go as runs, where per-task state updates would
    // split every run at the GCS.
    if (t->known) {
      // Tasks submitted one after another with the same row (the usual
      // burst: same function, no ref arguments, finished on the same node)
      // become one row standing for the run.
      uint32_t run = 1;
      while (i < ready.size() && ready[i]->known &&
             gcs::joins_task_run(t->id, t->rec, run, ready[i]->id, ready[i]->rec))
        ++run, ++i;
      t->rec.run = run;
      gcs::Bytes rec = gcs::encode_record<gcs::TaskTable>(t->rec);
      t->rec.run = 1;
      add(gcs::make_op(gcs::OpKind::kPut, gcs::TableId::kTasks, std::move(key), std::move(rec)), t,
          nullptr, true, run);
    } else {
      gcs::WriteOp op =
          gcs::make_op(gcs::OpKind::kSetTaskState, gcs::TableId::kTasks, std::move(key));
      op.task_state = t->rec.state;
      op.node = t->rec.node;
      add(std::move(op), t, nullptr, false);
    }
  }
  while (in_flight_ + taken < opt_.max_in_flight && !object_backlog_.empty()) {
    ObjectEntry* o = object_backlog_.front();
    object_backlog_.pop_front();
    if (o->want == o->written) {  // changed back while queued
      clean(o->gen);
      objects_.erase(o->id);
      continue;
    }
    o->in_flight = true;
    const bool want = o->want;
    gcs::WriteOp op =
        gcs::make_op(want ? gcs::OpKind::kAddLocation : gcs::OpKind::kRemoveLocation,
                     gcs::TableId::kObjects, gcs::encode_key<gcs::ObjectTable>(o->id));
    op.rank = rank_;
    if (want) {
      op.size = o->size;
      op.owner = static_cast<int32_t>(o->id.owner_rank);
    }
    add(std::move(op), nullptr, o, want);
  }
  for (auto& [shard, all] : by_shard) {
    for (size_t at = 0; at < all.size(); at += kBatchOps) {
      const size_t n = std::min(kBatchOps, all.size() - at);
      std::vector<gcs::WriteOp> ops;
      ops.reserve(n);
      auto targets = std::make_shared<std::vector<Pending>>();
      targets->reserve(n);
      for (size_t i = at; i < at + n; ++i) {
        ops.push_back(std::move(all[i].op));
        targets->push_back(std::move(all[i]));
      }
      in_flight_ += n;
      ++stats_.writes_issued;
      stats_.ops_written += n;
      client_.write(static_cast<uint32_t>(shard), gcs::make_batch(std::move(ops)),
                    [this, targets](const gcs::OpResult& r, uint64_t) {
                      auto codes = gcs::batch_codes(r);
                      for (size_t i = 0; i < targets->size(); ++i) {
                        const Pending& p = (*targets)[i];
                        Status st = !codes ? codes.status()
                                    : i < codes->size() && (*codes)[i] == Errc::kOk
                                        ? Status::ok()
                                        : Status{i < codes->size() ? (*codes)[i] : Errc::kInternal,
                                                 "batched GCS write"};
                        --in_flight_;
                        if (p.object) {
                          object_written(*p.object, p.put_or_add, st);
                          continue;
                        }
                        if (!p.task) {  // done rows: written once, whatever came back
                          if (!st) {    // (the op itself has gone into the request)
                            stats_.writes_failed += p.run;
                            PRISM_LOG_WARN("GCS agent: recording a run of {} finished task(s): {}",
                                           p.run, st.to_string());
                          }
                          clean(p.gen, p.run);
                          continue;
                        }
                        ObjectId id = p.task->id;
                        task_written(*p.task, p.put_or_add, st);
                        for (uint32_t k = 1; k < p.run; ++k) {  // the rest of its run
                          ++id.seq;
                          if (auto* t = tasks_.find(id)) task_written(**t, true, st);
                        }
                      }
                    });
    }
  }
}

// Done rows arrive in submission order from one thread, interleaved from
// several: sorted by id they form runs (one flush generation per run).
void GcsAgent::issue_done_rows(
    const std::function<void(gcs::WriteOp, uint32_t run, uint64_t gen)>& add) {
  if (done_rows_.empty()) return;
  const auto by_id = [](const DoneRow& a, const DoneRow& b) { return a.id < b.id; };
  if (!std::is_sorted(done_rows_.begin(), done_rows_.end(), by_id))
    std::stable_sort(done_rows_.begin(), done_rows_.end(), by_id);
  for (size_t i = 0; i < done_rows_.size();) {
    DoneRow& first = done_rows_[i++];
    uint32_t run = first.run;  // a row's tasks share one block (on_task_done)
    while (i < done_rows_.size()) {
      const DoneRow& next = done_rows_[i];
      if (next.gen != first.gen ||
          !gcs::joins_task_run(first.id, first.rec, run, next.id, next.rec))
        break;
      run += next.run, ++i;
    }
    first.rec.run = run;
    add(gcs::make_op(gcs::OpKind::kPut, gcs::TableId::kTasks,
                     gcs::encode_key<gcs::TaskTable>(first.id),
                     gcs::encode_record<gcs::TaskTable>(first.rec)),
        run, first.gen);
  }
  done_rows_.clear();
}

void GcsAgent::task_written(TaskEntry& t, bool put, const Status& st) {
  t.in_flight = false;  // the entry is never erased while in flight
  if (st) {
    t.row_written = true;
  } else if (!put && st.code() == Errc::kNotFound && t.known) {
    t.row_written = false;  // the state update overtook the row: write the row
    t.dirty = true;
  } else {
    ++stats_.writes_failed;
    PRISM_LOG_WARN("GCS agent: recording task {}: {}", t.id.to_string(), st.to_string());
  }
  if (t.dirty) {
    task_backlog_.push_back(&t);
    return;
  }
  clean(t.gen);
  if (t.final) tasks_.erase(t.id);
}

void GcsAgent::object_written(ObjectEntry& o, bool add, const Status& st) {
  o.in_flight = false;  // never erased while in flight
  o.written = add;
  if (!st && !(st.code() == Errc::kNotFound && !add)) {
    ++stats_.writes_failed;
    PRISM_LOG_WARN("GCS agent: recording object {}: {}", o.id.to_string(), st.to_string());
  }
  if (o.want != o.written) {
    object_backlog_.push_back(&o);  // still counted under its generation
    return;
  }
  clean(o.gen);
  objects_.erase(o.id);
}

// ---- node table ----------------------------------------------------------------

// ---- wiring ----------------------------------------------------------------------

void attach_gcs_agent(NodeRuntime& rt, GcsAgent& agent) {
  rt.set_gcs_handler(
      [&agent](int src, std::span<const std::byte> msg) { agent.deliver(src, msg); });
  NodeRuntime::Observer o;
  // The actor table is written whether or not lineage is recorded.
  o.actor_changed = [&agent](const ActorEvent& e) { agent.on_actor_changed(e); };
  o.node_lost = [&agent](int rank) { agent.on_node_lost(rank); };
  if (agent.records_lineage()) {
    o.task_dispatched = [&agent](const TaskSpec& spec, int node) {
      agent.on_task_dispatched(spec, node);
    };
    o.task_finished = [&agent](const ObjectId& id, bool failed, int executor) {
      agent.on_task_finished(id, failed, executor);
    };
    o.task_done = [&agent](const TaskSpec& spec, bool failed, int executor) {
      agent.on_task_done(spec, failed, executor);
    };
    o.object_sealed = [&agent](const ObjectId& id, uint64_t size) {
      agent.on_object_sealed(id, size);
    };
    o.object_freed = [&agent](const ObjectId& id) { agent.on_object_freed(id); };
  }
  rt.set_observer(std::move(o));
  rt.set_actor_names(
      {[&agent](const std::string& name, const ObjectId& actor, const std::string& class_key) {
         return agent.claim_actor_name(name, actor, class_key);
       },
       [&agent](const std::string& name) { return agent.find_actor_name(name); }});
  agent.set_load_source([&rt] {
    const NodeStats s = rt.stats();
    return NodeLoadSample{static_cast<double>(s.slots), s.busy_us,
                          s.tasks_submitted - std::min(s.tasks_submitted, s.tasks_finished)};
  });
  g_current.store(&agent);
}

GcsAgent* current_gcs_agent() noexcept {
  return g_current.load();
}

}  // namespace prism::runtime
