// GcsAgent, part: the actor table. The rank that created an actor (its
// owner) writes its row: pending when created, alive on its node once
// constructed, dead when it ends or its constructor failed. Named actors
// claim their name first (an insert of the name row, refused if taken) and
// give it back when they die.
#include <future>

#include "common/log.hpp"
#include "runtime/gcs_agent.hpp"

namespace prism::runtime {
namespace {

gcs::ActorState to_gcs(ActorEvent::State s) {
  switch (s) {
    case ActorEvent::State::kPending:
      return gcs::ActorState::kPending;
    case ActorEvent::State::kAlive:
      return gcs::ActorState::kAlive;
    case ActorEvent::State::kRestarting:
      return gcs::ActorState::kRestarting;
    case ActorEvent::State::kDead:
      return gcs::ActorState::kDead;
  }
  return gcs::ActorState::kDead;
}

// Runs `ask` on the agent thread and waits (bounded) for what it reports.
template <class T, class Ask>
Expected<T> ask_agent(GcsAgent& agent, uint64_t timeout_us, const std::string& what, Ask ask) {
  auto answer = std::make_shared<std::promise<Expected<T>>>();
  auto got = answer->get_future();
  agent.post([answer, ask = std::move(ask)](gcs::GcsClient& c) mutable { ask(c, answer); });
  if (got.wait_for(std::chrono::microseconds(timeout_us)) != std::future_status::ready)
    return Status{Errc::kTimeout, what + ": no answer from the GCS"};
  return got.get();
}

}  // namespace

void GcsAgent::on_actor_changed(const ActorEvent& e) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    wake = actor_events_.empty() && events_.empty() && idle_;
    actor_events_.push_back(e);
    ++events_total_;
  }
  if (wake) cv_.notify_one();
}

void GcsAgent::apply_actor(const ActorEvent& e) {
  ActorRow& row = actor_rows_[e.id];
  if (!e.class_name.empty()) row.rec.class_name = e.class_name;
  if (!e.name.empty()) row.rec.name = e.name;
  row.rec.state = to_gcs(e.state);
  if (e.node >= 0) row.rec.node = e.node;
  if (e.restarts >= 0) row.rec.restarts = static_cast<uint32_t>(e.restarts);
  row.dead = e.state == ActorEvent::State::kDead;
  if (!row.dirty && !row.in_flight) {
    row.gen = gen_;
    unclean(row.gen);
  }
  if (!row.dirty && !row.in_flight) actor_backlog_.push_back(e.id);
  row.dirty = true;
}

void GcsAgent::issue_actor_writes() {
  while (!actor_backlog_.empty()) {
    const ObjectId id = actor_backlog_.front();
    actor_backlog_.pop_front();
    auto it = actor_rows_.find(id);
    if (it == actor_rows_.end() || !it->second.dirty || it->second.in_flight) continue;
    ActorRow& row = it->second;
    row.dirty = false;
    row.in_flight = true;
    client_.put<gcs::ActorTable>(id, row.rec, [this, id](Status st) { actor_written(id, st); });
    if (row.dead && !row.rec.name.empty())  // the name is free again
      client_.remove<gcs::ActorTable>(
          gcs::actor_name_key(row.rec.name), [name = row.rec.name](Status s) {
            if (!s && s.code() != Errc::kNotFound)
              PRISM_LOG_WARN("GCS agent: freeing the actor name '{}': {}", name, s.to_string());
          });
    ++stats_.ops_written;
  }
}

void GcsAgent::actor_written(const ObjectId& id, const Status& st) {
  auto it = actor_rows_.find(id);
  if (it == actor_rows_.end()) return;
  ActorRow& row = it->second;
  row.in_flight = false;
  if (!st) {
    ++stats_.writes_failed;
    PRISM_LOG_WARN("GCS agent: actor row {}: {}", id.to_string(), st.to_string());
  }
  if (row.dirty) {  // changed meanwhile: write the newer row
    actor_backlog_.push_back(id);
    return;
  }
  clean(row.gen);
  if (row.dead) actor_rows_.erase(it);  // final
}

Status GcsAgent::claim_actor_name(const std::string& name, const ObjectId& actor,
                                  const std::string& class_key, uint64_t timeout_us) {
  gcs::ActorRecord rec;
  rec.class_name = class_key;
  rec.state = gcs::ActorState::kAlive;
  rec.name = name;
  rec.actor = actor;
  auto r = ask_agent<bool>(
      *this, timeout_us, "claiming the actor name '" + name + "'",
      [name, rec](gcs::GcsClient& c, auto answer) {
        c.insert<gcs::ActorTable>(
            gcs::actor_name_key(name), rec,
            [name, answer](Status st, std::optional<gcs::ActorRecord> have) {
              if (st.code() == Errc::kAlreadyExists)
                st = {Errc::kAlreadyExists,
                      have && have->name == name
                          ? "held by actor:" + std::to_string(have->actor.owner_rank) + "." +
                                std::to_string(have->actor.seq)
                          : "its key is taken by another name"};
              answer->set_value(st ? Expected<bool>(true) : Expected<bool>(st));
            });
      });
  return r ? Status::ok() : r.status();
}

Expected<std::pair<ObjectId, std::string>> GcsAgent::find_actor_name(const std::string& name,
                                                                     uint64_t timeout_us) {
  using Found = std::pair<ObjectId, std::string>;
  return ask_agent<Found>(*this, timeout_us, "looking up the actor name '" + name + "'",
                          [name](gcs::GcsClient& c, auto answer) {
                            c.get<gcs::ActorTable>(
                                gcs::actor_name_key(name),
                                [name, answer](Expected<gcs::ActorRecord> row) {
                                  if (!row)
                                    answer->set_value(row.status());
                                  else if (row->name != name)  // a hash collision
                                    answer->set_value(Status{Errc::kNotFound, "no such name"});
                                  else
                                    answer->set_value(Found{row->actor, row->class_name});
                                });
                          });
}

}  // namespace prism::runtime
