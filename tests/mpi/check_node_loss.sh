#!/usr/bin/env bash
# A node rank dies mid-run (docs/fault-tolerance.md).
#  1. Under prism-run --survive-node-loss (Open MPI's orte_enable_recovery)
#     the job goes on without it: prism_node_loss_driver checks the retried
#     tasks, the errors naming the rank, and new work; every other rank must
#     end and the job exit 0 with a line naming the lost rank, and the GCS's
#     node table (its snapshot, read with prism-gcs-dump) says it is dead.
#     With --groups the driver checks an actor group through the loss, with
#     --orphans an actor whose owner is the lost rank.
#  2. The same launch returns the driver's exit code, not mpirun's 0: a
#     driver that fails after the loss fails the job.
#  3. Under a plain mpirun the whole job ends promptly (no rank hangs), non-zero.
set -uo pipefail
mpiexec=$1; app=$2; prism_run=$3; dump=$4
dir=$(mktemp -d /tmp/prism-node-loss.XXXXXX)
trap 'rm -rf "$dir"' EXIT
common=(-n 5 --oversubscribe --bind-to none)
survive=("$prism_run" --survive-node-loss --mpirun "$mpiexec" -n 5 --oversubscribe
  --prism node-timeout-ms=1500)

start=$(date +%s)
out=$(timeout 120 "${survive[@]}" --prism gcs-snapshot="$dir/job" "$app" 2>&1)
rc=$?
echo "$out"
echo "survive run: rc $rc after $(( $(date +%s) - start )) s"
[ "$rc" -eq 0 ] || { echo "the job did not survive the loss (rc $rc)"; exit 1; }
grep -q "^node-loss: OK" <<<"$out" || { echo "the driver's checks failed"; exit 1; }
grep -q "prism: node rank 3 was lost (silent for 1500 ms" <<<"$out" ||
  { echo "no message naming the lost rank"; exit 1; }
grep -q "went on without node rank(s) 3" <<<"$out" || { echo "no closing line naming it"; exit 1; }
nodes=$("$dump" -t nodes "$dir"/job.rank*.h5)
echo "$nodes"
grep -qE "^  rank 3 +dead " <<<"$nodes" || { echo "the GCS does not record the death"; exit 1; }
[ "$(grep -cE "^  rank [0-2] +alive " <<<"$nodes")" -eq 3 ] || { echo "not 3 live ranks"; exit 1; }
actors=$("$dump" -t actors "$dir"/job.rank*.h5)
echo "$actors"
# (At the snapshot, taken as the job ends, every actor has ended with it.)
grep -qE "class_name Tally  node [0-2]  state (alive|dead)  restarts 1" <<<"$actors" ||
  { echo "the GCS does not show the restarted actor on another rank with 1 restart"; exit 1; }
grep -qE "class_name Tally  node 3  state dead  restarts 0" <<<"$actors" ||
  { echo "the GCS does not show the actor without restarts dead"; exit 1; }

# A survive run of the driver in one of its other modes: it must exit 0 and
# print "node-loss <mode>: OK".
survive_mode() {  # mode, what failed
  out=$(timeout 60 "${survive[@]}" "$app" "--$1" 2>&1)
  rc=$?
  echo "$out" | grep -v "PMIX ERROR" | tail -n 5
  echo "survive run, $1: rc $rc"
  [ "$rc" -eq 0 ] && grep -q "^node-loss $1: OK" <<<"$out" || { echo "$2 (rc $rc)"; exit 1; }
}
# 1b. An actor group through the loss of a member's rank.
survive_mode groups "an actor group did not get through the loss of a member's rank"
# 1c. An actor owned by the lost rank, living on another, dies with its owner.
survive_mode orphans "an actor whose owner was lost did not end with it"
grep -q "rank 1: ended 1 actor(s), dropped 1 object(s)" <<<"$out" ||
  { echo "node rank 1 did not end the lost rank's actor and drop its object"; exit 1; }

out=$(timeout 120 "${survive[@]}" "$app" --fail-after-loss 2>&1)
rc=$?
echo "$out" | grep -v "PMIX ERROR" | tail -n 5
echo "survive run, failing driver: rc $rc"
[ "$rc" -eq 1 ] || { echo "the driver's failure did not reach the exit code (rc $rc)"; exit 1; }
grep -q "the driver failed: failing after the loss, as asked" <<<"$out" || { echo "no driver error"; exit 1; }

start=$(date +%s)
out=$(timeout 120 "$mpiexec" "${common[@]}" "$app" 2>&1)
rc=$?
took=$(( $(date +%s) - start ))
echo "$out" | tail -n 20
echo "plain run: rc $rc after $took s"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "a plain mpirun should end the job non-zero, not hang (rc $rc)"; exit 1; }
echo "node loss ok"
