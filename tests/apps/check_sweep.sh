#!/usr/bin/env bash
# A small run of benchmarks/bsp/sweep.sh (2 CVs, 2 workers, one repetition,
# little work): every run produced its row, the summary has a speed-up per
# app and CV, the HDF5 file holds both tables, and the plots were drawn when
# gnuplot is there. Usage: check_sweep.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1; build=$2
dir=$(mktemp -d /tmp/prism-sweep.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# No waiting for a quiet host and no repeated runs: this checks the tooling, not the figures.
BSP_CVS="0 2" BSP_SLOTS=2 BSP_REPS=1 BSP_WORK_S=0.2 BSP_QUIET_WAIT_S=0 BSP_RETRIES=0 bash "$src/benchmarks/bsp/sweep.sh" "$build" "$dir"
[ "$(tail -n +2 "$dir/runs.csv" | wc -l)" -eq 8 ] || { echo "expected 8 runs"; exit 1; }
[ "$(tail -n +2 "$dir/summary.csv" | wc -l)" -eq 4 ] || { echo "expected 4 summary rows"; exit 1; }
# Both programs did the same work (same episodes, same extra work) to within 10%.
python3 - "$dir/runs.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    twin = [t for t in rows if t["app"] == r["app"] and t["cv"] == r["cv"] and t["program"] != r["program"]][0]
    a, b = float(r["work_s"]), float(twin["work_s"])
    assert abs(a - b) <= 0.1 * max(a, b), (r, twin)
    assert r["items"] == twin["items"], (r, twin)
print("same work in both programs")
PY
h5dump -H "$dir/results.h5" | grep -q 'DATASET "speedup"' || { echo "no speedup in results.h5"; exit 1; }
h5dump -H "$dir/results.h5" | grep -q 'GROUP "runs"' || { echo "no runs in results.h5"; exit 1; }
if command -v gnuplot >/dev/null; then
  for app in rollouts es; do
    [ "$(head -c 8 "$dir/bsp_$app.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] ||
      { echo "bsp_$app.png is not a PNG"; exit 1; }
  done
fi
echo "sweep ok"
