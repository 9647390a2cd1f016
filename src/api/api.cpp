// The public API's compiled half: forwards the header templates' type-erased
// calls to the calling thread's NodeRuntime.
#include <cxxabi.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "prism/actor.hpp"
#include "prism/api.hpp"
#include "prism/collective.hpp"
#include "prism/group.hpp"
#include "prism/remote.hpp"
#include "runtime/node_runtime.hpp"

namespace prism {
namespace {

runtime::NodeRuntime& rt() {
  auto* r = runtime::NodeRuntime::current();
  if (!r)
    throw NotRunningError(
        "no Prism runtime on this thread: call this inside prism::run's driver function or a task");
  return *r;
}

ObjectId to_id(const detail::ObjectIdPod& p) {
  return {p.owner_rank, p.index, p.seq};
}

// The registry of remote functions. Filled during static initialization (one
// PRISM_REMOTE line per function), read-only afterwards: no lock needed then.
struct Registry {
  std::unordered_map<std::string, detail::RemoteFunctionInfo> by_name;
  std::unordered_map<const void*, const detail::RemoteFunctionInfo*> by_address;
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

namespace detail {

std::string demangle(const std::type_info& info) {
  int status = 0;
  char* s = abi::__cxa_demangle(info.name(), nullptr, nullptr, &status);
  std::string out = status == 0 && s ? s : info.name();
  std::free(s);
  return out;
}

void register_function(const char* name, const void* fn, Invoker invoke) {
  auto& r = registry();
  const auto index = static_cast<uint32_t>(r.by_name.size());
  auto [it, inserted] = r.by_name.emplace(name, RemoteFunctionInfo{name, fn, invoke, index});
  if (!inserted && it->second.fn != fn)
    throw RegistrationError(std::string("two different functions registered as '") + name + "'");
  r.by_address[fn] = &it->second;
}

const RemoteFunctionInfo* find_function(std::string_view name) noexcept {
  auto& r = registry();
  auto it = r.by_name.find(std::string(name));
  return it == r.by_name.end() ? nullptr : &it->second;
}

const RemoteFunctionInfo* find_function(const void* fn) noexcept {
  auto& r = registry();
  auto it = r.by_address.find(fn);
  return it == r.by_address.end() ? nullptr : it->second;
}

ObjectHandle::~ObjectHandle() {
  if (auto* r = runtime::NodeRuntime::current()) r->release(to_id(id_));
}

HandlePtr submit_task(const RemoteFunctionInfo& function, std::vector<TaskArg> args,
                      const TaskOptions& options) {
  return rt().submit(function, std::move(args), options);
}

HandlePtr create_actor(const ActorCtorInfo& ctor, std::vector<TaskArg> args,
                       const ActorOptions& options) {
  return rt().create_actor(ctor, std::move(args), options);
}

HandlePtr submit_actor_call(const HandlePtr& actor, const ActorMethodInfo& method,
                            std::vector<TaskArg> args) {
  return rt().submit_actor_call(actor, method, std::move(args));
}

void kill_actor(const HandlePtr& actor, bool restart) {
  rt().kill_actor(actor, restart);
}

HandlePtr named_actor(const std::string& name, const char* class_key) {
  return rt().named_actor(name, class_key);
}

std::vector<HandlePtr> create_actor_group(const ActorCtorInfo& ctor, std::vector<TaskArg> args,
                                          const ActorOptions& options, size_t n) {
  return rt().create_actor_group(ctor, std::move(args), options, n);
}

void run_collective(const CollectiveRequest& request) {
  rt().run_collective(request);
}

int group_rank() {
  return rt().group_rank();
}

int group_size() {
  return rt().group_size();
}

void* group_communicator() {
  return rt().group_communicator();
}

HandlePtr put_encoded(std::vector<std::byte> encoded, std::vector<HandlePtr> contained) {
  return rt().put(std::move(encoded), std::move(contained));
}

HandlePtr put_contiguous(std::span<const std::byte> header, std::span<const std::byte> payload) {
  return rt().put_contiguous(header, payload);
}

ValueBytes get_encoded(const HandlePtr& handle) {
  return rt().get(handle);
}

std::vector<bool> wait_handles(const std::vector<HandlePtr>& handles, size_t num_returns,
                               int64_t timeout_us) {
  return rt().wait(handles, num_returns, timeout_us);
}

namespace {
thread_local ObjectIdPod tls_decode_outer{};  // seq 0: none
}  // namespace

DecodeScope::DecodeScope(const HandlePtr& outer) noexcept : saved_(tls_decode_outer) {
  tls_decode_outer = outer ? outer->id() : ObjectIdPod{};
}
DecodeScope::~DecodeScope() {
  tls_decode_outer = saved_;
}

HandlePtr borrow_handle(ObjectIdPod id, int32_t sender) {
  return rt().borrow(to_id(id), sender, to_id(tls_decode_outer));
}

namespace {
thread_local RefCapture* tls_capture = nullptr;
thread_local int32_t tls_ref_sender = -1;
}  // namespace

RefCapture::RefCapture() noexcept : outer_(tls_capture) {
  tls_capture = this;
}
RefCapture::~RefCapture() {
  tls_capture = outer_;
}
RefSenderScope::RefSenderScope(int32_t sender) noexcept : outer_(tls_ref_sender) {
  tls_ref_sender = sender;
}
RefSenderScope::~RefSenderScope() {
  tls_ref_sender = outer_;
}
int32_t current_ref_sender() noexcept {
  return tls_ref_sender;
}

void note_shared(const HandlePtr& handle) {
  if (tls_capture) {  // the value being encoded keeps the ref (see RefCapture)
    tls_capture->add(handle);
    return;
  }
  if (auto* r = runtime::NodeRuntime::current()) r->note_shared(to_id(handle->id()));
}

std::string object_id_string(const ObjectIdPod& id) {
  return to_id(id).to_string();
}

}  // namespace detail

MemoryStats memory_stats() {
  return rt().memory_stats();
}

int num_nodes() {
  return rt().num_nodes();
}
std::vector<NodeInfo> nodes() {
  std::vector<NodeInfo> out;
  for (const auto& n : rt().nodes())
    out.push_back({n.rank, n.num_cpus, n.num_gpus, n.memory, n.custom});
  return out;
}
std::vector<int> gpu_ids() {
  return runtime::NodeRuntime::current_gpu_ids();
}
int node_id() {
  return rt().node_id();
}
int world_rank() {
  return rt().world_rank();
}
int attempt() {
  return static_cast<int>(runtime::NodeRuntime::current_attempt());
}

}  // namespace prism

namespace prism::collective {

void check_block_sizes(const char* what, size_t big, size_t small) {
  const auto n = static_cast<size_t>(detail::group_size());
  if (big != n * small)
    throw Error(std::string("prism::collective::") + what + ": the large buffer holds " +
                std::to_string(big) + " elements, not size() x " + std::to_string(small) + " = " +
                std::to_string(n * small));
}

}  // namespace prism::collective
