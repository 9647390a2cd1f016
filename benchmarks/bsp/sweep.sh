#!/usr/bin/env bash
# Prism against bulk-synchronous MPI on the same work: apps/rollouts vs
# bsp_rollouts and apps/es vs bsp_es, at each coefficient of variation of the
# episodes' extra work (BSP_CVS) and each number of workers (BSP_SLOTS: MPI
# ranks for BSP; CPU slots, one node rank each, plus one GCS rank, for Prism),
# BSP_REPS times, alternating which program runs first. Every run does
# BSP_WORK_S CPU-seconds of extra work in episodes (pairs, for ES) of mean
# BSP_EXTRA_MS, with the same seeds in both programs.
#
# The host may be shared: each run also measures the CPU time that other
# processes took meanwhile (busy time in /proc/stat minus the run's own), and
# a run where they took more than BSP_MAX_FOREIGN of the cores (default 5%)
# is repeated, up to BSP_RETRIES times; runs.csv keeps the share it had.
# Before each run it waits for the host to be quiet.
#
# Writes OUT_DIR/runs.csv (one row per run), summary.csv and summary.md (medians, speed-up =
# BSP wall time / Prism wall time), results.h5 (both, via csv_to_hdf5), and
# bsp_rollouts.png and bsp_es.png (gnuplot).
# Usage: benchmarks/bsp/sweep.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}; out=${2:-benchmarks/results/bsp}
cvs=${BSP_CVS:-"0 0.5 1 2"}; slot_counts=${BSP_SLOTS:-"2 4"}; reps=${BSP_REPS:-3}
extra_ms=${BSP_EXTRA_MS:-5}; work_s=${BSP_WORK_S:-3}
max_foreign=${BSP_MAX_FOREIGN:-0.05}; retries=${BSP_RETRIES:-4}; cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$out"
items=$(awk -v w="$work_s" -v m="$extra_ms" 'BEGIN { printf "%d", w * 1000 / m }')
runs=$out/runs.csv
echo "app,program,slots,cv,rep,items,wall_s,work_s,final_return,foreign_share" > "$runs"

# CPU seconds the whole host has been busy (all cores; /proc/stat counts in
# USER_HZ = 100 per second): user, nice, system, irq, softirq, steal.
cpu_busy_s() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat; }

# Waits (at most BSP_QUIET_WAIT_S seconds, default 60; 0: not at all) until
# other processes leave the cores alone: busy under max_foreign over 2 seconds.
wait_quiet() {
  local waited=0 b0 b1 limit=${BSP_QUIET_WAIT_S:-60}
  [ "$limit" -gt 0 ] || return 0
  while :; do
    b0=$(cpu_busy_s); sleep 2; b1=$(cpu_busy_s)
    awk -v b0="$b0" -v b1="$b1" -v c="$cores" -v m="$max_foreign" \
      'BEGIN { exit !((b1 - b0) / (2 * c) <= m) }' && return 0
    waited=$((waited + 2))
    [ "$waited" -lt "$limit" ] || { echo "sweep: the host stays busy" >&2; return 0; }
  done
}

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
  local line try foreign
  for try in $(seq 0 "$retries"); do
    local busy0 busy1 log=$out/.run.log times=$out/.run.time
    wait_quiet
    busy0=$(cpu_busy_s)
    # The run's own CPU time (mpirun waits for its ranks: they are counted).
    { TIMEFORMAT='%R %U %S'; time timeout 300 "${cmd[@]}" "${common[@]}" > "$log" 2>&1; } 2> "$times" ||
      { cat "$log" >&2; echo "sweep: FAILED: ${cmd[*]} ${common[*]}" >&2; return 1; }
    busy1=$(cpu_busy_s)
    line=$(grep '^bench:' "$log") || { cat "$log" >&2; echo "sweep: no bench line" >&2; return 1; }
    # Share of the cores other processes used while the whole command ran.
    foreign=$(awk -v b0="$busy0" -v b1="$busy1" -v c="$cores" '{
      f = (b1 - b0 - $2 - $3) / ($1 * c); printf "%.3f", f < 0 ? 0 : f }' "$times")
    echo "$line foreign=$foreign" >&2
    awk -v f="$foreign" -v m="$max_foreign" 'BEGIN { exit !(f <= m) }' && break
    echo "sweep: other processes took $foreign of the cores: running it again" >&2
  done
  # bench: program=P app=A slots=S <items>=N cv=C extra_ms=E wall_s=W work_s=X first_return=F final_return=R
  awk -v rep="$rep" -v foreign="$foreign" '{
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n = ("episodes" in v) ? v["episodes"] : v["pairs"]
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", v["app"], v["program"], v["slots"], v["cv"], rep, n,
           v["wall_s"], v["work_s"], v["final_return"], foreign
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
cat "$out/summary.md"
rm -f "$out/.run.log" "$out/.run.time"
echo "sweep: $runs, $out/summary.csv, $out/results.h5, $out/bsp_*.png"
