#!/usr/bin/env bash
# The whole chain, measured -> fed in -> predicted (docs/scale-simulation.md):
#   0. measure.sh runs bench_task_throughput fresh (1-8 node ranks, with and
#      without work stealing) into benchmarks/results/scale_sim_measured.csv;
#   1. prism_scale_sim_pick measures the global scheduler's pick and its
#      per-heartbeat balance() against nodes;
#   2. `prism_scale_sim calibrate` derives calibration.json from it and from the
#      benchmark CSVs (benchmarks/results, written by benchmarks/run_all.sh);
#   3. `validate` simulates the 2-core runs (1-8 node ranks) and compares;
#   4. `sweep` predicts 1..1,000 dedicated nodes; gnuplot draws docs/images/.
# Usage: benchmarks/scale_sim/sweep.sh [BUILD_DIR] [--no-calibrate]
#   (~3 minutes on the 2-core VM; --no-calibrate keeps the committed calibration.json)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-sim}
bin=$build/benchmarks/scale_sim
here=benchmarks/scale_sim
res=benchmarks/results
cal=$here/calibration.json
# benchmarks/scale_sim/measure.sh wrote $res/scale_sim_measured.csv (fresh runs
# of the current build, with and without work stealing), which `validate`
# compares with; the costs come from the quiet-machine CSVs of run_all.sh.
if [ "${2:-}" != "--no-calibrate" ]; then
  "$bin/prism_scale_sim_pick" "$res/scale_sim_pick_cost.csv" "$res/scale_sim_balance_cost.csv"
  "$bin/prism_scale_sim" calibrate --results "$res" --pick "$res/scale_sim_pick_cost.csv" \
    --balance "$res/scale_sim_balance_cost.csv" --out "$cal" > /dev/null
fi
"$bin/prism_scale_sim" validate --calibration "$cal" --results "$res" \
  --measured "$res/scale_sim_measured.csv" --csv "$res/scale_sim_validation.csv"
# Dedicated nodes: 16 cores and 16 CPU slots each; GCS ranks on their own cores.
# Work stealing is on unless --no-work-stealing (the old spill design).
node=(--workers 16 --cores-per-node 16)
# (a) a client per node submitting empty tasks (Ray's Figure 7), GCS of 1 rank,
# a chain of 3, 4 and 16 shards of 3.
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload a "${node[@]}" \
  --duration-us 3000 --warmup-us 1000 --gcs-ranks 1 3 12 48 --csv "$res/scale_sim_a_empty.csv"
# (a) with 1 ms tasks: every node busy, each reports its load once per
# heartbeat period (1 ms today, and 10 ms); the old design for comparison.
for hb in 1000 10000; do
  "$bin/prism_scale_sim" sweep --calibration "$cal" --workload a "${node[@]}" --task-us 1000 \
    --outstanding-per-slot 2 --duration-us 10000 --warmup-us 4000 --gcs-ranks 3 12 \
    --heartbeat-us $hb --csv "$res/scale_sim_a_1ms_hb$hb.csv"
done
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload a "${node[@]}" --task-us 1000 \
  --outstanding-per-slot 2 --duration-us 10000 --warmup-us 4000 --gcs-ranks 3 \
  --no-work-stealing --csv "$res/scale_sim_a_1ms_spill.csv"
# (b) one driver, 1 ms tasks: its node cannot run them all. With stealing,
# idle nodes take them by steal orders (heartbeat 1 ms and 10 ms); without,
# they spill to the global scheduler in batches of 64.
for hb in 1000 10000; do
  "$bin/prism_scale_sim" sweep --calibration "$cal" --workload b "${node[@]}" --task-us 1000 \
    --outstanding-per-slot 2 --duration-us 30000 --warmup-us 10000 --gcs-ranks 3 \
    --heartbeat-us $hb --csv "$res/scale_sim_b_1ms_steal_hb$hb.csv"
done
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload b "${node[@]}" --task-us 1000 \
  --outstanding-per-slot 2 --duration-us 30000 --warmup-us 10000 --gcs-ranks 3 \
  --no-work-stealing --spill-batch 64 --csv "$res/scale_sim_b_1ms_spill.csv"
# (c) nested fib(20) (21,891 tasks) with 100 us leaves: stealing, and the old
# design (nested tasks spill one at a time).
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload c "${node[@]}" --fib 20 \
  --task-us 100 --nodes 1 2 5 10 20 50 100 200 --gcs-ranks 3 \
  --csv "$res/scale_sim_c_fib20_steal.csv"
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload c "${node[@]}" --fib 20 \
  --task-us 100 --nodes 1 2 5 10 20 50 100 200 --gcs-ranks 3 --no-work-stealing \
  --csv "$res/scale_sim_c_fib20_spill.csv"
mkdir -p docs/images
gnuplot -e "res='$res'; out='docs/images'" "$here/plot.gnuplot"
echo "CSV in $res/scale_sim_*.csv, plots in docs/images/scale_sim_*.png"
