// NodeRuntime, part: MPI tasks (docs/mpi-interop.md). A task submitted with
// .mpi_ranks = k runs its function on k node ranks at once, each rank with
// its own reservation, and the ranks share a communicator made for the task
// (prism::mpi::communicator()): an existing MPI kernel becomes one step of a
// task graph. Rank 0's return value is the task's result; a rank that fails
// fails the task, which names the rank.
#include <algorithm>

#include "common/log.hpp"
#include "prism/errors.hpp"
#include "runtime/node_runtime_internal.hpp"

namespace prism::runtime {

using namespace internal;

detail::HandlePtr NodeRuntime::submit_mpi_task(const detail::RemoteFunctionInfo& function,
                                               std::vector<detail::TaskArg> args,
                                               const TaskOptions& options) {
  const int k = options.mpi_ranks;
  const std::string name = options.name.empty() ? function.name : options.name;
  const std::string what = "MPI task '" + name + "' on " + std::to_string(k) + " node ranks";
  if (options.node >= 0)
    throw Error(what + ": .node pins one rank; an MPI task takes a node rank per MPI rank");
  const scheduler::ResourceDemand each{options.num_cpus, options.num_gpus, options.memory,
                                       options.resources};
  if (auto why = groups::infeasibility(what, static_cast<size_t>(k), each, nodes(),
                                       groups::Spread::kOnePerNode, lost_ranks());
      !why.empty())
    throw InfeasibleError(why);
  const ObjectId group{static_cast<uint32_t>(layout_.world_rank), 0, next_seq_.fetch_add(1)};
  const std::string label =
      what + " (group:" + std::to_string(group.owner_rank) + "." + std::to_string(group.seq) + ")";
  const std::vector<int> plan =
      reserve_group(group, label, static_cast<size_t>(k), each, groups::Spread::kOnePerNode);
  const std::vector<int32_t> member_nodes(plan.begin(), plan.end());
  // Rank 0's result is the task's; the other ranks' results only say that
  // they finished (rank 0 learns their errors before it returns).
  detail::HandlePtr result;
  for (uint32_t i = 0; i < static_cast<uint32_t>(k); ++i) {
    auto task = new_member_task(function.name, group, label, i, member_nodes);
    task->spec.fn = &function;
    task->spec.name = name + " [MPI rank " + std::to_string(i) + "]";
    task->request.name = task->spec.name;
    std::vector<detail::TaskArg> rank_args = args;
    std::lock_guard lk(mu_);
    auto handle = enqueue_task_locked(std::move(task), rank_args);
    if (i == 0) result = std::move(handle);
  }
  return result;
}

// One rank of an MPI task, on its node: joins the group, connects the ranks,
// runs the function, and then every rank learns every rank's error (an
// allgather over the group), so that rank 0 fails when any rank failed.
detail::InvokeResult NodeRuntime::run_mpi_rank(TaskSpec& spec,
                                               std::span<const detail::ArgValue> args) {
  auto reserved = take_reservation(spec.group, spec.group_index);
  if (!reserved)
    throw Error("no resources were reserved for rank " + std::to_string(spec.group_index) + " of " +
                spec.group_label + " on rank " + std::to_string(layout_.world_rank));
  struct GiveBack {  // the reservation ends with the rank
    NodeRuntime& rt;
    Reservation r;
    ~GiveBack() { rt.pool_.release_kept(r.demand, r.grant); }
  } give_back{*this, std::move(*reserved)};
  auto group = groups_->join(spec.group, spec.group_label,
                             std::vector<int>(spec.group_nodes.begin(), spec.group_nodes.end()));
  MemberScope member(group.get(), spec.group_index);
  worker::WorkerPool::GpuScope gpus(give_back.r.grant.gpu_ids);
  const std::string me = "rank " + std::to_string(spec.group_index);
  try {
    group->communicator();  // every rank connects before any runs the kernel
  } catch (const std::exception& e) {
    break_group_everywhere(*group, me + " could not connect: " + e.what());
    throw;
  }
  detail::InvokeResult out;
  std::string error;
  try {
    out = spec.fn->invoke(spec.fn->fn, args);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  // Every rank's error, gathered: lengths first, then the texts padded to
  // the longest. Rank 0 fails with the first failed rank's error.
  const auto n = static_cast<size_t>(group->size());
  std::vector<uint64_t> lengths(n);
  const uint64_t mine = error.size();
  group->run(spec.group_index, {detail::CollectiveKind::kAllgather, detail::DataType::kUint64,
                                collective::Op::kSum, 0, &mine, lengths.data(), 1});
  const uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (longest > 0) {
    std::vector<uint8_t> padded(longest, 0), texts(longest * n);
    std::copy(error.begin(), error.end(), reinterpret_cast<char*>(padded.data()));
    group->run(spec.group_index, {detail::CollectiveKind::kAllgather, detail::DataType::kUint8,
                                  collective::Op::kSum, 0, padded.data(), texts.data(), longest});
    for (size_t r = 0; r < n; ++r)
      if (lengths[r] > 0 && (spec.group_index == 0 || r == spec.group_index))
        throw Error(
            spec.group_label + ": rank " + std::to_string(r) + " failed: " +
            std::string(reinterpret_cast<const char*>(texts.data() + r * longest), lengths[r]));
  }
  return out;
}

}  // namespace prism::runtime
