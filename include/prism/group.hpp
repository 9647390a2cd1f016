// Actor groups: n actors of one class placed at once, all or none, like a
// Ray placement group; their methods meet in collectives
// (prism/collective.hpp). docs/mpi-interop.md.
//
//   auto g = prism::actor_group<Worker>(4, seed)
//                .options({.placement = prism::Placement::kSpread})
//                .remote();                          // waits until all 4 fit
//   auto refs = g.call(&Worker::step).remote(0.1);   // one call per member
//   for (auto& r : refs) prism::get(r);
#pragma once

#include <cstddef>
#include <vector>

#include "prism/actor.hpp"

namespace prism {

namespace detail {
// The runtime (src/api): the members' creation objects, in member order.
std::vector<HandlePtr> create_actor_group(const ActorCtorInfo& ctor, std::vector<TaskArg> args,
                                          const ActorOptions& options, size_t n);
}  // namespace detail

/// The members of an actor group, in member order (member i is
/// prism::collective::rank() i). A copyable value: it travels like an
/// ActorHandle. The members live while any handle to them does: when the
/// last copy of the group (and of its members' handles) is gone, they are
/// destroyed and their resources released.
template <class C>
class ActorGroup {
 public:
  ActorGroup() = default;
  explicit ActorGroup(std::vector<ActorHandle<C>> members) : members_(std::move(members)) {}

  size_t size() const noexcept { return members_.size(); }
  const ActorHandle<C>& operator[](size_t i) const { return members_.at(i); }
  auto begin() const noexcept { return members_.begin(); }
  auto end() const noexcept { return members_.end(); }
  const std::vector<ActorHandle<C>>& members() const noexcept { return members_; }

  /// Calls a method on every member with the same arguments; result i is
  /// member i's. Example: `auto refs = g.call(&Worker::step).remote(0.1);`
  template <class M>
  auto call(M method) const {
    using Bound = typename detail::bound_method<M>::type;
    std::vector<Bound> bound;
    bound.reserve(members_.size());
    for (const auto& m : members_) bound.push_back(m.call(method));
    return GroupCall<Bound>(std::move(bound));
  }

  template <class Archive>
  void serialize(Archive& ar, const unsigned int) {
    ar& members_;
  }

 private:
  template <class Bound>
  class GroupCall {
   public:
    explicit GroupCall(std::vector<Bound> bound) : bound_(std::move(bound)) {}
    template <class... A>
    auto remote(const A&... args) const {
      std::vector<decltype(bound_.front().remote(args...))> refs;
      refs.reserve(bound_.size());
      for (const auto& b : bound_) refs.push_back(b.remote(args...));
      return refs;
    }

   private:
    std::vector<Bound> bound_;
  };

  std::vector<ActorHandle<C>> members_;
};

/// Builds an actor group; made by prism::actor_group<C>(n, args...).
template <class C>
class ActorGroupCreator {
 public:
  ActorGroupCreator(size_t n, const detail::ActorCtorInfo* ctor, std::vector<detail::TaskArg> args)
      : n_(n), ctor_(ctor), args_(std::move(args)) {}
  /// What each member holds (at least one CPU each) and how members spread:
  /// placement kPack (the default: as few node ranks as possible) or
  /// kSpread (over as many as the job has: it waits for them rather than
  /// bunch up on the node ranks free now). `name` and `node` are refused.
  ActorGroupCreator options(ActorOptions opts) const {
    ActorGroupCreator copy = *this;
    copy.opts_ = std::move(opts);
    return copy;
  }
  /// Reserves every member's resources on its node, all at once, then
  /// creates the members and returns. While the nodes have no room it
  /// waits (other work goes on meanwhile); InfeasibleError, naming the
  /// shortfall, at once if the job's nodes could never hold the group.
  ActorGroup<C> remote() const {
    std::vector<ActorHandle<C>> members;
    for (auto& h : detail::create_actor_group(*ctor_, args_, opts_, n_))
      members.emplace_back(std::move(h));
    return ActorGroup<C>(std::move(members));
  }

 private:
  size_t n_;
  const detail::ActorCtorInfo* ctor_;
  std::vector<detail::TaskArg> args_;
  ActorOptions opts_;
};

/// n actors of class C (registered with PRISM_ACTOR), each constructed from
/// the same arguments (as for prism::actor). Thread-safe.
template <class C, class... A>
ActorGroupCreator<C> actor_group(size_t n, A&&... args) {
  auto one = actor<C>(std::forward<A>(args)...);  // the constructor and encoded arguments
  return ActorGroupCreator<C>(n, one.ctor_info(), one.encoded_args());
}

}  // namespace prism
