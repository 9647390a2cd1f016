#!/usr/bin/env bash
# Fresh runs of bench_task_throughput for the simulator's validation
# (docs/scale-simulation.md): N = 1, 2, 4, 8 node ranks plus one GCS rank,
# --only async / multi / nested, 100,000 tasks, with work stealing (the
# default) and with --prism-work-stealing=false, REPEATS times each, the two
# modes interleaved. Writes mode,node_ranks,bench,repeat,tasks_per_s,load1
# rows (load1: the 1-minute load average just before the run; off_node0: the
# share of the tasks run, warm-up and clients included, that node rank 0 did
# not run, from --prism-summary) and keeps each run's output in LOG_DIR.
# Usage: benchmarks/scale_sim/measure.sh [BUILD_DIR] [OUT.csv] [REPEATS] [LOG_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-sim}
out=${2:-benchmarks/results/scale_sim_measured.csv}
repeats=${3:-2}
logs=${4:-/tmp/scale_sim_measure}
bench=$build/benchmarks/bench_task_throughput
mkdir -p "$logs"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
echo "mode,node_ranks,bench,repeat,tasks_per_s,load1,off_node0" > "$out"
for n in 1 2 4 8; do
  for what in async multi nested; do
    for rep in $(seq 1 "$repeats"); do
      for mode in stealing spill; do
        flag=()
        [ "$mode" = spill ] && flag=(--prism-work-stealing=false)
        load=$(cut -d' ' -f1 /proc/loadavg)
        csv="$logs/$mode-$n-$what-$rep.csv"
        if ! timeout 300 mpirun -n $((n + 1)) "$bench" --only "$what" --tasks 100000 \
          --csv "$csv" --prism-summary "${flag[@]}" > "$logs/$mode-$n-$what-$rep.log" 2>&1; then
          echo "run failed: $mode $n $what $rep (see $logs)" >&2
          continue
        fi
        metric=$(case $what in async) echo single_client_tasks_async ;;
          multi) echo multi_client_tasks_async ;; nested) echo nested_tasks_fib18 ;; esac)
        rate=$(awk -F, -v m="$metric" '$1 == m {print $2}' "$csv")
        off=$(awk '$2 == "driver" || $2 == "node" {all += $4; if ($1 == 0) here = $4}
          END {if (all > 0) printf "%.3f", 1 - here / all}' "$logs/$mode-$n-$what-$rep.log")
        echo "$mode,$n,$what,$rep,$rate,$load,$off" | tee -a "$out"
      done
    done
  done
done
