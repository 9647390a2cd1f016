#include "group/local_group.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "group/reduce.hpp"
#include "prism/errors.hpp"

namespace prism::groups {

using detail::CollectiveKind;
using detail::CollectiveRequest;

namespace {

bool same_call(const CollectiveRequest& a, const CollectiveRequest& b) {
  return a.kind == b.kind && a.type == b.type && a.op == b.op && a.root == b.root &&
         a.count == b.count;
}

// What every node rank must agree on for one collective.
uint64_t signature(const CollectiveRequest& r) {
  uint64_t h = static_cast<uint64_t>(r.kind) | static_cast<uint64_t>(r.type) << 8 |
               static_cast<uint64_t>(r.op) << 16 | static_cast<uint64_t>(r.root & 0xFFFF) << 24;
  h ^= (r.count + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  return h;
}

const char* op_name(Op op) {
  switch (op) {
    case Op::kSum:
      return "sum";
    case Op::kProd:
      return "prod";
    case Op::kMin:
      return "min";
    case Op::kMax:
      return "max";
  }
  return "?";
}

}  // namespace

LocalGroup::LocalGroup(ObjectId id, std::string label, std::vector<int> member_nodes, int self,
                       InterNode* inter, WaitHooks hooks)
    : id_(id),
      label_(std::move(label)),
      member_nodes_(std::move(member_nodes)),
      self_(self),
      inter_(inter),
      hooks_(std::move(hooks)) {
  for (uint32_t i = 0; i < member_nodes_.size(); ++i) {
    const int node = member_nodes_[i];
    if (node == self_) local_.push_back(i);
    auto it = std::find(node_ranks_.begin(), node_ranks_.end(), node);
    if (it == node_ranks_.end()) {
      node_ranks_.push_back(node);
      members_of_.emplace_back();
      it = node_ranks_.end() - 1;
    }
    members_of_[static_cast<size_t>(it - node_ranks_.begin())].push_back(i);
  }
  my_pos_ = static_cast<int>(std::find(node_ranks_.begin(), node_ranks_.end(), self_) -
                             node_ranks_.begin());
  one_per_node_in_order_ = node_ranks_.size() == member_nodes_.size();
  calls_.assign(local_.size(), 0);
}

LocalGroup::~LocalGroup() = default;

std::vector<int> LocalGroup::other_nodes() const {
  std::vector<int> out;
  for (int n : node_ranks_)
    if (n != self_) out.push_back(n);
  return out;
}

bool LocalGroup::spans(int node) const {
  return std::find(node_ranks_.begin(), node_ranks_.end(), node) != node_ranks_.end();
}

bool LocalGroup::hosts(uint32_t member) const noexcept {
  return slot_of(member) >= 0;
}

int LocalGroup::slot_of(uint32_t member) const {
  auto it = std::lower_bound(local_.begin(), local_.end(), member);
  return it != local_.end() && *it == member ? static_cast<int>(it - local_.begin()) : -1;
}

std::string LocalGroup::what(const CollectiveRequest& r) const {
  std::string s = name_of(r.kind);
  if (r.kind == CollectiveKind::kBarrier) return s + "()";
  s += "(" + std::to_string(r.count) + " x " + name_of(r.type);
  if (r.kind == CollectiveKind::kAllreduce || r.kind == CollectiveKind::kReduceScatter)
    s += std::string(", ") + op_name(r.op);
  if (r.kind == CollectiveKind::kBroadcast) s += ", root " + std::to_string(r.root);
  return s + ")";
}

void LocalGroup::fail(const CollectiveRequest& r, const std::string& why) const {
  throw Error("collective " + what(r) + " on " + label_ + ": " + why);
}

std::string LocalGroup::broken_reason() const {
  std::lock_guard lk(mu_);
  return broken_;
}

bool LocalGroup::break_with(const std::string& reason) {
  {
    std::lock_guard lk(mu_);
    if (!broken_.empty()) return false;
    broken_ = reason.empty() ? "the group broke" : reason;
    broken_flag_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  return true;
}

void LocalGroup::run(uint32_t member, const CollectiveRequest& request) {
  const int slot = slot_of(member);
  if (slot < 0)
    fail(request, "member " + std::to_string(member) + " does not live on node rank " +
                      std::to_string(self_));
  if (request.kind == CollectiveKind::kBroadcast && (request.root < 0 || request.root >= size()))
    fail(request, "root " + std::to_string(request.root) + " is not a member (the group has " +
                      std::to_string(size()) + ")");
  std::unique_lock lk(mu_);
  if (!broken_.empty()) fail(request, broken_);
  const uint64_t seq = ++calls_[static_cast<size_t>(slot)];
  Op& op = ops_[seq];
  if (op.parts.empty()) {
    op.parts.assign(local_.size(), nullptr);
    op.members = local_;
  } else {
    const CollectiveRequest* other = nullptr;
    uint32_t other_member = 0;
    for (size_t j = 0; j < op.parts.size(); ++j)
      if (op.parts[j]) {
        other = op.parts[j];
        other_member = local_[j];
        break;
      }
    if (other && !same_call(*other, request)) {
      const std::string why = "member " + std::to_string(member) + " called " + what(request) +
                              " where member " + std::to_string(other_member) + " called " +
                              what(*other);
      lk.unlock();
      break_with("mismatched collectives: " + why);
      fail(request, "mismatched collectives: " + why);
    }
  }
  op.parts[static_cast<size_t>(slot)] = &request;
  const bool leader = ++op.arrived == static_cast<int>(local_.size());
  auto leave = [&] {  // under mu_
    std::string error = op.error;
    const bool done = op.done;
    if (++op.left == static_cast<int>(local_.size())) ops_.erase(seq);
    if (!done) fail(request, broken_);
    if (!error.empty()) fail(request, error);
  };
  if (!leader) {
    if (hooks_.before) hooks_.before();
    // Once the leader has started, it reads and writes this member's
    // buffers until it is done: the member may not leave before, even if
    // the group breaks meanwhile (a later collective's mismatch, a member
    // killed); a leader that has not started will not (below).
    cv_.wait(lk, [&] { return op.done || (!broken_.empty() && !op.leading); });
    lk.unlock();
    if (hooks_.after) hooks_.after();
    lk.lock();
    return leave();
  }
  // The leader goes in sequence order (a threaded member may have two
  // collectives in flight; the node ranks must meet them in one order).
  cv_.wait(lk, [&] { return led_ == seq - 1 || !broken_.empty(); });
  if (led_ != seq - 1 || !broken_.empty()) return leave();  // the others may have left
  op.leading = true;
  lk.unlock();
  std::string error;
  try {
    lead(seq, op, slot);
  } catch (const std::exception& e) {
    error = e.what();
  }
  lk.lock();
  led_ = seq;
  op.done = true;
  op.error = error;
  cv_.notify_all();
  leave();
}

NodeComm& LocalGroup::connect_locked_out() {
  std::lock_guard ck(connect_mu_);
  if (comm_) return *comm_;
  if (!inter_)
    throw Error("this runtime has no MPI: members on " + std::to_string(node_ranks_.size()) +
                " node ranks cannot meet");
  auto c = inter_->connect(id_, node_ranks_, broken_flag_);
  if (!c) {
    std::lock_guard lk(mu_);
    throw Error(c.status().code() == Errc::kAborted && !broken_.empty() ? broken_
                                                                        : c.status().message());
  }
  comm_ = std::move(c.value());
  return *comm_;
}

void* LocalGroup::communicator() {
  if (!one_per_node_in_order_) {
    std::string where;
    for (size_t k = 0; k < node_ranks_.size(); ++k)
      where += (k ? ", " : "") + std::to_string(members_of_[k].size()) + " on node rank " +
               std::to_string(node_ranks_[k]);
    throw Error("prism::mpi::communicator(): the members of " + label_ + " share node ranks (" +
                where +
                "): an MPI rank per member needs a node rank per member (placement kSpread "
                "where each node rank has room for one), or use prism::collective");
  }
  return connect_locked_out().native();
}

// The leader's part, with every local member's request in op.parts (their
// buffers stay valid: their owners wait until op.done).
void LocalGroup::lead(uint64_t, Op& op, int lead_slot) {
  const CollectiveRequest& me = *op.parts[static_cast<size_t>(lead_slot)];
  const size_t unit = size_of(me.type);
  const size_t nodes = node_ranks_.size();
  NodeComm* comm = nullptr;
  auto others = [&](auto&& f) {
    for (size_t j = 0; j < op.parts.size(); ++j)
      if (static_cast<int>(j) != lead_slot) f(j, *op.parts[j]);
  };
  auto combine_here = [&](void* acc) {  // this node rank's members' parts of an allreduce
    others([&](size_t, const CollectiveRequest& r) {
      reduce_into(me.type, me.op, acc, r.send, me.count);
    });
  };
  bool in_meet = false;  // the node ranks' allreduce comes with their meet
  // An allreduce that goes with the meet combines this node rank's parts
  // before the meet, so into a copy: a failed meet leaves the leader's buffer
  // holding its own part, as it leaves every other member's.
  std::vector<std::byte> node_sum;
  if (nodes > 1) {
    comm = &connect_locked_out();
    in_meet = me.kind == CollectiveKind::kAllreduce && comm->allreduces_in_meet(me.count * unit);
    if (in_meet) {
      const auto* mine = static_cast<const std::byte*>(me.send);
      node_sum.assign(mine, mine + me.count * unit);
      combine_here(node_sum.data());
    }
    Status st = in_meet ? comm->meet_allreduce(signature(me), node_sum.data(), me.count, me.type,
                                               me.op, broken_flag_)
                        : comm->meet(signature(me), broken_flag_);
    if (!st) {
      if (st.code() == Errc::kInvalidArgument) {
        break_with("mismatched collectives: the node ranks of " + label_ +
                   " called different collectives (this one: " + what(me) + ")");
      }
      std::lock_guard lk(mu_);
      throw Error(broken_.empty() ? st.message() : broken_);
    }
  }
  switch (me.kind) {
    case CollectiveKind::kBarrier:
      break;  // meet() was the barrier between node ranks
    case CollectiveKind::kAllreduce: {
      void* acc = me.recv;
      if (in_meet) {
        std::memcpy(acc, node_sum.data(), node_sum.size());
      } else {
        combine_here(acc);
        if (comm) comm->allreduce(acc, me.count, me.type, me.op);
      }
      others(
          [&](size_t, const CollectiveRequest& r) { std::memcpy(r.recv, acc, me.count * unit); });
      break;
    }
    case CollectiveKind::kBroadcast: {
      const int root_slot = slot_of(static_cast<uint32_t>(me.root));
      void* buf = root_slot >= 0 ? op.parts[static_cast<size_t>(root_slot)]->recv : me.recv;
      if (comm) {
        const int root_node = member_nodes_[static_cast<size_t>(me.root)];
        const int root_pos = static_cast<int>(
            std::find(node_ranks_.begin(), node_ranks_.end(), root_node) - node_ranks_.begin());
        comm->broadcast(buf, me.count * unit, root_pos);
      }
      for (const auto* r : op.parts)
        if (r->recv != buf) std::memcpy(r->recv, buf, me.count * unit);
      break;
    }
    case CollectiveKind::kAllgather: {
      const size_t piece = me.count * unit;
      auto* all = static_cast<std::byte*>(me.recv);
      if (!comm) {
        for (size_t j = 0; j < op.parts.size(); ++j)
          std::memcpy(all + op.members[j] * piece, op.parts[j]->send, piece);
      } else {
        std::vector<std::byte> mine(op.parts.size() * piece);
        for (size_t j = 0; j < op.parts.size(); ++j)
          std::memcpy(mine.data() + j * piece, op.parts[j]->send, piece);
        std::vector<size_t> bytes;
        for (const auto& m : members_of_) bytes.push_back(m.size() * piece);
        std::vector<std::byte> gathered(static_cast<size_t>(size()) * piece);
        comm->allgatherv(mine.data(), gathered.data(), bytes);
        size_t at = 0;  // node by node, each node's members in order
        for (const auto& m : members_of_)
          for (uint32_t member : m) {
            std::memcpy(all + member * piece, gathered.data() + at, piece);
            at += piece;
          }
      }
      others([&](size_t, const CollectiveRequest& r) {
        std::memcpy(r.recv, all, static_cast<size_t>(size()) * piece);
      });
      break;
    }
    case CollectiveKind::kReduceScatter: {
      const size_t block = me.count * unit;
      if (comm && one_per_node_in_order_) {  // one member per node rank: MPI's own
        comm->reduce_scatter_block(me.send, me.recv, me.count, me.type, me.op);
        break;
      }
      const size_t total = static_cast<size_t>(size()) * me.count;
      std::vector<std::byte> acc(total * unit);
      std::memcpy(acc.data(), me.send, acc.size());
      others([&](size_t, const CollectiveRequest& r) {
        reduce_into(me.type, me.op, acc.data(), r.send, total);
      });
      if (comm) comm->allreduce(acc.data(), total, me.type, me.op);
      for (size_t j = 0; j < op.parts.size(); ++j)
        std::memcpy(op.parts[j]->recv, acc.data() + op.members[j] * block, block);
      break;
    }
  }
}

std::shared_ptr<LocalGroup> GroupRegistry::join(const ObjectId& id, const std::string& label,
                                                const std::vector<int>& member_nodes) {
  std::lock_guard lk(mu_);
  auto& slot = groups_[id];
  if (auto g = slot.lock()) return g;
  auto g = std::make_shared<LocalGroup>(id, label, member_nodes, self_, inter_, hooks_);
  if (auto it = broken_early_.find(id); it != broken_early_.end()) g->break_with(it->second);
  for (const auto& [node, why] : lost_)
    if (g->spans(node)) g->break_with(why);
  slot = g;
  // Forget groups whose members here are all gone.
  for (auto it = groups_.begin(); it != groups_.end();)
    it = it->second.expired() ? groups_.erase(it) : std::next(it);
  return g;
}

bool GroupRegistry::break_group(const ObjectId& id, const std::string& reason) {
  std::shared_ptr<LocalGroup> g;
  {
    std::lock_guard lk(mu_);
    if (auto it = groups_.find(id); it != groups_.end()) g = it->second.lock();
    if (!g) {
      broken_early_.emplace(id, reason);
      return false;
    }
  }
  return g->break_with(reason);
}

void GroupRegistry::node_lost(int node, const std::string& reason) {
  std::vector<std::shared_ptr<LocalGroup>> spanning;
  {
    std::lock_guard lk(mu_);
    lost_.emplace(node, reason);
    for (auto& [id, weak] : groups_)
      if (auto g = weak.lock(); g && g->spans(node)) spanning.push_back(std::move(g));
  }
  for (auto& g : spanning) g->break_with(reason);
}

}  // namespace prism::groups
