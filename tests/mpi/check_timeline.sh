#!/usr/bin/env bash
# Runs an app with --prism-timeline and --prism-summary: the file must be valid
# Chrome trace JSON with task events on every node rank, and the summary must
# count the tasks.
set -euo pipefail
mpiexec=$1; app=$2; np=$3
out=$(mktemp /tmp/prism-timeline.XXXXXX.json)
trap 'rm -f "$out"' EXIT
summary=$("$mpiexec" -n "$np" --oversubscribe "$app" --prism-timeline="$out" --prism-summary 2>&1)
echo "$summary"
# The run summary names every node rank's tasks and the totals.
grep -qE "total: $((np - 1)) tasks run, 0 failed" <<<"$summary" ||
  { echo "run summary missing or wrong"; exit 1; }
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
