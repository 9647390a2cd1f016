// Object store microbenchmarks, named like Ray's, each beside a baseline
// measured in the same run:
//   single_client_put_calls / get_calls (small objects)
//   single_client_put_gigabytes          vs memcpy bandwidth
//   get of a 1 GiB object held by another node rank  vs raw UCX RDMA get
//   single_client_wait_1k_refs
//
//   mpirun -n 3 ./bench_objects [--gib 1] [--csv out.csv]
#include <CLI/CLI.hpp>
#include <cstring>
#include <prism/prism.hpp>

#include "bench_util.hpp"
#include "runtime/node_runtime.hpp"

using namespace prism::bench;

namespace {

std::vector<char> big_block(uint64_t bytes) {
  return std::vector<char>(bytes, 'x');
}
PRISM_REMOTE(big_block);

// Raw baseline: a buffer registered on the callee's node, for a direct RDMA get.
struct RawRegion {
  uint64_t address = 0, size = 0;
  std::vector<std::byte> rkey;
  template <class A>
  void serialize(A& a, unsigned) {
    a& address& size& rkey;
  }
};
std::vector<char>* raw_buffer = nullptr;
prism::transport::MemoryRegion raw_region;
RawRegion register_raw(uint64_t bytes) {
  raw_buffer = new std::vector<char>(bytes, 'y');
  auto& t = prism::runtime::NodeRuntime::current()->transport();
  raw_region = t.register_memory(raw_buffer->data(), bytes).value();
  return {reinterpret_cast<uint64_t>(raw_buffer->data()), bytes, raw_region.remote_key};
}
PRISM_REMOTE(register_raw);
int release_raw() {
  prism::runtime::NodeRuntime::current()->transport().deregister_memory(raw_region);
  delete raw_buffer;
  raw_buffer = nullptr;
  return 0;
}
PRISM_REMOTE(release_raw);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism object store benchmarks"};
  std::string csv;
  double gib = 1.0;
  int calls = 200000;
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.add_option("--gib", gib, "size of the large objects in GiB");
  app.add_option("--calls", calls, "small put/get calls per measurement");
  app.allow_extras();
  CLI11_PARSE(app, argc, argv);
  return prism::run(argc, argv, [&] {
    Report report(csv);
    if (prism::num_nodes() < 2) throw std::runtime_error("needs 2 node ranks: mpirun -n 3");

    // Small objects: put calls and get calls from one thread.
    std::vector<prism::ObjectRef<int>> refs;
    refs.reserve(static_cast<size_t>(calls));
    auto t0 = Clock::now();
    for (int i = 0; i < calls; ++i) refs.push_back(prism::put(i));
    report.add("single_client_put_calls", calls / seconds_since(t0), "calls/s");
    t0 = Clock::now();
    long sum = 0;
    for (const auto& r : refs) sum += prism::get(r);
    report.add("single_client_get_calls", calls / seconds_since(t0), "calls/s");
    if (sum != static_cast<long>(calls) * (calls - 1) / 2) throw std::runtime_error("bad sum");

    // Wait on 1k ready refs.
    std::vector<prism::ObjectRef<int>> k(refs.begin(), refs.begin() + 1000);
    t0 = Clock::now();
    const int waits = 1000;
    for (int i = 0; i < waits; ++i) (void)prism::wait(k, 1000);
    report.add("single_client_wait_1k_refs", waits / seconds_since(t0), "calls/s");
    refs.clear();
    k.clear();

    // Large put vs memcpy of the same size (both from one thread).
    const uint64_t bytes = static_cast<uint64_t>(gib * (1ull << 30));
    std::vector<char> src(bytes, 'a'), dst(bytes);
    std::vector<double> mc, pg;
    for (int i = 0; i < 3; ++i) {
      t0 = Clock::now();
      std::memcpy(dst.data(), src.data(), bytes);
      mc.push_back(bytes / seconds_since(t0) / 1e9);
      t0 = Clock::now();
      auto ref = prism::put(src);
      pg.push_back(bytes / seconds_since(t0) / 1e9);
    }
    report.add("memcpy_bandwidth", median(mc), "GB/s");
    report.add("single_client_put_gigabytes", median(pg), "GB/s");
    report.add("put_over_memcpy_ratio", median(pg) / median(mc), "x");
    dst = {};

    // A large object held by node 1, read here: prism vs raw UCX RDMA get.
    auto& transport = prism::runtime::NodeRuntime::current()->transport();
    auto raw = prism::get(prism::task(register_raw).options({.node = 1}).remote(bytes));
    std::vector<double> rawbw, getbw;
    for (int i = 0; i < 3; ++i) {
      t0 = Clock::now();
      if (auto st = transport.rdma_get(1, raw.address, raw.rkey, src.data(), bytes); !st)
        throw std::runtime_error(st.to_string());
      rawbw.push_back(bytes / seconds_since(t0) / 1e9);
      auto held = prism::task(big_block).options({.node = 1}).remote(bytes);
      (void)prism::wait(std::vector{held}, 1);
      t0 = Clock::now();
      auto view = prism::get_view(held);  // pin at node 1, one RDMA get, no decode copy
      getbw.push_back(bytes / seconds_since(t0) / 1e9);
      if (view.size() != bytes || view[bytes - 1] != 'x') throw std::runtime_error("bad bytes");
    }
    (void)prism::get(prism::task(release_raw).options({.node = 1}).remote());
    report.add("raw_ucx_rdma_get_bandwidth", median(rawbw), "GB/s");
    report.add("get_remote_large_object_bandwidth", median(getbw), "GB/s");
    report.add("get_remote_over_raw_ucx_ratio", median(getbw) / median(rawbw), "x");
    if (!report.write()) throw std::runtime_error("cannot write " + csv);
  });
}
