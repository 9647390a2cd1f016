#!/usr/bin/env bash
# Runs prism-realtime and checks its table: one row per budget given, each
# with its actions, dropped actions and % dropped, and the bare loop's %
# dropped (the host's floor), then the comparison and the closing OK line.
# (No absolute drop rate is asserted: CI shares its cores; docs/benchmarks.md
# has the figures of a quiet run.) Usage: check_realtime.sh MPIEXEC APP
set -uo pipefail
mpiexec=$1; app=$2
budgets="30 20 10 5 3 2 1 0.5 0.2 0.1"
# shellcheck disable=SC2086
out=$("$mpiexec" -n 3 --oversubscribe --bind-to none "$app" --seconds 0.05 --min-ticks 20 \
      --max-ticks 2000 --budgets $budgets 2>&1); rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { echo "exit $rc"; exit 1; }
for b in $budgets; do
  grep -qE "^ +$b +[0-9]+ +[0-9]+ +[0-9.]+% +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+%$" <<<"$out" ||
    { echo "no table row for the $b ms budget"; exit 1; }
done
grep -qE "^all budgets: Prism dropped [0-9]+ of [0-9]+ actions, the bare loop [0-9]+ of [0-9]+$" \
  <<<"$out" || { echo "no line comparing Prism with the bare loop"; exit 1; }
grep -qE "^prism-realtime: OK \(10 budgets" <<<"$out" || { echo "no OK line"; exit 1; }
echo "realtime table ok"
