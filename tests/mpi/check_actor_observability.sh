#!/usr/bin/env bash
# Actors are observable (issue "Actors", item 4): runs prism-actors with a
# timeline, the run summary and GCS snapshots, then checks that
#  * the timeline draws actor calls on a track named after their actor,
#  * the summary counts the actors and their calls,
#  * prism-gcs-dump lists each actor with its node and state, and the name.
set -euo pipefail
mpiexec=$1; app=$2; dump=$3
dir=$(mktemp -d /tmp/prism-actor-obs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
summary=$("$mpiexec" -n 4 --oversubscribe --bind-to none "$app" --prism-timeline="$dir/trace.json" \
  --prism-summary --prism-gcs-snapshot="$dir/job" 2>&1)
echo "$summary"
grep -q "^prism-actors: OK" <<<"$summary" || { echo "the app failed"; exit 1; }
grep -qE "actors: 4 created, [1-9][0-9]* method calls run" <<<"$summary" ||
  { echo "the summary does not count the actors"; exit 1; }
python3 - "$dir/trace.json" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
calls = [e for e in events if e.get("ph") == "X" and e.get("cat") == "actor call"]
assert calls, "no actor calls in the timeline"
tracks = {e["tid"] for e in calls}
assert any(t.startswith("actor Histogram actor:") for t in tracks), tracks
assert "actor 'summary' (Summary)" in tracks, tracks
assert any(e["name"] == "Histogram.add" for e in calls), {e["name"] for e in calls}
print(f"timeline ok: {len(calls)} actor calls on tracks {sorted(tracks)}")
PY
out=$("$dump" -t actors "$dir"/job.rank*.h5)
echo "$out"
grep -q "^actors: " <<<"$out" || { echo "no actor table"; exit 1; }
[ "$(grep -cE 'class_name Histogram  node [0-2]  state (alive|dead)' <<<"$out")" -eq 3 ] ||
  { echo "not 3 histogram rows with a node and a state"; exit 1; }
grep -qE "class_name Histogram  node 2  state dead" <<<"$out" || { echo "the killed actor is not dead"; exit 1; }
grep -qE "class_name Summary  node [0-2]  state alive  restarts 0  name summary  actor -" <<<"$out" ||
  { echo "no named summary row"; exit 1; }
grep -qE "name summary  actor obj:0\." <<<"$out" || { echo "no name row"; exit 1; }
echo "actor observability ok"
