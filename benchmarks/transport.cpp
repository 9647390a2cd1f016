// Control- and data-plane figures that chose Prism's transport, all measured
// in one run between ranks 0 and 1 (docs/transport.md):
//   * 8-byte round trip: MPI_Send/Recv vs Prism's UCX active messages;
//   * a sleeping receiver: UCX AM with the event fd (what idle ranks do);
//   * bandwidth: RDMA get of a registered buffer vs memcpy and MPI_Send.
//
//   mpirun -n 2 ./bench_transport [--csv out.csv]
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstring>
#include <thread>

#include "bench_util.hpp"
#include "runtime/mpi_bootstrap.hpp"
#include "transport/ucx_transport.hpp"

using namespace prism;
using namespace prism::bench;

namespace {

double mpi_bandwidth_gbs(int rank, size_t bytes, int reps) {
  std::vector<char> buf(bytes, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) {
    if (rank == 0)
      MPI_Recv(buf.data(), static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
    else
      MPI_Send(buf.data(), static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return static_cast<double>(bytes) * reps / seconds_since(t0) / 1e9;
}

// Ping-pong over the transport: rank 0 sends, rank 1 echoes. `sleep_between`
// makes the echoing side block on the event fd between messages.
double ucx_rtt_us(transport::Transport& t, int iters, bool receiver_sleeps) {
  std::atomic<int> got{0};
  t.set_handler([&](int src, std::span<const std::byte> m) {
    if (t.rank() == 1) {
      if (Status st = t.send(src, m); !st) std::abort();
    }
    got.fetch_add(1, std::memory_order_release);
  });
  std::byte msg[8] = {};
  std::vector<double> rounds;
  for (int round = 0; round < 5; ++round) {
    got = 0;
    auto t0 = Clock::now();
    if (t.rank() == 0) {
      for (int i = 0; i < iters; ++i) {
        if (Status st = t.send(1, msg); !st) std::abort();
        while (got.load(std::memory_order_acquire) <= i) t.try_poll();
      }
    } else {
      while (got.load(std::memory_order_acquire) < iters) {
        if (receiver_sleeps) t.wait_for_events(-1);
        t.try_poll();
      }
    }
    rounds.push_back(seconds_since(t0) / iters * 1e6);
    int dummy = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    (void)dummy;
  }
  return median(rounds);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prism transport vs MPI"};
  std::string csv;
  int iters = 20000;
  size_t big = size_t(64) << 20;
  app.add_option("--csv", csv, "write metric,value,unit rows here");
  app.add_option("--iters", iters, "ping-pongs per round");
  app.add_option("--bytes", big, "bandwidth message size");
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  CLI11_PARSE(app, argc, argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "run with mpirun -n 2\n");
    MPI_Finalize();
    return 2;
  }
  Report report(rank == 0 ? csv : "");
  auto say = [&](const char* m, double v, const char* u) {
    if (rank == 0) report.add(m, v, u);
  };
  const double mpi_rtt = mpi_pingpong_roundtrip_us(rank, iters);
  say("mpi_pingpong_roundtrip_8B", mpi_rtt, "us");
  say("mpi_bandwidth_64MiB", mpi_bandwidth_gbs(rank, big, 10), "GB/s");

  {
    runtime::MpiBootstrap boot(MPI_COMM_WORLD);
    auto t = transport::create_ucx_transport(boot);
    if (!t) {
      std::fprintf(stderr, "%s\n", t.status().to_string().c_str());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    auto& tr = **t;
    const double am = ucx_rtt_us(tr, iters, false);
    say("ucx_am_roundtrip_8B_spinning", am, "us");
    say("ucx_am_over_mpi_ratio", am / mpi_rtt, "x");
    say("ucx_am_roundtrip_8B_receiver_sleeps", ucx_rtt_us(tr, iters / 10, true), "us");

    // Data plane: rank 1 registers a buffer, rank 0 pulls it with RDMA get.
    std::vector<std::byte> src(big, std::byte{7}), dst(big);
    auto region = tr.register_memory(src.data(), src.size());
    if (!region) MPI_Abort(MPI_COMM_WORLD, 1);
    uint64_t addr = reinterpret_cast<uint64_t>(src.data());
    std::vector<std::byte> key = region->remote_key;
    uint64_t key_len = key.size();
    MPI_Bcast(&addr, 1, MPI_UINT64_T, 1, MPI_COMM_WORLD);
    MPI_Bcast(&key_len, 1, MPI_UINT64_T, 1, MPI_COMM_WORLD);
    key.resize(key_len);
    MPI_Bcast(key.data(), static_cast<int>(key_len), MPI_BYTE, 1, MPI_COMM_WORLD);
    std::atomic<bool> stop{false};
    std::thread progress;  // rank 1 keeps its worker progressing (as a node rank's loop does)
    if (rank == 1)
      progress = std::thread([&] {
        while (!stop) tr.try_poll();
      });
    if (rank == 0) {
      std::vector<double> rates;
      for (int i = 0; i < 5; ++i) {
        auto t0 = Clock::now();
        if (Status st = tr.rdma_get(1, addr, key, dst.data(), big); !st) {
          std::fprintf(stderr, "%s\n", st.to_string().c_str());
          MPI_Abort(MPI_COMM_WORLD, 1);
        }
        rates.push_back(static_cast<double>(big) / seconds_since(t0) / 1e9);
      }
      const double rdma = median(rates);
      std::vector<double> mc;
      for (int i = 0; i < 5; ++i) {
        auto t0 = Clock::now();
        std::memcpy(dst.data(), src.data(), big);
        mc.push_back(static_cast<double>(big) / seconds_since(t0) / 1e9);
      }
      say("ucx_rdma_get_64MiB", rdma, "GB/s");
      say("memcpy_64MiB", median(mc), "GB/s");
      say("rdma_get_over_memcpy_ratio", rdma / median(mc), "x");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    stop = true;
    if (progress.joinable()) progress.join();
    tr.deregister_memory(*region);
    transport::destroy_ucx_transport(std::move(t.value()), boot);
  }
  if (rank == 0 && !report.write()) std::fprintf(stderr, "cannot write %s\n", csv.c_str());
  MPI_Finalize();
  return 0;
}
