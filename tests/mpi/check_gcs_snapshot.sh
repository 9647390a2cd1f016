#!/usr/bin/env bash
# Runs an app with a chain of 3 GCS ranks and --prism-gcs-snapshot, then reads
# the per-rank files back with prism-gcs-dump: every rank wrote one, and the
# merged tables hold the app's finished tasks and every node's row.
set -euo pipefail
mpiexec=$1; app=$2; dump=$3
dir=$(mktemp -d /tmp/prism-gcs-snapshot.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$mpiexec" -n 6 --oversubscribe --bind-to none "$app" --prism-gcs-ranks=3 \
  --prism-gcs-snapshot="$dir/job"
for r in 3 4 5; do
  test -s "$dir/job.rank$r.h5" || { echo "no snapshot from GCS rank $r"; exit 1; }
done
out=$("$dump" "$dir"/job.rank*.h5)
echo "$out"
echo "$out" | grep -q "^tasks: [1-9][0-9]* .*finished [1-9]" || { echo "no finished tasks"; exit 1; }
echo "$out" | grep -q "^nodes: 3" || { echo "not 3 node rows"; exit 1; }
echo "gcs snapshot ok"
