// One group (the members of an actor group, or the ranks of an MPI task) as
// one node rank sees it: which members live here, the collectives they are
// in, and the communicator of the group's node ranks. Collectives are
// hierarchical: the members on this node meet in memory; the last to arrive
// leads: it combines their buffers, meets the other node ranks' leaders
// over the communicator (InterNode), and hands the result to each member.
//
// As in MPI, the k-th collective a member calls meets the k-th of every
// other member. A member whose method fails breaks the group (break_with):
// every collective waiting, and every later one, fails with the reason.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/ids.hpp"
#include "group/inter_node.hpp"
#include "prism/collective.hpp"

namespace prism::groups {

class LocalGroup {
 public:
  /// Around a member's wait for the others (the runtime lends the waiting
  /// thread's CPU, so members sharing a node cannot starve each other).
  struct WaitHooks {
    std::function<void()> before, after;
  };
  /// `member_nodes[i]`: the world rank of member i's node; `self`: this
  /// process's. `inter` may be null when every member lives here.
  LocalGroup(ObjectId id, std::string label, std::vector<int> member_nodes, int self,
             InterNode* inter, WaitHooks hooks = {});
  ~LocalGroup();
  LocalGroup(const LocalGroup&) = delete;
  LocalGroup& operator=(const LocalGroup&) = delete;

  const ObjectId& id() const noexcept { return id_; }
  const std::string& label() const noexcept { return label_; }
  int size() const noexcept { return static_cast<int>(member_nodes_.size()); }
  /// Node ranks with members other than this one.
  std::vector<int> other_nodes() const;
  /// Whether members live on node rank `node`.
  bool spans(int node) const;
  bool hosts(uint32_t member) const noexcept;

  /// Member `member`'s part of a collective (it lives here). Throws
  /// prism::Error when the group is or becomes broken, or the members'
  /// calls do not match.
  void run(uint32_t member, const detail::CollectiveRequest& request);
  /// The MPI communicator of the members (an MPI_Comm*), member i being
  /// rank i; made on first use, collectively. Throws unless every member
  /// has a node rank of its own, or when the group breaks first.
  void* communicator();

  /// Every waiting and later collective fails with `reason` (the first
  /// reason wins). True if this call broke the group.
  bool break_with(const std::string& reason);
  std::string broken_reason() const;

 private:
  struct Op {
    std::vector<const detail::CollectiveRequest*> parts;  // by local slot
    std::vector<uint32_t> members;                        // member index of each part
    int arrived = 0, left = 0;
    bool leading = false;  // the leader has started: parts are in use until done
    bool done = false;
    std::string error;
  };
  int slot_of(uint32_t member) const;
  NodeComm& connect_locked_out();  // made under connect_mu_
  void lead(uint64_t seq, Op& op, int lead_slot);
  [[noreturn]] void fail(const detail::CollectiveRequest& r, const std::string& why) const;
  std::string what(const detail::CollectiveRequest& r) const;

  const ObjectId id_;
  const std::string label_;
  const std::vector<int> member_nodes_;
  const int self_;
  InterNode* const inter_;
  const WaitHooks hooks_;
  std::vector<uint32_t> local_;                    // members living here, by slot (ascending)
  std::vector<int> node_ranks_;                    // each node rank once, by its first member
  std::vector<std::vector<uint32_t>> members_of_;  // by position in node_ranks_
  int my_pos_ = 0;                                 // this node's position in node_ranks_
  bool one_per_node_in_order_ = false;             // member i on node_ranks_[i]

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Op> ops_;   // by sequence number
  std::vector<uint64_t> calls_;  // collectives called, by local slot
  uint64_t led_ = 0;             // the last sequence number led here
  std::string broken_;
  std::atomic<bool> broken_flag_{false};

  std::mutex connect_mu_;  // one connect at a time; taken before mu_, never after
  std::unique_ptr<NodeComm> comm_;
};

/// The groups with members on this node rank, by id. A group lives while a
/// member here holds it; a group broken before any member arrived here is
/// remembered, so members joining later see it broken. Thread-safe.
class GroupRegistry {
 public:
  GroupRegistry(int self, InterNode* inter, LocalGroup::WaitHooks hooks)
      : self_(self), inter_(inter), hooks_(std::move(hooks)) {}
  /// The group, made on the first join here.
  std::shared_ptr<LocalGroup> join(const ObjectId& id, const std::string& label,
                                   const std::vector<int>& member_nodes);
  /// Breaks the group if it has members here (or remembers it). True if
  /// that broke it now.
  bool break_group(const ObjectId& id, const std::string& reason);
  /// Node rank `node` is gone, and with it whatever members lived there: its
  /// groups with members here break now, and those that arrive here later
  /// break as they join (their members would wait for it forever).
  void node_lost(int node, const std::string& reason);

 private:
  const int self_;
  InterNode* const inter_;
  const LocalGroup::WaitHooks hooks_;
  std::mutex mu_;
  std::unordered_map<ObjectId, std::weak_ptr<LocalGroup>, ObjectIdHash> groups_;
  std::unordered_map<ObjectId, std::string, ObjectIdHash> broken_early_;
  std::map<int, std::string> lost_;  // node rank -> why the groups spanning it broke
};

}  // namespace prism::groups
