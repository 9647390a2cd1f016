#!/usr/bin/env bash
# Runs an app with --prism-timeline and checks the file is valid Chrome trace
# JSON with one complete ("X") task event per node rank.
set -euo pipefail
mpiexec=$1; app=$2; np=$3
out=$(mktemp /tmp/prism-timeline.XXXXXX.json)
trap 'rm -f "$out"' EXIT
"$mpiexec" -n "$np" --oversubscribe "$app" --prism-timeline="$out" --prism-summary
python3 - "$out" "$((np - 1))" <<'PY'
import json, sys
path, nodes = sys.argv[1], int(sys.argv[2])
trace = json.load(open(path))
events = trace["traceEvents"]
tasks = [e for e in events if e.get("ph") == "X" and e.get("cat") == "task"]
for e in tasks:
    for key in ("name", "ts", "dur", "pid", "tid"):
        assert key in e, f"event without {key}: {e}"
    assert e["dur"] > 0 and e["ts"] > 1.6e15, e  # microseconds since the epoch
names = {e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
assert len(names) == nodes, names
pids = {e["pid"] for e in tasks}
assert pids == set(range(nodes)), f"task events on nodes {pids}, want all {nodes}"
print(f"timeline ok: {len(tasks)} task events on {len(pids)} nodes")
PY
