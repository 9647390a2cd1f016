#!/usr/bin/env bash
# Runs the collective tests of groups_test.cpp both ways a group's node ranks
# can meet before each collective: in shared memory (the default on one host)
# and through MPI (--prism-group-shared-meet=false, as on several hosts).
# Each run must pass and must say, for every group, that it met the way asked.
set -euo pipefail
mpiexec=$1; tests=$2
filter='Groups.EveryCollective*:Groups.Mismatched*:Groups.AFailingMember*:Groups.TwoGroups*'
filter+=':Groups.AFailedCollective*'
for way in "in shared memory" "through MPI"; do
  flag=--prism-group-shared-meet=true
  [[ $way == "through MPI" ]] && flag=--prism-group-shared-meet=false
  out=$(PRISM_NUM_CPUS=2 "$mpiexec" -n 5 --oversubscribe --bind-to none "$tests" \
    --gtest_filter="$filter" --prism-log-level=info "$flag" 2>&1) ||
    { echo "$out"; echo "the collective tests failed meeting $way"; exit 1; }
  met=$(grep -c "node ranks meet $way" <<<"$out" || true)
  other=$(grep "node ranks meet" <<<"$out" | grep -vc "meet $way" || true)
  if [[ $met -lt 3 || $other -ne 0 ]]; then
    echo "$out"
    echo "expected every group to meet $way: $met did, $other met otherwise"
    exit 1
  fi
  echo "$met groups met $way; tests passed"
done
