#include "actor/actor_host.hpp"

#include <algorithm>
#include <utility>

namespace prism::actors {

ActorHost::ActorHost(Hooks hooks) : hooks_(std::move(hooks)) {}

ActorHost::~ActorHost() = default;

bool ActorHost::add(const ActorId& id, HostedActor actor) {
  std::lock_guard lk(mu_);
  if (actors_.count(id)) return false;
  if (auto t = tombstones_.find(id); t != tombstones_.end()) {
    if (t->second.incarnation >= actor.incarnation) return false;
    tombstones_.erase(t);  // a restart: the dead instance's calls were rejected
  }
  auto a = std::make_shared<Actor>();
  a->info = std::move(actor);
  if (a->info.max_concurrency < 1) a->info.max_concurrency = 1;
  actors_.emplace(id, std::move(a));
  return true;
}

void ActorHost::admit_locked(Actor& a, Call call) {
  Caller& c = a.callers[call.caller];
  if (call.seq != c.next) {  // early: waits for the calls before it
    if (call.seq > c.next) c.early.emplace(call.seq, std::move(call));
    return;  // (a seq already taken is a duplicate: dropped)
  }
  a.ready.push_back(std::move(call));
  ++c.next;
  for (auto it = c.early.begin(); it != c.early.end() && it->first == c.next;
       it = c.early.erase(it)) {
    a.ready.push_back(std::move(it->second));
    ++c.next;
  }
}

bool ActorHost::want_runner_locked(Actor& a) {
  if (a.dead || a.ready.empty() || a.running >= a.info.max_concurrency) return false;
  ++a.running;
  return true;
}

void ActorHost::enqueue(const ActorId& id, Call call) {
  std::shared_ptr<void> context;
  std::string why;
  {
    std::lock_guard lk(mu_);
    auto it = actors_.find(id);
    if (it == actors_.end() || it->second->dead) {
      auto t = tombstones_.find(id);
      why = t != tombstones_.end() ? t->second.why
                                   : "actor " + id.to_string() + " does not live on this node";
    } else if (it->second->info.incarnation != call.incarnation) {
      why = "actor " + it->second->info.name + " (actor:" + std::to_string(id.owner_rank) + "." +
            std::to_string(id.seq) + ") instance " + std::to_string(call.incarnation) +
            " is gone (it was restarted)";
    } else {
      Actor& a = *it->second;
      admit_locked(a, std::move(call));
      if (!want_runner_locked(a)) return;
      context = a.info.context;
    }
  }
  if (!why.empty()) {
    if (!call.skip) hooks_.reject(call, why);
    return;
  }
  hooks_.start_runner(id, context);
}

void ActorHost::run(const ActorId& id) {
  ActorPtr a;
  {
    std::lock_guard lk(mu_);
    auto it = actors_.find(id);
    if (it == actors_.end()) return;
    a = it->second;
  }
  for (;;) {
    Call call;
    {
      std::lock_guard lk(mu_);
      if (a->dead || a->ready.empty()) {
        --a->running;
        break;
      }
      call = std::move(a->ready.front());
      a->ready.pop_front();
      if (!call.skip) ++calls_run_;
    }
    if (!call.skip) hooks_.execute(id, a->info.context, call);
  }
  finish_if_dead(id, a);
}

bool ActorHost::run_from(const ActorId& id, const CallerId& caller) {
  ActorPtr a;
  Call call;
  {
    std::lock_guard lk(mu_);
    auto it = actors_.find(id);
    if (it == actors_.end() || it->second->dead) return false;
    a = it->second;
    auto c = std::find_if(a->ready.begin(), a->ready.end(),
                          [&](const Call& q) { return q.caller == caller; });
    if (c == a->ready.end()) return false;
    call = std::move(*c);
    a->ready.erase(c);
    ++a->running;
    if (!call.skip) ++calls_run_;
  }
  if (!call.skip) hooks_.execute(id, a->info.context, call);
  {
    std::lock_guard lk(mu_);
    --a->running;
  }
  finish_if_dead(id, a);
  return true;
}

bool ActorHost::has_ready_from(const ActorId& id, const CallerId& caller) const {
  std::lock_guard lk(mu_);
  auto it = actors_.find(id);
  if (it == actors_.end()) return false;
  for (const auto& q : it->second->ready)
    if (q.caller == caller) return true;
  return false;
}

std::vector<Call> ActorHost::bury_locked(const ActorId& id, Actor& a, const std::string& reason) {
  a.dead = true;
  tombstones_[id] = {reason, a.info.incarnation};
  std::vector<Call> doomed(std::make_move_iterator(a.ready.begin()),
                           std::make_move_iterator(a.ready.end()));
  a.ready.clear();
  for (auto& [who, c] : a.callers)
    for (auto& [seq, call] : c.early) doomed.push_back(std::move(call));
  a.callers.clear();
  return doomed;
}

void ActorHost::reject_all(std::vector<Call>& calls, const std::string& why) {
  for (auto& c : calls)
    if (!c.skip) hooks_.reject(c, why);
}

bool ActorHost::kill(const ActorId& id, std::string reason) {
  ActorPtr a;
  std::vector<Call> doomed;
  {
    std::lock_guard lk(mu_);
    auto it = actors_.find(id);
    if (it == actors_.end() || it->second->dead) return false;
    a = it->second;
    doomed = bury_locked(id, *a,
                         "actor " + a->info.name + " (actor:" + std::to_string(id.owner_rank) +
                             "." + std::to_string(id.seq) + ") " + reason);
  }
  reject_all(doomed, tombstones_at(id));
  finish_if_dead(id, a);
  return true;
}

void ActorHost::kill_all(const std::string& reason) {
  kill_where([](const ActorId&) { return true; }, reason);
}

size_t ActorHost::kill_where(const std::function<bool(const ActorId&)>& which,
                             const std::string& reason) {
  std::vector<ActorId> living;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, a] : actors_)
      if (!a->dead) living.push_back(id);
  }
  size_t n = 0;
  for (const auto& id : living)
    if (which(id) && kill(id, reason)) ++n;
  return n;
}

void ActorHost::finish_if_dead(const ActorId& id, const ActorPtr& a) {
  {
    std::lock_guard lk(mu_);
    if (!a->dead || a->running > 0 || a->destroyed) return;
    a->destroyed = true;
    actors_.erase(id);
  }
  hooks_.destroy(id, a->info.context);
}

std::string ActorHost::tombstones_at(const ActorId& id) const {
  std::lock_guard lk(mu_);
  auto it = tombstones_.find(id);
  return it == tombstones_.end() ? std::string() : it->second.why;
}

std::optional<std::string> ActorHost::death(const ActorId& id) const {
  std::lock_guard lk(mu_);
  auto it = tombstones_.find(id);
  if (it == tombstones_.end()) return std::nullopt;
  return it->second.why;
}

bool ActorHost::alive(const ActorId& id) const {
  std::lock_guard lk(mu_);
  auto it = actors_.find(id);
  return it != actors_.end() && !it->second->dead;
}

size_t ActorHost::num_alive() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [id, a] : actors_) n += a->dead ? 0 : 1;
  return n;
}

uint64_t ActorHost::calls_run() const {
  std::lock_guard lk(mu_);
  return calls_run_;
}

}  // namespace prism::actors
