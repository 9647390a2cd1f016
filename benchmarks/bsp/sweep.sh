#!/usr/bin/env bash
# Prism against bulk-synchronous MPI on the same work: apps/rollouts vs
# bsp_rollouts and apps/es vs bsp_es, at each coefficient of variation of the
# episodes' extra work (BSP_CVS) and each number of workers (BSP_SLOTS: MPI
# ranks for BSP; CPU slots, one node rank each, plus one GCS rank, for Prism),
# BSP_REPS times, alternating which program runs first. Every run does
# BSP_WORK_S CPU-seconds of extra work in episodes (pairs, for ES) of mean
# BSP_EXTRA_MS, with the same seeds in both programs.
#
# Writes OUT_DIR/runs.csv (one row per run), summary.csv (medians, speed-up =
# BSP wall time / Prism wall time), results.h5 (both, via csv_to_hdf5), and
# bsp_rollouts.png and bsp_es.png (gnuplot).
# Usage: benchmarks/bsp/sweep.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}; out=${2:-benchmarks/results/bsp}
cvs=${BSP_CVS:-"0 0.5 1 2"}; slot_counts=${BSP_SLOTS:-"2 4"}; reps=${BSP_REPS:-3}
extra_ms=${BSP_EXTRA_MS:-5}; work_s=${BSP_WORK_S:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$out"
items=$(awk -v w="$work_s" -v m="$extra_ms" 'BEGIN { printf "%d", w * 1000 / m }')
runs=$out/runs.csv
echo "app,program,slots,cv,rep,items,wall_s,work_s,final_return" > "$runs"

# Runs one program once and appends its "bench:" line to runs.csv.
run_one() {
  local app=$1 program=$2 slots=$3 cv=$4 rep=$5 cmd
  local common=(--extra-ms "$extra_ms" --cv "$cv")
  case "$app/$program" in
    rollouts/prism) cmd=(mpirun -n $((slots + 1)) "$build/apps/prism-rollouts" --report 0
                         --episodes "$items" --batch "$slots" --min-gain 0) ;;
    rollouts/bsp)   cmd=(mpirun -n "$slots" "$build/benchmarks/bsp/bsp_rollouts"
                         --episodes "$items" --per-rank 1) ;;
    es/prism)       cmd=(mpirun -n $((slots + 1)) "$build/apps/prism-es" --eval-every 0
                         --population "$slots" --generations $((items / slots))) ;;
    es/bsp)         cmd=(mpirun -n "$slots" "$build/benchmarks/bsp/bsp_es" --per-rank 1
                         --generations $((items / slots))) ;;
  esac
  local line
  line=$(timeout 300 "${cmd[@]}" "${common[@]}" 2>&1 | grep '^bench:') ||
    { echo "sweep: FAILED: ${cmd[*]} ${common[*]}" >&2; return 1; }
  echo "$line" >&2
  # bench: program=P app=A slots=S <items>=N cv=C extra_ms=E wall_s=W work_s=X first_return=F final_return=R
  awk -v rep="$rep" '{
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n = ("episodes" in v) ? v["episodes"] : v["pairs"]
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%s\n", v["app"], v["program"], v["slots"], v["cv"], rep, n,
           v["wall_s"], v["work_s"], v["final_return"]
  }' <<<"$line" >> "$runs"
}

for rep in $(seq 1 "$reps"); do
  for slots in $slot_counts; do
    for cv in $cvs; do
      for app in rollouts es; do
        if [ $((rep % 2)) = 1 ]; then order="bsp prism"; else order="prism bsp"; fi
        for program in $order; do run_one "$app" "$program" "$slots" "$cv" "$rep"; done
      done
    done
  done
done

python3 benchmarks/bsp/summarize.py "$runs" "$out" "$(nproc)"
"$build/benchmarks/bsp/csv_to_hdf5" "$out/results.h5" runs="$runs" summary="$out/summary.csv"
if command -v gnuplot >/dev/null; then
  for app in rollouts es; do
    gnuplot -e "dir='$out'; app='$app'" benchmarks/bsp/plot.gnuplot
  done
else
  echo "sweep: gnuplot not found (scripts/setup-deps.sh installs gnuplot-nox): no plots" >&2
fi
column -s, -t < "$out/summary.csv"
echo "sweep: $runs, $out/summary.csv, $out/results.h5, $out/bsp_*.png"
