#!/usr/bin/env bash
# Runs every benchmark with its baseline and writes one CSV per benchmark
# (metric,value,unit) into OUT_DIR (default benchmarks/results). Figures are
# also printed. Usage: benchmarks/run_all.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; out=${2:-benchmarks/results}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
b=$build/benchmarks
run() { local name=$1; shift; echo "== $name: $*"; timeout 600 "$@" --csv "$out/$name.csv"; }
run transport            mpirun -n 2 "$b/bench_transport"
run task_roundtrip       mpirun -n 3 "$b/bench_task_roundtrip"
# tasks/s with 1, 2, 4 and 8 node ranks (+1 GCS rank), then without the global
# scheduler and without GCS lineage records. Each measurement is its own job:
# on 2 cores one measurement's GCS records would still be written during the next.
throughput() {
  local name=$1 np=$2; shift 2
  echo "== $name: mpirun -n $np bench_task_throughput $*"
  echo "metric,value,unit" > "$out/$name.csv"
  for m in async spread multi nested sync; do
    timeout 600 mpirun -n "$np" "$b/bench_task_throughput" --only $m "$@" --csv "$out/$name.$m.csv"
    tail -n +2 "$out/$name.$m.csv" | grep -v '^node_ranks' >> "$out/$name.csv"
    rm -f "$out/$name.$m.csv"
  done
}
for n in 1 2 4 8; do throughput "task_throughput_nodes$n" $((n + 1)) --tasks 100000; done
throughput task_throughput_nodes3_no_global_scheduler 4 --tasks 100000 --prism-global-scheduler=false
# Work stealing's A/B (docs/scheduling.md, "Stealing"): 2 and 4 node ranks without it.
throughput task_throughput_nodes2_no_work_stealing 3 --tasks 100000 --prism-work-stealing=false
throughput task_throughput_nodes4_no_work_stealing 5 --tasks 100000 --prism-work-stealing=false
throughput task_throughput_nodes1_no_lineage 2 --tasks 100000 --prism-gcs-lineage=false
run objects              mpirun -n 3 "$b/bench_objects" --gib 1
# Actors: everything with 2 node ranks; the async call rate again with one
# node rank holding both cores (the layout of "1:1 async", like tasks').
run actors               mpirun -n 3 "$b/bench_actors"
run actors_async_nodes1  mpirun -n 2 "$b/bench_actors" --only async
# Dependent task graphs (stencil, chain, tree) against MPI doing the same graph.
run task_graphs          mpirun -n 3 "$b/bench_task_graphs"
# Allreduce between 4 actor-group members (one per node rank) against
# MPI_Allreduce on the same ranks: 1 MiB, 100 MiB, 1 GiB.
run collectives          mpirun -n 5 "$b/bench_collectives"
# Faults survived per minute: a minute of mixed work with random task and
# actor-method exceptions, actor crashes, spill files deleted under the job
# (a 4 MiB store), one of two GCS replicas silenced at 20 s and one node rank
# killed, every result checked (docs/fault-tolerance.md, "Chaos run").
chaos_spill=$(mktemp -d)
echo "== chaos: prism-run --survive-node-loss -n 7 bench_chaos --duration-s 60 --kill-node --lose-spills"
PRISM_STORE_CAPACITY=4M PRISM_SPILL_DIR=$chaos_spill timeout 600 \
  launch/prism-run --survive-node-loss -n 7 --prism gcs-ranks=2 --prism node-timeout-ms=1500 \
  "$b/bench_chaos" --prism-gcs-fault=6:20000 --duration-s 60 --kill-node --lose-spills \
  --csv "$out/chaos.csv"
rm -rf "$chaos_spill"
# 10M tasks and 1M actor calls in one job: every rank's RSS ten times during
# the tasks, after a warm-up and at the end.
run soak                 mpirun -n 3 "$b/bench_soak" --tasks 10000000 --actor-calls 1000000 --samples 10
if [ -x "$b/bench_gcs_throughput" ]; then
  for g in 1 3 6; do run "gcs_throughput_g$g" mpirun -n $((g + 2)) "$b/bench_gcs_throughput" --prism-gcs-ranks=$g; done
fi
# Rollouts and ES: Prism against bulk-synchronous MPI on the same episodes,
# sweeping the heterogeneity of their durations (CV 0, 0.5, 1, 2) and the
# number of workers (2, 4): CSV, HDF5 and PNG plots in $out/bsp (~6 minutes on a
# quiet host; it waits for one and repeats disturbed runs, so allow more).
echo "== rollouts and ES: Prism vs BSP (benchmarks/bsp/sweep.sh)"
timeout 1800 bash benchmarks/bsp/sweep.sh "$build" "$out/bsp"
# Across fake hosts (network namespaces, needs root; ~4 minutes): task round
# trip and 1 GiB get beside MPI's, on one host and over 2 namespaces
# (benchmarks/run_netns.sh, docs/benchmarks.md "Across hosts"). Opt-in.
if [ "${PRISM_BENCH_NETNS:-0}" = 1 ]; then
  echo "== across hosts: benchmarks/run_netns.sh"
  bash benchmarks/run_netns.sh "$build" "$out"
fi
echo "CSV files in $out"
