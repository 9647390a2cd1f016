#!/usr/bin/env bash
# Every node rank settles its GCS records before the GCS stops
# (tests/mpi/settle_records_driver.cpp): the actor that node rank 1 created
# on node rank 2 and killed is dead in the snapshot (its destructor ran 300 ms
# after the driver returned), and the child task node rank 1 owned is finished.
set -euo pipefail
mpiexec=$1; app=$2; dump=$3
dir=$(mktemp -d /tmp/prism-settle.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$mpiexec" -n 4 --oversubscribe --bind-to none "$app" --prism-gcs-snapshot="$dir/job"
actors=$("$dump" -t actors "$dir"/job.rank*.h5)
echo "$actors"
grep -qE "class_name SlowToEnd  node 2  state dead" <<<"$actors" ||
  { echo "the actor node rank 1 killed is not dead in the GCS"; exit 1; }
tasks=$("$dump" -t tasks "$dir"/job.rank*.h5)
echo "$tasks"
grep -qE "function [^ ]*settle_child +state finished  node 2" <<<"$tasks" ||
  { echo "the child task owned by node rank 1 is not finished in the GCS"; exit 1; }
echo "settled records ok"
