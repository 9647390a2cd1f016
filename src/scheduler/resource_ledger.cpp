#include "scheduler/resource_ledger.hpp"

#include <cmath>

namespace prism::scheduler {

ResourceLedger::ResourceLedger(const NodeResources& totals)
    : cpus_total_(milli(totals.num_cpus)),
      memory_total_(totals.memory),
      gpus_(static_cast<int>(totals.num_gpus)) {
  for (const auto& [k, v] : totals.custom) custom_total_[k] = milli(v);
}

bool ResourceLedger::memory_fits(const ResourceDemand& d) const {
  return d.memory == 0 || memory_total_ == 0 || memory_used_ + d.memory <= memory_total_;
}

bool ResourceLedger::custom_fits(const ResourceDemand& d) const {
  for (const auto& [k, v] : d.custom) {
    auto t = custom_total_.find(k);
    auto u = custom_used_.find(k);
    const int64_t used = u == custom_used_.end() ? 0 : u->second;
    if (t == custom_total_.end() ? milli(v) > 0 : used + milli(v) > t->second) return false;
  }
  return true;
}

bool ResourceLedger::gpus_fit(const ResourceDemand& d) const {
  if (d.num_gpus <= 0) return true;
  // GpuLedger knows the device layout (whole vs fractional): probe and undo.
  auto ids = gpus_.acquire(d.num_gpus);
  if (!ids) return false;
  gpus_.release(*ids, d.num_gpus);
  return true;
}

bool ResourceLedger::fits(const ResourceDemand& d) const {
  if (!cpus_fit(d)) return false;
  if (d.is_plain_cpu()) return true;
  return memory_fits(d) && custom_fits(d) && gpus_fit(d);
}

std::optional<ResourceGrant> ResourceLedger::try_acquire(const ResourceDemand& d) {
  if (!cpus_fit(d)) return std::nullopt;
  ResourceGrant g;
  if (!d.is_plain_cpu()) {
    if (!memory_fits(d) || !custom_fits(d)) return std::nullopt;
    if (d.num_gpus > 0) {
      auto ids = gpus_.acquire(d.num_gpus);
      if (!ids) return std::nullopt;
      g.gpu_ids = std::move(*ids);
    }
    memory_used_ += d.memory;
    for (const auto& [k, v] : d.custom) custom_used_[k] += milli(v);
  }
  cpus_used_ += milli(d.num_cpus);
  return g;
}

void ResourceLedger::release(const ResourceDemand& d, const ResourceGrant& g) {
  cpus_used_ -= milli(d.num_cpus);
  if (d.is_plain_cpu()) return;
  if (d.num_gpus > 0) gpus_.release(g.gpu_ids, d.num_gpus);
  memory_used_ -= std::min(memory_used_, d.memory);
  for (const auto& [k, v] : d.custom) {
    auto& u = custom_used_[k];
    u = std::max<int64_t>(0, u - milli(v));
  }
}

bool ResourceLedger::competes(const ResourceDemand& head, const ResourceDemand& other) const {
  if (!cpus_fit(head) && other.num_cpus > 0) return true;
  if (head.is_plain_cpu()) return false;
  if (head.num_gpus > 0 && other.num_gpus > 0 && !gpus_fit(head)) return true;
  if (head.memory > 0 && other.memory > 0 && !memory_fits(head)) return true;
  if (!custom_fits(head))
    for (const auto& [k, v] : other.custom)
      if (head.custom.count(k)) return true;
  return false;
}

ResourceUsage ResourceLedger::usage() const {
  ResourceUsage u;
  u.cpus_free = static_cast<double>(cpus_total_ - cpus_used_) / 1000.0;
  u.memory_free = memory_total_ > memory_used_ ? memory_total_ - memory_used_ : 0;
  return u;
}

}  // namespace prism::scheduler
