#!/usr/bin/env bash
# The whole chain, measured -> fed in -> predicted (docs/scale-simulation.md):
#   1. prism_scale_sim_pick measures the global scheduler's pick against nodes;
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
if [ "${2:-}" != "--no-calibrate" ]; then
  "$bin/prism_scale_sim_pick" "$res/scale_sim_pick_cost.csv"
  "$bin/prism_scale_sim" calibrate --results "$res" --pick "$res/scale_sim_pick_cost.csv" \
    --out "$cal" > /dev/null
fi
"$bin/prism_scale_sim" validate --calibration "$cal" --results "$res" \
  --csv "$res/scale_sim_validation.csv"
# Dedicated nodes: 16 cores and 16 CPU slots each; GCS ranks on their own cores.
node=(--workers 16 --cores-per-node 16)
# (a) a client per node submitting empty tasks (Ray's Figure 7), GCS of 1 rank,
# a chain of 3, 4 and 16 shards of 3.
"$bin/prism_scale_sim" sweep --calibration "$cal" --workload a "${node[@]}" \
  --duration-us 3000 --warmup-us 1000 --gcs-ranks 1 3 12 48 --csv "$res/scale_sim_a_empty.csv"
# (a) with 1 ms tasks (busy nodes report their load every heartbeat period):
# today's 1 ms period, and 10 ms.
for hb in 1000 10000; do
  "$bin/prism_scale_sim" sweep --calibration "$cal" --workload a "${node[@]}" --task-us 1000 \
    --outstanding-per-slot 2 --duration-us 10000 --warmup-us 4000 --gcs-ranks 3 12 \
    --heartbeat-us $hb --csv "$res/scale_sim_a_1ms_hb$hb.csv"
done
# (b) one driver, 1 ms tasks: its node cannot run them all, so they spill to
# the global scheduler; spill batches of 64 (today) and 1.
for batch in 64 1; do
  "$bin/prism_scale_sim" sweep --calibration "$cal" --workload b "${node[@]}" --task-us 1000 \
    --outstanding-per-slot 2 --duration-us 30000 --warmup-us 10000 --gcs-ranks 3 \
    --spill-batch $batch --csv "$res/scale_sim_b_1ms_batch$batch.csv"
done
# (c) nested fib(20) (21,891 tasks) with 100 us leaves: nested spills one at a
# time (today) and in batches of 64 (issue #16, item 1).
for batch in 1 64; do
  "$bin/prism_scale_sim" sweep --calibration "$cal" --workload c "${node[@]}" --fib 20 \
    --task-us 100 --nested-spill-batch $batch --nodes 1 2 5 10 20 50 100 200 --gcs-ranks 3 \
    --csv "$res/scale_sim_c_fib20_batch$batch.csv"
done
mkdir -p docs/images
gnuplot -e "res='$res'; out='docs/images'" "$here/plot.gnuplot"
echo "CSV in $res/scale_sim_*.csv, plots in docs/images/scale_sim_*.png"
