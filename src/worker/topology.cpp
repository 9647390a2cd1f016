#include "worker/topology.hpp"

#include <algorithm>

#include "worker/gpu_device.hpp"

#include <hwloc.h>

#include <cstring>
#include <fstream>

namespace prism::worker {

struct Topology::Impl {
  hwloc_topology_t topo = nullptr;
  std::vector<hwloc_bitmap_t> cores;    // cpuset of each usable core
  std::vector<hwloc_bitmap_t> allowed;  // cpuset of each core the host allows the job
  std::string cpu_list;
  ~Impl() {
    for (auto b : cores) hwloc_bitmap_free(b);
    for (auto b : allowed) hwloc_bitmap_free(b);
    if (topo) hwloc_topology_destroy(topo);
  }
};

Topology::~Topology() = default;

namespace {
// The cores that intersect `set`, each cut down to its part of `set` (no core
// objects: the whole set as one). Appends to `out`; returns the count.
size_t split_into_cores(hwloc_topology_t topo, hwloc_const_bitmap_t set,
                        std::vector<hwloc_bitmap_t>& out) {
  const size_t before = out.size();
  const int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, i);
    if (!core || !hwloc_bitmap_intersects(core->cpuset, set)) continue;
    hwloc_bitmap_t s = hwloc_bitmap_dup(core->cpuset);
    hwloc_bitmap_and(s, s, set);
    out.push_back(s);
  }
  if (out.size() == before) out.push_back(hwloc_bitmap_dup(set));
  return out.size() - before;
}

std::string list_of(hwloc_const_bitmap_t set) {
  char* list = nullptr;
  hwloc_bitmap_list_asprintf(&list, set);
  std::string s = list ? list : "?";
  std::free(list);
  return s;
}
}  // namespace

void Topology::use_cores(size_t n) {
  core_sets_.clear();
  for (size_t i = 0; i < n; ++i) core_sets_.push_back(static_cast<int>(i));
}

int Topology::num_allowed_cores() const noexcept {
  return std::max<int>(1, static_cast<int>(impl_->allowed.size()));
}

bool Topology::bind_process(int first, int count) {
  auto& im = *impl_;
  if (im.allowed.empty() || count < 1) return false;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  std::vector<hwloc_bitmap_t> chosen;
  for (int i = 0; i < count; ++i) {
    const auto* core = im.allowed[static_cast<size_t>(first + i) % im.allowed.size()];
    if (hwloc_bitmap_isincluded(core, set)) continue;  // wrapped around: already in
    hwloc_bitmap_or(set, set, core);
    chosen.push_back(hwloc_bitmap_dup(core));
  }
  // Every thread of the process (MPI's and UCX's included), not just this one.
  const bool ok = hwloc_set_cpubind(im.topo, set, HWLOC_CPUBIND_PROCESS) == 0;
  if (ok) {
    for (auto b : im.cores) hwloc_bitmap_free(b);
    im.cores = std::move(chosen);
    use_cores(im.cores.size());
    im.cpu_list = list_of(set);
  } else {
    for (auto b : chosen) hwloc_bitmap_free(b);
  }
  hwloc_bitmap_free(set);
  return ok;
}

Expected<std::unique_ptr<Topology>> Topology::discover(bool gpus) {
  std::unique_ptr<Topology> t(new Topology());
  t->impl_ = std::make_unique<Impl>();
  auto& im = *t->impl_;
  if (hwloc_topology_init(&im.topo) != 0)
    return Status{Errc::kInternal, "hwloc_topology_init failed"};
  // I/O devices let us count GPUs without CUDA.
  hwloc_topology_set_io_types_filter(im.topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_load(im.topo) != 0)
    return Status{Errc::kInternal, "hwloc_topology_load failed"};

  hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(im.topo);
  split_into_cores(im.topo, allowed, im.allowed);
  hwloc_bitmap_t bound = hwloc_bitmap_alloc();
  if (hwloc_get_cpubind(im.topo, bound, HWLOC_CPUBIND_PROCESS) != 0)
    hwloc_bitmap_copy(bound, allowed);
  t->use_cores(split_into_cores(im.topo, bound, im.cores));
  im.cpu_list = list_of(bound);
  hwloc_bitmap_free(bound);

  hwloc_obj_t root = hwloc_get_root_obj(im.topo);
  t->total_memory_ = root ? root->total_memory : 0;
  if (!gpus) return t;
  // GPUs: OS devices named cuda*/nvidia*/rsmi* (co-processors or GPUs).
  for (hwloc_obj_t o = hwloc_get_next_osdev(im.topo, nullptr); o;
       o = hwloc_get_next_osdev(im.topo, o)) {
    if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC && o->name &&
        (std::strncmp(o->name, "cuda", 4) == 0 || std::strncmp(o->name, "rsmi", 4) == 0))
      ++t->num_gpus_;
  }
  // Without hwloc's CUDA/NVML plugins, ask the CUDA runtime (when built with it).
  t->num_gpus_ = std::max(t->num_gpus_, cuda_device_count());
  return t;
}

bool Topology::pin_current_thread(int i) const {
  const auto& cores = impl_->cores;
  return hwloc_set_cpubind(impl_->topo, cores[static_cast<size_t>(i) % cores.size()],
                           HWLOC_CPUBIND_THREAD) == 0;
}

std::string Topology::describe() const {
  return std::to_string(num_cores()) + " cores (cpus " + impl_->cpu_list + "), " +
         std::to_string(num_gpus_) + " GPUs";
}

}  // namespace prism::worker
