#!/usr/bin/env bash
# run_slurm_tests.sh - end-to-end test of the sbatch templates in slurm/:
# starts a throw-away Slurm cluster on this host (scripts/slurm-local.sh, four
# fake nodes n1..n4), submits the templates on APP (and PLACEMENT), polls the
# jobs, checks them, and always stops the daemons it started.
#
# Usage: run_slurm_tests.sh APP [EXPECTED [PLACEMENT]]
#   APP        the program the template jobs run (ctest passes
#              build/apps/prism-hello)
#   EXPECTED   a line of each of those jobs' output must start with this
#              (default "prism-hello: OK", what prism-hello prints on success)
#   PLACEMENT  build/tests/slurm/prism-slurm-placement (placement.cpp): adds
#              the two placement jobs below; without it they are left out
#
# Jobs (submitted together, polled with `scontrol show job`, not sbatch --wait,
# which sleeps 2, 8, then 32 s between checks):
#   single-node  prism-single-node.sbatch -N1 -n3 -c1: 2 node ranks + 1 GCS
#   multi-node   prism-multi-node.sbatch  -N2: one node rank per node + 1 GCS;
#                each node rank must hold all the job cores of its (fake) host
#   default      prism-single-node.sbatch -N1 -n2, no -c: the one node rank
#                must hold every job core of its node (the GCS rank none)
#   gpu          prism-gpu.sbatch -N2 --gpus-per-node=2 on fake GPUs
#   failure      prism-single-node.sbatch on /bin/false: must end FAILED, so a
#                failing rank is known to fail the job
#   placement-g1 prism-multi-node.sbatch -N 4 on PLACEMENT --prism-summary,
#   placement-g3 with PRISM_GCS_RANKS=1 and 3 (5 and 7 ranks on 4 nodes)
# A job passes when it is COMPLETED with ExitCode=0:0 and its output holds
# EXPECTED (placement jobs: "prism-slurm-placement: OK") and the template's
# layout line. A placement job must also show, from its own output (the run
# summary for each world rank's role, PLACEMENT's lines for the fake node,
# SLURMD_NODENAME, each rank ran on; see check_placement), the layout that
# prism-multi-node.sbatch's header promises: node ranks 0..3 one per fake node,
# rank i on the job's node i (4 distinct nodes, one node rank each), the driver
# on world rank 0 = node 0 on the first node, and GCS rank 4+j on node j, next
# to node rank j (the first G nodes): rank i on node i mod 4 (cyclic).
#
# Environment (all optional):
#   PRISM_SLURM_TEST_TIMEOUT=240  bound on the whole run, in seconds; below
#                                 ctest's TIMEOUT (300) so the cleanup still runs
#   PRISM_SLURM_TEST_PENDING=60   fail a job PENDING this long (it would
#                                 usually pend forever: more tasks than CPUs)
#   PRISM_SLURM_TEST_GPU=1        0 skips the GPU job
#   PRISM_SLURM_TEST_KEEP=0       1 keeps the work directory after a pass
#   SLURM_LOCAL_DIR=/var/tmp/prism-slurm-test, SLURM_LOCAL_CTLD_PORT=17817,
#   SLURM_LOCAL_SLURMD_PORT=17818: a private cluster, so that one started by
#   hand with slurm-local.sh (default dir and ports 6817/6818) is left alone.
#   SLURM_LOCAL_INSTALL=0         1 lets slurm-local.sh apt-get Slurm and munge
#
# Exit status: 0 pass, 1 fail, 124 time bound hit, 77 skipped (not root, or
# Slurm not installed; ctest's SKIP_RETURN_CODE).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SLURM_LOCAL=$ROOT/scripts/slurm-local.sh
TEMPLATES=$ROOT/slurm
LIMIT=${PRISM_SLURM_TEST_TIMEOUT:-240}

say() { printf '[slurm-test] %s\n' "$*"; }
fail_usage() { printf '[slurm-test] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $LIMIT =~ ^[1-9][0-9]*$ ]] || fail_usage "PRISM_SLURM_TEST_TIMEOUT='$LIMIT' must be a positive integer"

# The hard time bound: run this script again under timeout(1). On expiry
# timeout sends TERM to the whole process group (this shell and whatever it
# runs; the Slurm daemons have their own sessions), the TERM trap below stops
# the cluster, and KILL follows 45 s later if even that hangs.
if [ -z "${PRISM_SLURM_TEST_BOUNDED:-}" ]; then
  export PRISM_SLURM_TEST_BOUNDED=1
  exec timeout --kill-after=45 "$LIMIT" bash "${BASH_SOURCE[0]}" "$@"
fi

if [ $# -lt 1 ] || [ $# -gt 3 ]; then fail_usage "usage: $0 APP [EXPECTED [PLACEMENT]]"; fi
APP=$1
EXPECTED=${2:-prism-hello: OK}
PLACE=${3:-}
if [ ! -f "$APP" ] || [ ! -x "$APP" ]; then fail_usage "APP '$APP' is not an executable file"; fi
APP=$(cd "$(dirname "$APP")" && pwd)/$(basename "$APP")
if [ -n "$PLACE" ]; then
  if [ ! -f "$PLACE" ] || [ ! -x "$PLACE" ]; then fail_usage "PLACEMENT '$PLACE' is not an executable file"; fi
  PLACE=$(cd "$(dirname "$PLACE")" && pwd)/$(basename "$PLACE")
fi
[ -x "$SLURM_LOCAL" ] || [ -f "$SLURM_LOCAL" ] || fail_usage "missing $SLURM_LOCAL"
for t in prism-single-node prism-multi-node prism-gpu; do
  [ -f "$TEMPLATES/$t.sbatch" ] || fail_usage "missing $TEMPLATES/$t.sbatch"
done

if [ "$(id -u)" -ne 0 ]; then
  say "SKIP: needs root (it starts munged, slurmctld and slurmd on this host)"
  exit 77
fi
export SLURM_LOCAL_INSTALL=${SLURM_LOCAL_INSTALL:-0}
for cmd in slurmctld slurmd munged sbatch scontrol; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ "$SLURM_LOCAL_INSTALL" != 1 ]; then
    say "SKIP: '$cmd' not installed (apt-get install slurm-wlm munge, or set SLURM_LOCAL_INSTALL=1)"
    exit 77
  fi
done

# A private cluster: own state directory and ports, /etc/slurm left alone.
export SLURM_LOCAL_DIR=${SLURM_LOCAL_DIR:-/var/tmp/prism-slurm-test}
export SLURM_LOCAL_CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-17817}
export SLURM_LOCAL_SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-17818}
# Four fake nodes for every job: the placement jobs need 4 (-N 4), and one
# cluster start and stop is cheaper than a 2-node and a 4-node one.
NNODES=4
export SLURM_LOCAL_NODES=$NNODES
# 4 CPUs per fake node (the host may have 2): the 3-task single-node job fits
# on one node without --overcommit, so nothing pends for want of CPUs.
export SLURM_LOCAL_CPUS=${SLURM_LOCAL_CPUS:-4}
GPU=${PRISM_SLURM_TEST_GPU:-1}
if [ "$GPU" = 1 ]; then export SLURM_LOCAL_GPUS=2; else export SLURM_LOCAL_GPUS=0; fi
export SLURM_LOCAL_LINK_ETC=0
export SLURM_LOCAL_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}

# Run as if outside any job: when this test itself runs inside a Slurm job,
# inherited SLURM_* variables (SLURM_JOB_ID, SLURM_NTASKS, ...) would be read
# by sbatch and srun as options. Keep ours and the client configuration.
while IFS= read -r var; do
  case $var in SLURM_LOCAL_* | SLURM_CONF) ;; *) unset "$var" ;; esac
done < <(compgen -e | grep '^SLURM_' || true)
export SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf

WORK=$(mktemp -d "${TMPDIR:-/tmp}/prism-slurm-test.XXXXXX")
started=0
finished=0

# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  local rc=$?
  trap - EXIT TERM INT HUP
  if [ "$started" = 1 ]; then
    say "stopping the test cluster"
    # slurm-local.sh stop cancels the cluster's jobs and stops only the
    # daemons recorded in $SLURM_LOCAL_DIR (never a munged it did not start)
    timeout 60 bash "$SLURM_LOCAL" stop || say "WARNING: 'slurm-local.sh stop' failed: see $SLURM_LOCAL_DIR/log/"
  fi
  if [ "$finished" = 1 ] && [ "$rc" = 0 ] && [ "${PRISM_SLURM_TEST_KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    say "job outputs kept in $WORK"
  fi
  exit "$rc"
}
# shellcheck disable=SC2317  # reached through the traps below
on_signal() {
  say "FAIL: interrupted by SIG$1 (time bound ${LIMIT}s: PRISM_SLURM_TEST_TIMEOUT)"
  exit 124   # runs cleanup through the EXIT trap
}
trap cleanup EXIT
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP

# ------------------------------------------------------------------ cluster ---
say "starting a $NNODES-node test cluster in $SLURM_LOCAL_DIR (ports $SLURM_LOCAL_CTLD_PORT, $SLURM_LOCAL_SLURMD_PORT+)"
# where each daemon log ends now, to show only this run's lines on failure
declare -A log_start=()
for f in "$SLURM_LOCAL_DIR"/log/slurmctld.log $(seq -f "$SLURM_LOCAL_DIR/log/slurmd-n%g.log" "$NNODES"); do
  log_start[$f]=$(stat -c %s "$f" 2>/dev/null || echo 0)
done
new_log_lines() {  # file: the lines it gained during this run
  local f=$1 from=${log_start[$1]:-0}
  [ -f "$f" ] || return 0
  if [ "$(stat -c %s "$f")" -lt "$from" ]; then from=0; fi   # rotated/truncated
  tail -c +"$((from + 1))" "$f"
}
started=1   # set before: a start that fails half-way may leave daemons behind
t0=$SECONDS
if ! bash "$SLURM_LOCAL" start; then
  say "FAIL: could not start the test cluster; last lines of its logs:"
  for f in "${!log_start[@]}"; do
    echo "--- $f"; new_log_lines "$f" | tail -n 15
  done
  exit 1
fi
say "cluster up in $((SECONDS - t0)) s"

# --------------------------------------------------------------------- jobs ---
names=()               # test names, in submission order
declare -A jid=() want_state=() want_line=() t_sub=() t_end=() state=() exitc=() reason=()
declare -A want_slots=() want_ok=() want_place=() sub_args=() retried=()
# The cores each fake node really has: they share this host's (the advertised
# SLURM_LOCAL_CPUS may be more); prism-run counts them the way the runtime does.
host_cores=$("$ROOT/launch/prism-run" --dry-run -v -n 2 /bin/true 2>&1 >/dev/null |
  grep -oE '[0-9]+ core\(s\)' | grep -oE '^[0-9]+' || true)
[[ $host_cores =~ ^[1-9][0-9]*$ ]] || fail_usage "could not count this host's cores with prism-run"

submit() {  # name want-state header-regex sbatch-args...
  local name=$1 st=$2 line=$3 out id; shift 3
  if ! out=$(timeout 30 sbatch --parsable --chdir="$WORK" -J "$name" -t 5 \
               -o "$WORK/%x-%j.out" "$@" 2>&1); then
    say "FAIL: sbatch for '$name' failed: $out"
    exit 1
  fi
  id=${out%%;*}
  [[ $id =~ ^[0-9]+$ ]] || { say "FAIL: sbatch for '$name' printed '$out', not a job id"; exit 1; }
  [ -n "${jid[$name]:-}" ] || names+=("$name")
  jid[$name]=$id; want_state[$name]=$st; want_line[$name]=$line
  sub_args[$name]=$(printf '%q ' "$st" "$line" "$@")
  want_ok[$name]=${want_ok[$name]:-$EXPECTED}
  t_sub[$name]=$SECONDS
  say "submitted $name as job $id"
}

T=$TEMPLATES
submit single-node COMPLETED '^prism-single-node\.sbatch: job .*: 3 ranks = 2 node rank.*PRISM_NUM_CPUS=1$' \
  -N 1 -n 3 -c 1 "$T/prism-single-node.sbatch" "$APP"
submit multi-node COMPLETED '^prism-multi-node\.sbatch: job .*: 3 ranks = 2 node rank\(s\) .*one per node' \
  -N 2 "$T/prism-multi-node.sbatch" "$APP"
want_slots[multi-node]=$host_cores
if [ "$GPU" = 1 ]; then
  submit gpu COMPLETED '^prism-gpu\.sbatch: job .*: 3 ranks = 2 node rank.*PRISM_NUM_GPUS=2;' \
    -N 2 --gpus-per-node=2 "$T/prism-gpu.sbatch" "$APP"
fi
submit default COMPLETED '^prism-single-node\.sbatch: job .*: 2 ranks = 1 node rank.*PRISM_NUM_CPUS=auto$' \
  -N 1 -n 2 "$T/prism-single-node.sbatch" "$APP"
# 2 CPUs allocated on the node (SLURM_CPUS_ON_NODE), at most the host's cores
want_slots[default]=$((host_cores < 2 ? host_cores : 2))
submit failure FAILED '^prism-single-node\.sbatch: job .*: 2 ranks' \
  -N 1 -n 2 "$T/prism-single-node.sbatch" /bin/false
if [ -n "$PLACE" ]; then
  for g in 1 3; do
    submit "placement-g$g" COMPLETED \
      "^prism-multi-node\\.sbatch: job .*: $((NNODES + g)) ranks = $NNODES node rank\\(s\\) .*one per node.* \\+ $g GCS rank" \
      --export=ALL,PRISM_GCS_RANKS=$g -N "$NNODES" "$T/prism-multi-node.sbatch" "$PLACE" --prism-summary
    want_ok[placement-g$g]="prism-slurm-placement: OK ($NNODES nodes)"
    want_place[placement-g$g]="$NNODES $g"
  done
fi

# ------------------------------------------------------------------ polling ---
PENDING_LIMIT=${PRISM_SLURM_TEST_PENDING:-60}
field() { grep -oP "(^| )$1=\K\S+" <<<"$2" | head -n 1 || true; }
poll_jobs() {  # until every job without an end time has ended
local running=1 name info st
while [ "$running" -gt 0 ]; do
  running=0
  for name in "${names[@]}"; do
    [ -z "${t_end[$name]:-}" ] || continue
    info=$(timeout 20 scontrol show job -o "${jid[$name]}" 2>/dev/null || true)
    st=$(field JobState "$info")
    case ${st:-UNKNOWN} in
      PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED)
        running=$((running + 1))
        if [ "$st" = PENDING ] && [ $((SECONDS - t_sub[$name])) -ge "$PENDING_LIMIT" ]; then
          reason[$name]=$(field Reason "$info")
          say "$name (job ${jid[$name]}) still PENDING after ${PENDING_LIMIT}s (Reason=${reason[$name]}):" \
              "cancelling it. A job that asks a node for more CPUs (tasks x cpus-per-task) or GPUs" \
              "than it has pends forever (docs/running.md, troubleshooting)"
          timeout 10 scancel "${jid[$name]}" || true
          state[$name]=PENDING; exitc[$name]=-; t_end[$name]=$SECONDS
          running=$((running - 1))
        fi ;;
      *)
        state[$name]=${st:-UNKNOWN}; exitc[$name]=$(field ExitCode "$info")
        reason[$name]=$(field Reason "$info"); t_end[$name]=$SECONDS ;;
    esac
  done
  if [ "$running" -gt 0 ]; then sleep 0.25; fi
done
}
poll_jobs

# A job that must complete but lost a rank to SIGSEGV before the runtime
# started is submitted once more, loudly. Open MPI 4.1's ob1/TCP path on these
# fake nodes (all on 127.0.0.1) now and then delivers a peer's first message to
# a rank still inside MPI_Init_thread, whose callback for it is not yet set:
# a call through a null pointer in mca_btl_tcp (core dumps of 1 job in 12:
# MPI_Init_thread -> opal_progress -> libevent -> mca_btl_tcp, a MATCH
# fragment on MPI_COMM_WORLD; docs/running.md, "Troubleshooting"). A crash
# that repeats still fails the test.
crashed_in_startup() {  # output file: srun saw a segfault, with Open MPI's or UCX's banner
  [ -f "$1" ] && grep -q 'Segmentation fault' "$1" &&
    grep -q 'mca_btl_tcp\|Caught signal 11\|Process received signal' "$1"
}
again=0
for name in "${names[@]}"; do
  out=$WORK/$name-${jid[$name]}.out
  if [ "${want_state[$name]}" = COMPLETED ] && [ "${state[$name]}" != COMPLETED ] &&
     [ -z "${retried[$name]:-}" ] && crashed_in_startup "$out"; then
    say "RETRY $name: job ${jid[$name]} lost a rank to SIGSEGV (Open MPI start-up race on fake nodes?); its output:"
    sed 's/^/      | /' "$out" | head -n 40
    retried[$name]=${jid[$name]}
    unset "t_end[$name]"
    # shellcheck disable=SC2086  # the saved, quoted arguments
    eval "submit $name ${sub_args[$name]}"
    again=1
  fi
done
if [ "$again" = 1 ]; then poll_jobs; fi

# ------------------------------------------------------------------- checks ---
# check_placement OUT N G: the placement job's output against the layout of
# prism-multi-node.sbatch with N nodes and G GCS ranks. Prints one line per
# problem, and "layout: ..." (each fake node and the ranks on it) when the
# output has enough to say. Sources, all from the job's own output:
#   the run summary (rank 0's stderr): "prism: run summary (.., N node ranks,
#     G GCS ranks)" and one row per world rank: "  <rank> <driver|node|gcs> ..";
#   PLACEMENT, every process before the runtime starts:
#     "placement: rank=<SLURM_PROCID> host=<SLURMD_NODENAME> nodeid=<SLURM_NODEID>"
#     (under srun --mpi=pmix SLURM_PROCID is the MPI world rank);
#   PLACEMENT's driver, and one task pinned to each node rank, which tie
#     Prism's world rank and node id to those Slurm tasks:
#     "placement-driver: world_rank=W node=N rank=P host=H",
#     "placement-task: node=N world_rank=W rank=P host=H".
check_placement() {
  awk -v N="$2" -v G="$3" '
    function kv(arr,   i, eq) {  # key=value fields of this line into arr
      delete arr
      for (i = 2; i <= NF; i++)
        if ((eq = index($i, "=")) > 0) arr[substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
    /^placement: / {
      kv(f); r = f["rank"]; lines[r]++; host[r] = f["host"]; nid[r] = f["nodeid"]; next
    }
    /^placement-driver: / { kv(f); for (k in f) drv[k] = f[k]; have_drv = 1; next }
    /^placement-task: / {
      kv(f); n = f["node"]; tasks[n]++; tw[n] = f["world_rank"]; tr[n] = f["rank"]
      th[n] = f["host"]; next
    }
    /^prism: run summary \(/ {
      summary = 1
      if (match($0, /[0-9]+ node ranks, [0-9]+ GCS ranks/)) {
        split(substr($0, RSTART, RLENGTH), w, " "); s_nodes = w[1]; s_gcs = w[4]
      }
      next
    }
    summary && /^  [0-9]+ +(driver|node|gcs) / { role[$1] = $2; rows++ }
    function bad(msg) { print msg; nbad++ }
    END {
      R = N + G
      if (!summary) { bad("no run summary (\"prism: run summary\") in the output: --prism-summary ignored?"); exit }
      if (s_nodes != N || s_gcs != G)
        bad("run summary says " s_nodes " node ranks and " s_gcs " GCS ranks (want " N " and " G ")")
      if (rows != R) bad("run summary has " rows + 0 " rank rows (want " R ")")
      for (r = 0; r < R; r++) {
        want = r == 0 ? "driver" : r < N ? "node" : "gcs"
        if (role[r] != want) bad("run summary: rank " r " is \"" role[r] "\" (want " want ")")
        if (lines[r] != 1) { bad(lines[r] + 0 " placement lines for rank " r " (want 1)"); continue }
        if (host[r] !~ /^[A-Za-z0-9_.-]+$/) bad("rank " r ": no fake node name (SLURMD_NODENAME=\"" host[r] "\")")
        # cyclic: rank r on the job node r mod N, so node ranks in node order
        # and GCS rank N+j on node j, next to node rank j
        if (nid[r] != r % N) bad("rank " r " (" want ") on job node " nid[r] " (" host[r] "), want node " r % N " (cyclic)")
      }
      for (r in lines) if (r !~ /^[0-9]+$/ || r + 0 >= R) bad("placement line of an unexpected rank " r)
      # one node rank per fake node: N distinct nodes
      distinct = 0
      for (r = 0; r < N; r++) if (!(host[r] in node_of)) { node_of[host[r]] = r; distinct++ }
      if (distinct != N) bad("the " N " node ranks ran on " distinct " distinct fake nodes (want " N ", one each)")
      for (j = 0; j < G; j++)
        if (host[N + j] != host[j % N])
          bad("GCS rank " N + j " on " host[N + j] ", not next to node rank " j % N " (on " host[j % N] ")")
      for (r = 0; r < R; r++) if (!(host[r] in node_of)) bad("rank " r " on " host[r] ", a node with no node rank")
      if (!have_drv) bad("no placement-driver line")
      else if (drv["world_rank"] != 0 || drv["node"] != 0 || drv["rank"] != 0 || drv["host"] != host[0])
        bad("driver at world rank " drv["world_rank"] ", node " drv["node"] ", Slurm task " drv["rank"] " on " drv["host"] " (want 0, 0, 0 on " host[0] ", the first node)")
      for (n = 0; n < N; n++) {
        if (tasks[n] != 1) { bad(tasks[n] + 0 " placement-task lines for node " n " (want 1)"); continue }
        if (tw[n] != n || tr[n] != n || th[n] != host[n])
          bad("node " n "'"'"'s task ran at world rank " tw[n] ", Slurm task " tr[n] " on " th[n] " (want " n ", " n " on " host[n] ")")
      }
      # the layout, for the log: each fake node and its ranks
      for (r = 0; r < R; r++) if (lines[r] == 1) on[host[r]] = on[host[r]] (on[host[r]] == "" ? "" : "+") (role[r] == "" ? "?" : role[r]) r
      out = ""
      for (r = 0; r < N; r++) if (host[r] in on) { out = out " " host[r] "=" on[host[r]]; delete on[host[r]] }
      for (h in on) out = out " " h "=" on[h]
      print "layout:" out
    }' "$1"
}

rc=0
for name in "${names[@]}"; do
  id=${jid[$name]}
  out=$WORK/$name-$id.out
  problems=()
  [ "${state[$name]}" = "${want_state[$name]}" ] ||
    problems+=("JobState=${state[$name]} (want ${want_state[$name]}; Reason=${reason[$name]:-?})")
  if [ "${state[$name]}" = PENDING ]; then
    :   # never ran: nothing more to check
  elif [ "${want_state[$name]}" = COMPLETED ]; then
    [ "${exitc[$name]}" = 0:0 ] || problems+=("ExitCode=${exitc[$name]} (want 0:0)")
    if [ ! -f "$out" ]; then
      problems+=("no output file $out")
    else
      awk -v p="${want_ok[$name]}" 'index($0, p) == 1 { found = 1 } END { exit !found }' "$out" ||
        problems+=("no line starting with '${want_ok[$name]}' in $out")
    fi
  else
    [ "${exitc[$name]}" != 0:0 ] || problems+=("ExitCode=0:0 (want non-zero: a failing rank must fail the job)")
  fi
  if [ -f "$out" ] && [ -n "${want_slots[$name]:-}" ]; then
    # "node N: K worker slots" from prism-hello, one line per node rank
    got=$(grep -oE '^node [0-9]+: [0-9.]+ worker slots' "$out" | awk '{print $3}' | sort -u | paste -sd' ')
    [ "$got" = "${want_slots[$name]}" ] ||
      problems+=("worker slots per node rank: '$got' (want '${want_slots[$name]}': every job core of the node)")
  fi
  if [ -f "$out" ] && [ -n "${want_place[$name]:-}" ]; then
    # shellcheck disable=SC2086  # "N G"
    while IFS= read -r p; do
      case $p in
        layout:*) say "$name layout:${p#layout:}" ;;
        *) problems+=("$p") ;;
      esac
    done < <(check_placement "$out" ${want_place[$name]})
  fi
  if [ -f "$out" ] && ! grep -Eq "${want_line[$name]}" "$out"; then
    problems+=("the template's layout line (/${want_line[$name]}/) is missing from $out")
  fi
  secs=$(( ${t_end[$name]} - ${t_sub[$name]} ))
  if [ ${#problems[@]} -eq 0 ]; then
    say "PASS $name (job $id: ${state[$name]} ExitCode=${exitc[$name]}, ${secs}s${retried[$name]:+; job ${retried[$name]} before it crashed})"
  else
    rc=1
    say "FAIL $name (job $id, ${secs}s):"
    for p in "${problems[@]}"; do say "    - $p"; done
    if [ -f "$out" ]; then
      say "    last lines of $out:"
      tail -n 30 "$out" | sed 's/^/      | /'
    fi
  fi
done
if [ "$rc" != 0 ]; then
  say "this run's Slurm log lines mentioning errors (logs in $SLURM_LOCAL_DIR/log):"
  for f in "${!log_start[@]}"; do new_log_lines "$f"; done |
    grep -i -E 'error|fatal' |
    grep -v -E 'state file|state save file|spmix_appdir|Unauthorized credential' |
    tail -n 20 | sed 's/^/      | /' || true
fi
finished=1
say "$([ "$rc" = 0 ] && echo PASS || echo FAIL): slurm templates on $(basename "$APP") in $SECONDS s"
exit "$rc"
