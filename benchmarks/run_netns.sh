#!/usr/bin/env bash
# Task round trip and 1 GiB transfer across fake hosts (network namespaces,
# tests/netns/netns_cluster.sh), each beside MPI's figure between the same two
# ranks, and the same benchmarks on the plain host, in the same minutes
# (docs/benchmarks.md, "Across hosts"). Three layouts, in this order:
#   host      one host, default transports (UCX shared memory + CMA; Open MPI vader)
#   host_tcp  one host, TCP over loopback only (UCX_TLS=tcp,self on lo; btl tcp,self)
#   netns     2 fake hosts, TCP over veth + bridge only (as netns_cluster.sh sets it)
# Per layout: bench_transport (MPI and raw UCX, 8 B round trip and --bytes 1 GiB),
# bench_task_roundtrip (Prism task round trip to the other host vs MPI ping-pong
# in the same job) and bench_objects --gib 1 (Prism get of a 1 GiB object held
# on the other host vs a raw UCX RDMA get in the same job).
#
# Usage: benchmarks/run_netns.sh [BUILD_DIR] [OUT_DIR] [REPEATS]
#   writes OUT_DIR/netns/<layout>_<bench>[_<repeat>].csv and prints a table.
# Needs root for the namespaces; without it only the host layouts run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-benchmarks/results}/netns
repeats=${3:-1}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# On a loaded 2-core machine a node rank filling or registering a fresh 1 GiB
# buffer was once silent past the default 3 s and declared lost (the job then
# fails); the figures here are not about failure detection. Every layout gets
# the same setting (netns_cluster.sh passes PRISM_* on to the ranks).
export PRISM_NODE_TIMEOUT_MS=${PRISM_NODE_TIMEOUT_MS:-30000}
b=$build/benchmarks
gib=$((1 << 30))
for t in bench_transport bench_task_roundtrip bench_objects; do
  [ -x "$b/$t" ] || { echo "missing $b/$t: cmake --build $build --target $t" >&2; exit 1; }
done

# bench LAYOUT NP PROGRAM [ARGS]: one job; a failed job is reported and its
# figures show as "-", the other jobs still run.
bench() {
  local layout=$1
  echo "== $layout: ${*:3}"
  launch "$@" || echo "== $layout: FAILED (exit $?): ${*:3}"
}

# launch LAYOUT NP PROGRAM [ARGS]: NP ranks in the given layout. On one host
# rank i and i+1 share the machine; across hosts rank i runs on host i mod 2,
# so ranks 0 and 1 (the pair every benchmark measures) are on different hosts.
launch() {
  local layout=$1 np=$2
  shift 2
  case $layout in
    host) timeout 600 mpirun -n "$np" --bind-to none "$@" ;;
    host_tcp)
      timeout 600 mpirun -n "$np" --bind-to none --mca pml ob1 --mca btl tcp,self \
        --mca btl_tcp_if_include lo -x UCX_TLS=tcp,self -x UCX_NET_DEVICES=lo "$@" ;;
    netns) PRISM_NETNS_TIMEOUT=600 bash tests/netns/netns_cluster.sh run 2 "$np" -- "$@" ;;
  esac
}

layouts=(host host_tcp)
if bash tests/netns/netns_cluster.sh run 1 1 -- true >/dev/null 2>&1; then
  layouts+=(netns)
else
  echo "network namespaces unavailable here (needs root): netns layout skipped" >&2
fi

for ((r = 1; r <= repeats; r++)); do
  sfx=$([ "$repeats" -gt 1 ] && echo "_$r" || true)
  for l in "${layouts[@]}"; do
    rm -f "$out/${l}_transport$sfx.csv" "$out/${l}_task_roundtrip$sfx.csv" "$out/${l}_objects$sfx.csv"
    bench "$l" 2 "$b/bench_transport" --bytes "$gib" --csv "$out/${l}_transport$sfx.csv"
    bench "$l" 3 "$b/bench_task_roundtrip" --csv "$out/${l}_task_roundtrip$sfx.csv"
    bench "$l" 3 "$b/bench_objects" --gib 1 --csv "$out/${l}_objects$sfx.csv"
  done
done

# One row per layout and repeat: the figures and their ratios to MPI, then
# with several repeats the median of each column per layout. Two MPI round
# trips: the one in bench_task_roundtrip's own job (ranks 0 and 1 while the
# third rank waits in MPI_Barrier, which polls: on 2 cores it takes CPU from
# them) and bench_transport's, a job of just the two ranks.
# bench_transport names its bandwidth row mpi_bandwidth_64MiB whatever
# --bytes is; here it is 1 GiB.
val() {
  local v=""
  [ -f "$1" ] && v=$(awk -F, -v m="$2" '$1 == m { print $2 }' "$1")
  echo "${v:--}"
}
rows() {
  local r sfx l
  for ((r = 1; r <= repeats; r++)); do
    sfx=$([ "$repeats" -gt 1 ] && echo "_$r" || true)
    for l in "${layouts[@]}"; do
      local tr=$out/${l}_transport$sfx.csv rt=$out/${l}_task_roundtrip$sfx.csv
      local ob=$out/${l}_objects$sfx.csv
      echo "$l $r $(val "$rt" mpi_pingpong_roundtrip_8B) $(val "$tr" mpi_pingpong_roundtrip_8B)" \
        "$(val "$rt" task_roundtrip_remote_node) $(val "$tr" mpi_bandwidth_64MiB)" \
        "$(val "$ob" raw_ucx_rdma_get_bandwidth) $(val "$ob" get_remote_large_object_bandwidth)"
    done
  done
}
# Columns: layout, repeat, MPI RTT (same job), MPI RTT (2-rank job), task RTT,
# task/MPI (same job), task/MPI (2-rank job) | MPI 1 GiB, raw UCX get 1 GiB,
# Prism get 1 GiB, Prism/MPI, Prism/raw UCX.
table() {
  awk -v reps="$repeats" '
    function q(x, y) { return (x == "-" || y == "-" || y == 0) ? "-" : x / y }
    function f(x, w, p) { return x == "-" ? sprintf("%" w "s", "-") : sprintf("%" w "." p "f", x) }
    function line(l, r, a, a2, t, m, u, g) {
      printf "%-9s %6s %s %s %s %s %s | %s %s %s %s %s\n", l, r, f(a, 8, 2), f(a2, 8, 2),
        f(t, 8, 2), f(q(t, a), 6, 2), f(q(t, a2), 6, 2), f(m, 7, 3), f(u, 7, 3), f(g, 7, 3),
        f(q(g, m), 6, 2), f(q(g, u), 6, 2)
    }
    function median(l, c,   n, i, j, v, k, tmp) {
      n = 0
      for (i = 1; i <= cnt[l]; i++) if (col[l, i, c] != "-") v[++n] = col[l, i, c]
      if (n == 0) return "-"
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { tmp = v[i]; v[i] = v[j]; v[j] = tmp }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    BEGIN {
      printf "%-9s %6s %8s %8s %8s %6s %6s | %7s %7s %7s %6s %6s\n", "layout", "rep", "mpi_rtt",
        "mpi2_rtt", "task_rtt", "t/mpi", "t/mpi2", "mpi", "ucx_get", "get", "g/mpi", "g/ucx"
    }
    {
      line($1, $2, $3, $4, $5, $6, $7, $8)
      if (!($1 in cnt)) order[++nl] = $1
      k = ++cnt[$1]
      for (c = 3; c <= 8; c++) col[$1, k, c] = $c
    }
    END {
      if (reps < 2) exit
      for (i = 1; i <= nl; i++) {
        l = order[i]
        line(l, "median", median(l, 3), median(l, 4), median(l, 5), median(l, 6), median(l, 7),
             median(l, 8))
      }
    }'
}
echo
rows | table | tee "$out/summary.txt"
echo "(round trips in us; 1 GiB rates in GB/s; ratios of medians are not medians of ratios;"
echo " CSV files in $out)"
