#!/usr/bin/env python3
"""Medians of the sweep's runs (benchmarks/bsp/sweep.sh): one row per app,
number of workers and CV, with BSP's and Prism's wall times, the speed-up
(BSP wall / Prism wall) and each program's efficiency (CPU time of the
episodes / (wall x cores used)); also one .dat file per app for gnuplot.
Usage: summarize.py RUNS.csv OUT_DIR CORES"""
import csv
import statistics
import sys
from collections import defaultdict

runs_path, out, cores = sys.argv[1], sys.argv[2], int(sys.argv[3])
walls, work, ret = defaultdict(list), defaultdict(list), defaultdict(list)
for r in csv.DictReader(open(runs_path)):
    key = (r["app"], int(r["slots"]), float(r["cv"]), r["program"])
    walls[key].append(float(r["wall_s"]))
    work[key].append(float(r["work_s"]))
    ret[key].append(float(r["final_return"]))

rows = []
for app, slots, cv in sorted({k[:3] for k in walls}):
    b, p = (app, slots, cv, "bsp"), (app, slots, cv, "prism")
    if b not in walls or p not in walls:
        continue
    used = min(slots, cores)
    bw, pw = statistics.median(walls[b]), statistics.median(walls[p])
    rows.append({
        "app": app, "slots": slots, "cv": cv, "reps": len(walls[p]),
        "bsp_wall_s": round(bw, 4), "prism_wall_s": round(pw, 4),
        "speedup": round(bw / pw, 3),
        "speedup_min": round(min(walls[b]) / max(walls[p]), 3),
        "speedup_max": round(max(walls[b]) / min(walls[p]), 3),
        "bsp_efficiency": round(statistics.median(work[b]) / (bw * used), 3),
        "prism_efficiency": round(statistics.median(work[p]) / (pw * used), 3),
        "bsp_final_return": round(statistics.median(ret[b]), 1),
        "prism_final_return": round(statistics.median(ret[p]), 1),
    })

with open(f"{out}/summary.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
for app in sorted({r["app"] for r in rows}):
    with open(f"{out}/{app}.dat", "w") as f:
        for slots in sorted({r["slots"] for r in rows if r["app"] == app}):
            f.write(f"# slots {slots}: cv bsp_wall prism_wall speedup min max bsp_eff prism_eff\n")
            for r in rows:
                if r["app"] == app and r["slots"] == slots:
                    f.write(f'{r["cv"]} {r["bsp_wall_s"]} {r["prism_wall_s"]} {r["speedup"]} '
                            f'{r["speedup_min"]} {r["speedup_max"]} {r["bsp_efficiency"]} '
                            f'{r["prism_efficiency"]}\n')
            f.write("\n\n")  # gnuplot: one index per slot count

# The same table in Markdown, as docs/benchmarks.md shows it.
with open(f"{out}/summary.md", "w") as f:
    f.write("| app | workers | CV | BSP wall s | Prism wall s | speed-up (range) "
            "| BSP eff. | Prism eff. |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    for r in rows:
        f.write(f'| {r["app"]} | {r["slots"]} | {r["cv"]:g} | {r["bsp_wall_s"]:.3f} '
                f'| {r["prism_wall_s"]:.3f} | **{r["speedup"]:.2f}x** '
                f'({r["speedup_min"]:.2f}-{r["speedup_max"]:.2f}) '
                f'| {r["bsp_efficiency"]:.2f} | {r["prism_efficiency"]:.2f} |\n')
