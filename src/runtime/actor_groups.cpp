// NodeRuntime, part: groups (docs/mpi-interop.md). An actor group is n
// actors placed at once, all or none, like a Ray placement group: the
// creator plans where each member goes (src/group/placement.hpp), reserves
// every member's resources on its node in one round (kGroupReserve), and
// when a node cannot hold its share, releases the round everywhere and tries
// again once the nodes report room. Only then are the members created, each
// on its reservation. Members meet in collectives through the group as their
// node sees it (src/group/local_group.hpp); a member that fails breaks the
// group on every node (kGroupBroken). MPI tasks (mpi_tasks.cpp) are groups
// too.
#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "actor/registry.hpp"
#include "common/log.hpp"
#include "prism/errors.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

using namespace internal;

// One reservation round: the replies still missing, and each node's answer.
struct NodeRuntime::ReserveRound {
  // awaited.size(), kept apart so that the waiting creator polls it
  // without taking mu_.
  std::atomic<int> pending{0};
  std::set<int> awaited;                        // nodes asked that have not answered (mu_)
  std::map<int, std::pair<bool, int>> replies;  // node -> (reserved, room left) (mu_)
  // Node `node` answered (or was lost: no room there); false if it was not
  // awaited (a duplicate or stray reply changes nothing).
  bool answer(int node, std::pair<bool, int> reply) {
    if (awaited.erase(node) == 0) return false;
    replies[node] = reply;
    pending.fetch_sub(1, std::memory_order_release);
    return true;
  }
};

// ------------------------------------------------------------ creation ---

std::vector<detail::HandlePtr> NodeRuntime::create_actor_group(const detail::ActorCtorInfo& ctor,
                                                               std::vector<detail::TaskArg> args,
                                                               const ActorOptions& options,
                                                               size_t n) {
  const std::string cls = detail::actor_class_name(ctor.class_key);
  if (cls.empty())
    throw RegistrationError(
        "actor class is not registered: add PRISM_ACTOR(Class, &Class::method, ...) at "
        "namespace scope");
  if (n == 0) throw Error("actor group of " + cls + ": a group needs at least one member");
  if (!options.name.empty())
    throw Error("actor group of " + cls +
                ": members cannot be named (.name); name an actor that holds the group instead");
  if (options.node >= 0)
    throw Error("actor group of " + cls +
                ": .node places one actor; a group is placed with .placement (kPack, kSpread)");
  if (options.max_concurrency < 1)
    throw Error("actor group of " + cls + ": max_concurrency must be at least 1, not " +
                std::to_string(options.max_concurrency));
  // Every member holds at least one CPU: gang placement is for members that
  // run at once (collectives), so each gets a core of its own.
  const scheduler::ResourceDemand each{std::max(1.0, options.num_cpus), options.num_gpus,
                                       options.memory, options.resources};
  const auto how =
      options.placement == Placement::kSpread ? groups::Spread::kSpread : groups::Spread::kPack;
  const std::string what = "actor group of " + std::to_string(n) + " " + cls;
  if (auto why = groups::infeasibility(what, n, each, nodes(), how, lost_ranks()); !why.empty())
    throw InfeasibleError(why);
  const ObjectId group{static_cast<uint32_t>(layout_.world_rank), 0, next_seq_.fetch_add(1)};
  const std::string label =
      what + " (group:" + std::to_string(group.owner_rank) + "." + std::to_string(group.seq) + ")";
  const std::vector<int> plan = reserve_group(group, label, n, each, how);
  const std::vector<int32_t> member_nodes(plan.begin(), plan.end());

  std::vector<detail::HandlePtr> members;
  for (uint32_t i = 0; i < n; ++i) {
    auto task = new_member_task(ctor.key, group, label, i, member_nodes);
    TaskSpec& spec = task->spec;
    const ObjectId id = spec.id;
    spec.kind = TaskKind::kActorCreation;
    spec.name = cls + "() [member " + std::to_string(i) + " of " + std::to_string(n) + "]";
    spec.held = each;
    spec.max_concurrency = static_cast<uint32_t>(options.max_concurrency);
    task->request.name = "actor " + cls;
    std::vector<detail::TaskArg> member_args = args;
    std::lock_guard lk(mu_);
    auto& entry = *entry_locked(id);
    entry.actor = true;
    ++stats_.actors_created;
    if (observer_.actor_changed)
      observer_.actor_changed({id, cls, {}, -1, ActorEvent::State::kPending});
    members.push_back(enqueue_task_locked(std::move(task), member_args));
  }
  return members;
}

// A task of one member: pinned to its node, where it runs on its reservation.
NodeRuntime::PendingPtr NodeRuntime::new_member_task(std::string_view function,
                                                     const ObjectId& group,
                                                     const std::string& label, uint32_t index,
                                                     std::vector<int32_t> nodes) {
  auto task = new_task(function);
  TaskSpec& spec = task->spec;
  spec.group = group;
  spec.group_index = index;
  spec.group_label = label;
  spec.resources = {0, 0, 0, {}};  // what it holds is reserved already
  task->request = {0, 0, 0, {}, nodes[index], 0, {}};
  spec.group_nodes = std::move(nodes);
  return task;
}

// --------------------------------------------------------- reservation ---

std::vector<int> NodeRuntime::reserve_group(const ObjectId& group, const std::string& label,
                                            size_t n, const scheduler::ResourceDemand& each,
                                            groups::Spread how) {
  const int num_nodes = layout_.num_nodes;
  std::vector<int> all_nodes(static_cast<size_t>(num_nodes));
  for (int k = 0; k < num_nodes; ++k) all_nodes[static_cast<size_t>(k)] = k;
  std::vector<int> room(static_cast<size_t>(num_nodes));
  {
    const auto totals = nodes();  // the first round plans on totals, as if the job were idle
    for (int k = 0; k < num_nodes; ++k)
      room[static_cast<size_t>(k)] =
          is_lost(k)
              ? 0
              : groups::members_that_fit(totals[static_cast<size_t>(k)], each, static_cast<int>(n));
  }
  // A spread group spans as many node ranks as it would in an idle job: it
  // waits for them rather than bunching up on the ones free now.
  auto distinct = [](const std::vector<int>& plan) {
    return std::set<int>(plan.begin(), plan.end()).size();
  };
  size_t min_nodes = 1;
  if (how != groups::Spread::kPack)
    if (auto idle = groups::plan_members(n, room, how, layout_.world_rank))
      min_nodes = distinct(*idle);
  auto plan_now = [&]() -> std::optional<std::vector<int>> {
    auto plan = groups::plan_members(n, room, how, layout_.world_rank);
    if (!plan || distinct(*plan) < min_nodes) return std::nullopt;
    return std::move(plan.value());
  };
  auto nap = std::chrono::microseconds(200);
  const auto t0 = std::chrono::steady_clock::now();
  bool warned = false;
  for (;;) {
    if (auto plan = plan_now()) {
      std::map<int, std::vector<uint32_t>> by_node;
      for (uint32_t i = 0; i < n; ++i) by_node[(*plan)[i]].push_back(i);
      std::vector<int> ask;
      for (const auto& [node, members] : by_node) ask.push_back(node);
      const auto replies = reserve_round(group, each, by_node, ask);
      bool all = true;
      for (size_t k = 0; k < ask.size(); ++k) all = all && replies[k].first;
      if (all) return *plan;
      // Some node had no room: give back what the others reserved (they
      // count it as room again) and plan with what each node reported.
      for (size_t k = 0; k < ask.size(); ++k) {
        const int node = ask[k];
        const auto& members = by_node[node];
        room[static_cast<size_t>(node)] = replies[k].second;
        if (!replies[k].first) continue;
        room[static_cast<size_t>(node)] += static_cast<int>(members.size());
        if (node == layout_.world_rank) {
          release_here(group, members);
          continue;
        }
        Writer w(64);
        w.put(MessageKind::kGroupRelease);
        encode_object_id(group, w);
        w.put<uint32_t>(static_cast<uint32_t>(members.size()));
        for (uint32_t m : members) w.put<uint32_t>(m);
        if (Status st = send(node, w); !st)
          PRISM_LOG_WARN("group release to rank {}: {}", node, st.to_string());
      }
      if (plan_now()) continue;  // try the new plan at once
    }
    // Not enough room now: wait (lending this thread's CPU), then ask every
    // node how many members it could take. A node rank lost meanwhile may
    // have taken the room the group needs for good: then it fails.
    if (lost_any())
      if (auto why = groups::infeasibility(label, n, each, nodes(), how, lost_ranks());
          !why.empty())
        throw InfeasibleError(why);
    if (!warned && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10)) {
      PRISM_LOG_WARN("{} still waits for room on the nodes", label);
      warned = true;
    }
    bool timed_out = false;
    wait_for([] { return false; }, nap.count(), &timed_out);
    nap = std::min<std::chrono::microseconds>(nap * 2, std::chrono::milliseconds(50));
    const auto probe = reserve_round(group, each, {}, all_nodes);
    for (int k = 0; k < num_nodes; ++k)
      room[static_cast<size_t>(k)] = probe[static_cast<size_t>(k)].second;
  }
}

// Asks each node in `ask` to reserve its members of `by_node` (none: a
// probe); returns each node's (reserved, room left) in `ask`'s order.
std::vector<std::pair<bool, int>> NodeRuntime::reserve_round(
    const ObjectId& group, const scheduler::ResourceDemand& each,
    const std::map<int, std::vector<uint32_t>>& by_node, const std::vector<int>& ask) {
  auto round = std::make_shared<ReserveRound>();
  const uint64_t id = next_reserve_round_.fetch_add(1);
  std::vector<std::pair<bool, int>> out(ask.size());
  {
    std::lock_guard lk(mu_);
    for (int node : ask)
      if (node != layout_.world_rank && !is_lost(node)) round->awaited.insert(node);
    round->pending.store(static_cast<int>(round->awaited.size()));
    reserve_rounds_.emplace(id, round);
  }
  static const std::vector<uint32_t> none;
  auto members_of = [&](int node) -> const std::vector<uint32_t>& {
    auto it = by_node.find(node);
    return it == by_node.end() ? none : it->second;
  };
  for (int node : ask) {
    if (node == layout_.world_rank || is_lost(node)) continue;  // lost: no room (below)
    Writer w(64);
    w.put(MessageKind::kGroupReserve);
    w.put<uint64_t>(id);
    encode_object_id(group, w);
    encode_resource_demand(each, w);
    const auto& members = members_of(node);
    w.put<uint32_t>(static_cast<uint32_t>(members.size()));
    for (uint32_t m : members) w.put<uint32_t>(m);
    if (Status st = send(node, w); !st) {
      PRISM_LOG_WARN("group reservation to rank {}: {}", node, st.to_string());
      std::lock_guard lk(mu_);
      round->answer(node, {false, 0});
    }
  }
  for (size_t k = 0; k < ask.size(); ++k)
    if (ask[k] == layout_.world_rank) out[k] = reserve_here(group, each, members_of(ask[k]));
  wait_for([&] { return round->pending.load(std::memory_order_acquire) == 0; }, -1, nullptr);
  std::lock_guard lk(mu_);
  reserve_rounds_.erase(id);
  for (size_t k = 0; k < ask.size(); ++k)
    if (ask[k] != layout_.world_rank) {
      auto it = round->replies.find(ask[k]);
      out[k] = it != round->replies.end() ? it->second : std::pair<bool, int>{false, 0};
    }
  return out;
}

// Node rank `rank` was lost: rounds waiting for its answer hear "no room
// there" (what it had reserved went with it).
void NodeRuntime::reserve_rounds_lost_locked(int rank) {
  for (auto& [id, round] : reserve_rounds_) round->answer(rank, {false, 0});
}

// All of `members` or none; and how many more members of `each` fit now.
std::pair<bool, int> NodeRuntime::reserve_here(const ObjectId& group,
                                               const scheduler::ResourceDemand& each,
                                               const std::vector<uint32_t>& members) {
  std::vector<scheduler::ResourceGrant> grants;
  for (size_t i = 0; i < members.size(); ++i) {
    auto g = pool_.try_reserve(each);
    if (!g) break;
    grants.push_back(std::move(*g));
  }
  const bool ok = grants.size() == members.size();
  if (ok) {
    std::lock_guard lk(mu_);
    for (size_t i = 0; i < members.size(); ++i)
      reservations_[{group, members[i]}] = {each, std::move(grants[i])};
  }
  // A creator lost meanwhile will never make the members (and
  // end_what_lost_rank_owned may have run before these were here).
  if (ok && is_lost(static_cast<int>(group.owner_rank))) {
    release_here(group, members);
    return {false, pool_.room_for(each, 1 << 16)};
  }
  if (!ok) {
    for (const auto& g : grants) pool_.release_kept(each, g);
  }
  return {ok, pool_.room_for(each, 1 << 16)};
}

void NodeRuntime::release_here(const ObjectId& group, const std::vector<uint32_t>& members) {
  for (uint32_t m : members)
    if (auto r = take_reservation(group, m)) pool_.release_kept(r->demand, r->grant);
}

std::optional<NodeRuntime::Reservation> NodeRuntime::take_reservation(const ObjectId& group,
                                                                      uint32_t index) {
  std::lock_guard lk(mu_);
  auto it = reservations_.find({group, index});
  if (it == reservations_.end()) return std::nullopt;
  Reservation r = std::move(it->second);
  reservations_.erase(it);
  return r;
}

void NodeRuntime::on_group_reserve(int src, Reader& r) {
  const auto id = r.get<uint64_t>();
  const ObjectId group = decode_object_id(r);
  scheduler::ResourceDemand each;
  if (Status st = decode_resource_demand(r, each); !st) {
    PRISM_LOG_ERROR("malformed group reservation from rank {}: {}", src, st.to_string());
    return;
  }
  const auto n = r.get<uint32_t>();
  std::vector<uint32_t> members;
  for (uint32_t i = 0; i < n && r.ok(); ++i) members.push_back(r.get<uint32_t>());
  if (!r.finish("group reserve")) return;
  const auto [ok, room] = reserve_here(group, each, members);
  Writer w(32);
  w.put(MessageKind::kGroupReserveReply);
  w.put<uint64_t>(id);
  w.put<uint8_t>(ok ? 1 : 0);
  w.put<int32_t>(room);
  if (Status st = send(src, w); !st) {
    PRISM_LOG_WARN("group reservation reply to rank {}: {}", src, st.to_string());
    if (ok) release_here(group, members);
  }
}

void NodeRuntime::on_group_reserve_reply(int src, Reader& r) {
  const auto id = r.get<uint64_t>();
  const bool ok = r.get<uint8_t>() != 0;
  const auto room = r.get<int32_t>();
  if (!r.finish("group reserve reply")) return;
  {
    std::lock_guard lk(mu_);
    auto it = reserve_rounds_.find(id);
    if (it == reserve_rounds_.end() || !it->second->answer(src, {ok, room})) return;
  }
  engine_.notify();
}

void NodeRuntime::on_group_release(Reader& r) {
  const ObjectId group = decode_object_id(r);
  const auto n = r.get<uint32_t>();
  std::vector<uint32_t> members;
  for (uint32_t i = 0; i < n && r.ok(); ++i) members.push_back(r.get<uint32_t>());
  if (!r.finish("group release")) return;
  release_here(group, members);
}

// ------------------------------------------------------------ breaking ---

void NodeRuntime::break_group_everywhere(groups::LocalGroup& g, const std::string& reason) {
  if (!g.break_with(reason)) return;  // broken before: the others heard then
  PRISM_LOG_DEBUG("{} broke: {}", g.label(), reason);
  for (int node : g.other_nodes()) {
    Writer w(64);
    w.put(MessageKind::kGroupBroken);
    encode_object_id(g.id(), w);
    w.put_string(reason);
    if (Status st = send(node, w); !st)
      PRISM_LOG_WARN("group broken notice to rank {}: {}", node, st.to_string());
  }
}

void NodeRuntime::on_group_broken(Reader& r) {
  const ObjectId group = decode_object_id(r);
  const std::string reason = r.get_string();
  if (!r.finish("group broken")) return;
  groups_->break_group(group, reason);
}

// --------------------------------------------------------- collectives ---

void NodeRuntime::run_collective(const detail::CollectiveRequest& request) {
  const auto& m = tls_group_member;
  if (!m.group)
    throw Error(std::string("prism::collective::") + groups::name_of(request.kind) +
                " is called outside a group: only the methods of an actor group's members and "
                "the ranks of an MPI task take part in collectives");
  Scope scope(this);
  m.group->run(m.index, request);
}

int NodeRuntime::group_rank() const {
  if (!tls_group_member.group)
    throw Error(
        "prism::collective::rank() is called outside an actor group's member or an MPI task");
  return static_cast<int>(tls_group_member.index);
}

int NodeRuntime::group_size() const {
  if (!tls_group_member.group)
    throw Error(
        "prism::collective::size() is called outside an actor group's member or an MPI task");
  return tls_group_member.group->size();
}

void* NodeRuntime::group_communicator() {
  if (!tls_group_member.group)
    throw Error(
        "prism::mpi::communicator() is called outside an actor group's member or an MPI task");
  return tls_group_member.group->communicator();
}

}  // namespace prism::runtime
