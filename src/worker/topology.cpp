#include "worker/topology.hpp"

#include <algorithm>

#include "worker/gpu_device.hpp"

#include <hwloc.h>

#include <cstring>
#include <fstream>

namespace prism::worker {

struct Topology::Impl {
  hwloc_topology_t topo = nullptr;
  std::vector<hwloc_bitmap_t> cores;  // cpuset of each usable core
  std::string cpu_list;
  ~Impl() {
    for (auto b : cores) hwloc_bitmap_free(b);
    if (topo) hwloc_topology_destroy(topo);
  }
};

Topology::~Topology() = default;

Expected<std::unique_ptr<Topology>> Topology::discover() {
  std::unique_ptr<Topology> t(new Topology());
  t->impl_ = std::make_unique<Impl>();
  auto& im = *t->impl_;
  if (hwloc_topology_init(&im.topo) != 0)
    return Status{Errc::kInternal, "hwloc_topology_init failed"};
  // I/O devices let us count GPUs without CUDA.
  hwloc_topology_set_io_types_filter(im.topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_load(im.topo) != 0)
    return Status{Errc::kInternal, "hwloc_topology_load failed"};

  hwloc_bitmap_t bound = hwloc_bitmap_alloc();
  if (hwloc_get_cpubind(im.topo, bound, HWLOC_CPUBIND_PROCESS) != 0)
    hwloc_bitmap_copy(bound, hwloc_topology_get_allowed_cpuset(im.topo));
  const int ncores = hwloc_get_nbobjs_by_type(im.topo, HWLOC_OBJ_CORE);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(im.topo, HWLOC_OBJ_CORE, i);
    if (!core || !hwloc_bitmap_intersects(core->cpuset, bound)) continue;
    hwloc_bitmap_t s = hwloc_bitmap_dup(core->cpuset);
    hwloc_bitmap_and(s, s, bound);
    im.cores.push_back(s);
    t->core_sets_.push_back(static_cast<int>(im.cores.size()) - 1);
  }
  if (im.cores.empty()) {  // no core objects: fall back to the whole binding
    im.cores.push_back(hwloc_bitmap_dup(bound));
    t->core_sets_.push_back(0);
  }
  char* list = nullptr;
  hwloc_bitmap_list_asprintf(&list, bound);
  im.cpu_list = list ? list : "?";
  std::free(list);
  hwloc_bitmap_free(bound);

  // GPUs: OS devices named cuda*/nvidia*/rsmi* (co-processors or GPUs).
  for (hwloc_obj_t o = hwloc_get_next_osdev(im.topo, nullptr); o;
       o = hwloc_get_next_osdev(im.topo, o)) {
    if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC && o->name &&
        (std::strncmp(o->name, "cuda", 4) == 0 || std::strncmp(o->name, "rsmi", 4) == 0))
      ++t->num_gpus_;
  }
  // Without hwloc's CUDA/NVML plugins, ask the CUDA runtime (when built with it).
  t->num_gpus_ = std::max(t->num_gpus_, cuda_device_count());
  hwloc_obj_t root = hwloc_get_root_obj(im.topo);
  t->total_memory_ = root ? root->total_memory : 0;
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
