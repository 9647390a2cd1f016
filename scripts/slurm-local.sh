#!/usr/bin/env bash
# slurm-local.sh - a throw-away Slurm cluster on ONE Debian 12 host, for CI.
#
# Origin: the team's tested recipe, shared/notes/slurm-local.sh (notes in
# shared/notes/hpc-deps.md, checked on Debian 12 with Slurm 22.05.8, PMIx 4.2.2,
# Open MPI 4.1.4 on 2026-11-25). Copied here so that the repository does not
# depend on ../shared at CI time. Changes in this copy:
#   * SLURM_LOCAL_LINK_ETC=0 leaves /etc/slurm/slurm.conf alone (tests that run
#     a private cluster must not repoint the host's client configuration);
#   * SLURM_LOCAL_GPUS=N advertises N fake GPUs per node (gres/gpu backed by
#     dummy device files) so that GPU sbatch scripts can be tried on a host
#     without GPUs;
#   * shellcheck-clean.
#
# Runs as root, needs no systemd: munged, slurmctld and one slurmd per node are
# started by hand, detached, with log files. Idempotent: `start` twice is a
# no-op; a changed configuration is applied with a restart of the daemons this
# script started. `stop` kills only the daemons this script started, by PID.
#
# Usage: slurm-local.sh start|stop|restart|status|env
#
# Environment (all optional):
#   SLURM_LOCAL_NODES=1      number of nodes. 1: one node named `hostname -s`.
#                            N>1: fake nodes n1..nN, all on 127.0.0.1, one
#                            slurmd each (slurmd -N nX) on its own Port.
#   SLURM_LOCAL_CPUS=<real>  CPUs advertised per node (may exceed the real
#                            count: SlurmdParameters=config_overrides).
#   SLURM_LOCAL_MEM=<real/N> RealMemory (MB) advertised per node.
#   SLURM_LOCAL_DIR=/var/tmp/slurm-local   state, logs, pid files, slurm.conf
#   SLURM_LOCAL_CTLD_PORT=6817  SLURM_LOCAL_SLURMD_PORT=6818 (node i: +i-1)
#   SLURM_LOCAL_INSTALL=1    0 = never run apt-get (fail if Slurm is missing)
#   SLURM_LOCAL_TIMEOUT=60   seconds to wait for every node to become idle
#   SLURM_LOCAL_LINK_ETC=1   0 = never create /etc/slurm/slurm.conf; clients
#                            then need SLURM_CONF (see `env` below)
#   SLURM_LOCAL_GPUS=0       fake GPUs advertised per node (gres/gpu on dummy
#                            device files: jobs get SLURM_GPUS_ON_NODE and
#                            CUDA_VISIBLE_DEVICES, but no real device)
#
# Client commands find the configuration through /etc/slurm/slurm.conf, which
# is made a symlink to $SLURM_LOCAL_DIR/slurm.conf when that path is free (or
# already ours); otherwise `eval "$(slurm-local.sh env)"` exports SLURM_CONF.
#
# Typical CI use (see hpc-deps.md next to this file for the pitfalls):
#   bash slurm-local.sh start                     # ~1 s once packages are there
#   jid=$(sbatch --parsable -n 4 --overcommit job.sh)   # 4 tasks on 2 CPUs: -O
#   # poll: sbatch --wait works (returns the job's exit code) but sleeps 2/8/32 s
#   while [[ $(scontrol show job $jid -o | grep -oP 'JobState=\K\S+') =~ \
#            ^(PENDING|CONFIGURING|RUNNING|COMPLETING)$ ]]; do sleep 0.25; done
#   bash slurm-local.sh stop
# With SLURM_LOCAL_NODES>1 launch MPI ranks with `srun --mpi=pmix` (mpirun
# inside a multi-fake-node allocation needs `--mca btl self,tcp`).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

MODE=${1:-start}
NODES=${SLURM_LOCAL_NODES:-1}
DIR=${SLURM_LOCAL_DIR:-/var/tmp/slurm-local}
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-6818}
INSTALL=${SLURM_LOCAL_INSTALL:-1}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
LINK_ETC=${SLURM_LOCAL_LINK_ETC:-1}
GPUS=${SLURM_LOCAL_GPUS:-0}
CONF=$DIR/slurm.conf
RUN=$DIR/run            # pid files of the daemons
LOG=$DIR/log
STARTED=$RUN/started    # "name pid" of every daemon this script started
ETC_CONF=/etc/slurm/slurm.conf
MUNGE_SOCKET=/run/munge/munge.socket.2
export SLURM_CONF=$CONF

say() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[[ $NODES =~ ^[1-9][0-9]*$ ]] || die "SLURM_LOCAL_NODES must be a positive integer"
[[ $GPUS =~ ^[0-9]+$ ]] || die "SLURM_LOCAL_GPUS must be a non-negative integer"

# ---------------------------------------------------------------- helpers ---
pid_alive() {  # pid expected-comm
  local pid=$1 comm=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}
pidfile_pid() { if [ -s "$1" ]; then tr -dc '0-9' <"$1" || true; fi; }
node_names() {
  if [ "$NODES" -le 1 ]; then hostname -s; else seq -f 'n%g' 1 "$NODES"; fi
}
record_started() {  # name pid; replaces an older (dead) entry of that name
  if [ -f "$STARTED" ]; then grep -v "^$1 " "$STARTED" >"$STARTED.tmp" || true; mv "$STARTED.tmp" "$STARTED"; fi
  echo "$1 $2" >>"$STARTED"
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
     command -v munged >/dev/null && command -v sinfo >/dev/null; then
    return 0
  fi
  [ "$INSTALL" = 1 ] || die "slurm-wlm/munge not installed and SLURM_LOCAL_INSTALL=0"
  say "installing slurm-wlm munge (apt)"
  local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  # policy-rc.d (exit 101) keeps the packages' init scripts from starting
  # anything; without it they try and fail harmlessly (no systemd here).
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install slurm-wlm munge >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install slurm-wlm munge >/dev/null; } ||
    die "apt-get install slurm-wlm munge failed"
}

write_config() {
  mkdir -p "$DIR" "$RUN" "$LOG" "$DIR/state"
  local real cpus mem host nodes_line="" i=0 name
  real=$(slurmd -C | head -1)   # NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105
  if [ -n "${SLURM_LOCAL_CPUS:-}" ]; then
    cpus="CPUs=$SLURM_LOCAL_CPUS"
  else                          # the real topology: no "differs from hardware" note
    cpus=$(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$real" ||
           echo "CPUs=$(nproc)")
  fi
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$real")
  mem=${SLURM_LOCAL_MEM:-$(( ${mem:-2048} / NODES ))}
  host=$(hostname -s)
  local gres="" gres_types=""
  if [ "$GPUS" -gt 0 ]; then
    gres=" Gres=gpu:$GPUS"
    gres_types="GresTypes=gpu"
  fi
  for name in $(node_names); do
    nodes_line+="NodeName=$name NodeHostname=$host NodeAddr=127.0.0.1 Port=$((SLURMD_PORT + i)) $cpus RealMemory=$mem$gres State=UNKNOWN"$'\n'
    i=$((i + 1))
  done
  local mpi=none prolog_line=""
  [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ] && mpi=pmix
  if [ "$NODES" -gt 1 ]; then
    prolog_line="# fake nodes share one host: give Open MPI's shared-memory BTL (vader) a
# per-node directory, else ranks with the same local rank on two fake nodes
# open the same /dev/shm/vader_segment.<host>.<job>.<localrank> and segfault
TaskProlog=$DIR/task-prolog.sh"
  fi
  cat >"$CONF.new" <<EOF
# generated by slurm-local.sh - single-host test cluster, everything as root
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool-%n
# per-node TmpFS: mpi/pmix puts its client dir (spmix_appdir_<uid>_<job>.<step>)
# there; with one shared /tmp two fake nodes collide ("File exists")
TmpFS=$DIR/tmp-%n
MailProg=/bin/true
$prolog_line
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in this container: track job processes by /proc walk, no binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct does not work; finished jobs go to a text file instead
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
SchedulerType=sched/backfill
$gres_types
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=$mpi
# trust the CPUs/RealMemory below even where they differ from the hardware
SlurmdParameters=config_overrides
ReturnToService=2
# keep finished jobs visible to 'scontrol show job' for 10 minutes
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
$nodes_line
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DIR/task-prolog.sh" <<'PROLOG'
#!/bin/sh
# Slurm TaskProlog: runs before each task on its node; "export X=Y" lines on
# stdout go into the task's environment.
d=/dev/shm/slurm-local-${SLURMD_NODENAME:-node}
mkdir -p "$d" 2>/dev/null
echo "export OMPI_MCA_btl_vader_backing_directory=$d"
PROLOG
  chmod 0755 "$DIR/task-prolog.sh"
  # gres.conf sits next to slurm.conf. gres/gpu ignores a bare Count= (slurmd
  # then reports 0 GPUs and the node goes INVAL), so each fake GPU gets a
  # device file: a character device with /dev/null's numbers (nothing can use
  # it as a GPU), or a plain file where mknod is not allowed (slurmd logs "not
  # a valid character or block device" but still counts it). All fake nodes
  # share the files: without cgroups nothing is enforced.
  if [ "$GPUS" -gt 0 ]; then
    local g
    mkdir -p "$DIR/fake-gpu"
    for ((g = 0; g < GPUS; g++)); do
      [ -e "$DIR/fake-gpu/gpu$g" ] || mknod "$DIR/fake-gpu/gpu$g" c 1 3 2>/dev/null ||
        touch "$DIR/fake-gpu/gpu$g"
    done
    printf '# generated by slurm-local.sh: %s fake GPU(s) per node\nName=gpu File=%s\n' \
      "$GPUS" "$DIR/fake-gpu/gpu[0-$((GPUS - 1))]" >"$DIR/gres.conf"
  else
    rm -f "$DIR/gres.conf"
  fi
  if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
    rm -f "$CONF.new"; return 1        # unchanged
  fi
  mv "$CONF.new" "$CONF"; return 0     # new or changed
}

link_etc_conf() {
  if [ "$LINK_ETC" = 0 ]; then return 0; fi
  mkdir -p /etc/slurm
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$CONF" ]; then return 0; fi
  if [ ! -e "$ETC_CONF" ] && [ ! -L "$ETC_CONF" ]; then
    ln -s "$CONF" "$ETC_CONF"; return 0
  fi
  say "NOTE: $ETC_CONF exists and is not ours; clients need: export SLURM_CONF=$CONF"
}

munge_ok() { [ -S "$MUNGE_SOCKET" ] && munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munge() {
  if munge_ok; then return 0; fi     # a munged answers (ours or not): use it
  # ours but deaf: munge's prerm does 'rm -rf /run/munge' on every upgrade or
  # reinstall of the package, which leaves munged running without its socket
  local old; old=$(awk '$1=="munged"{print $2}' "$STARTED" 2>/dev/null || true)
  if pid_alive "$old" munged; then
    say "munged (pid $old) lost its socket: restarting it"
    kill -TERM "$old" 2>/dev/null || true
    local w=0; while pid_alive "$old" munged && [ $w -lt 50 ]; do sleep 0.1; w=$((w + 1)); done
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /etc/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key; chmod 0600 /etc/munge/munge.key
  fi
  rm -f /run/munge/munged.pid
  # munged forks itself into the background and writes its pid file
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
    --log-file=/var/log/munge/munged.log </dev/null >>"$LOG/munged.stdout" 2>&1 ||
    die "munged failed to start: see /var/log/munge/munged.log"
  local t=0 pid
  while ! munge_ok; do
    t=$((t + 1)); [ $t -le 50 ] || die "munged not answering (see /var/log/munge/munged.log)"; sleep 0.2
  done
  pid=$(pidfile_pid /run/munge/munged.pid)
  pid_alive "$pid" munged && record_started munged "$pid"
  say "munged started (pid $pid)"
}

start_daemon() {  # name pidfile comm cmd...
  local name=$1 pidfile=$2 comm=$3; shift 3
  local pid
  pid=$(pidfile_pid "$pidfile")
  if pid_alive "$pid" "$comm"; then return 0; fi
  rm -f "$pidfile"
  # the daemons fork themselves into the background and write their pid file;
  # stdio goes to a file so that no CI pipe is held open by them
  "$@" </dev/null >>"$LOG/$name.stdout" 2>&1 || die "$name failed to start: see $LOG/"
  local t=0
  while pid=$(pidfile_pid "$pidfile"); ! pid_alive "$pid" "$comm"; do
    t=$((t + 1)); [ $t -le 50 ] || die "$name did not come up: see $LOG/$name.log $LOG/$name.stdout"; sleep 0.2
  done
  record_started "$name" "$pid"
  say "$name started (pid $pid)"
}

wait_idle() {
  local t=0 states
  while :; do
    states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
    if [ -n "$states" ] && ! grep -qv ' idle$' <<<"$states" &&
       [ "$(wc -l <<<"$states")" -eq "$(node_names | wc -l)" ]; then
      say "cluster up: $(tr '\n' ' ' <<<"$states")"; return 0
    fi
    # a node that registered with a stale DOWN/DRAIN state from an earlier run
    if [ $t -gt 10 ] && grep -qE ' (down|drain|drng|drained)\*?$' <<<"$states"; then
      scontrol update nodename="$(node_names | paste -sd,)" state=resume 2>/dev/null || true
    fi
    t=$((t + 1))
    [ $t -le $((TIMEOUT * 2)) ] || { sinfo -N -l >&2 || true; die "nodes not idle after ${TIMEOUT}s: see $LOG/"; }
    sleep 0.5
  done
}

our_pids_running() {
  [ -s "$STARTED" ] || return 1
  local name pid
  while read -r name pid; do
    pid_alive "$pid" "${name%%-*}" && return 0
  done <"$STARTED"
  return 1
}

kill_started() {  # regex [max-wait-in-0.1s]: stop the recorded daemons matching it
  local pat=$1 max=${2:-100} name pid pids=() t=0 p
  [ -s "$STARTED" ] || return 0
  while read -r name pid; do
    [[ $name =~ $pat ]] || continue
    pid_alive "$pid" "${name%%-*}" || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$name:$pid")
  done <"$STARTED"
  # wait for all of them at once, then SIGKILL what is left
  for p in "${pids[@]}"; do
    while pid_alive "${p#*:}" "${p%%[-:]*}" && [ $t -lt "$max" ]; do sleep 0.1; t=$((t + 1)); done
    if pid_alive "${p#*:}" "${p%%[-:]*}"; then kill -KILL "${p#*:}" 2>/dev/null || true; fi
    say "stopped ${p%%:*} (pid ${p#*:})"
  done
  # forget them
  grep -Ev "^($pat) " "$STARTED" >"$STARTED.tmp" || true
  mv "$STARTED.tmp" "$STARTED"
}

cancel_jobs() {  # end the jobs of this cluster, so no slurmstepd is left behind
  grep -q '^slurmctld ' "$STARTED" 2>/dev/null || return 0
  local jobs t=0
  jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
  [ -n "$jobs" ] || return 0
  # shellcheck disable=SC2086
  timeout 10 scancel $jobs 2>/dev/null || true
  while [ -n "$(timeout 10 squeue -h -t R,CG,PD -o %i 2>/dev/null)" ] && [ $t -lt 30 ]; do
    sleep 0.5; t=$((t + 1))
  done
}

do_stop() {  # $1 = "slurm" keeps munged running
  [ -s "$STARTED" ] || { say "nothing started by this script is recorded"; return 0; }
  cancel_jobs
  # after jobs have run, slurmd sometimes needs ~10 s to exit on SIGTERM;
  # it keeps no state worth saving here, so SIGKILL it after 3 s
  kill_started 'slurmd-.*' 30
  kill_started 'slurmctld'
  [ "${1:-}" = slurm ] || kill_started 'munged'
  rmdir /dev/shm/slurm-local-* 2>/dev/null || true   # TaskProlog's dirs, if empty
  [ -s "$STARTED" ] || rm -f "$STARTED"
}

do_start() {
  install_packages
  local changed=0
  mkdir -p "$DIR" "$RUN" "$LOG"
  if write_config; then changed=1; fi
  link_etc_conf
  if [ $changed = 1 ] && our_pids_running; then
    say "configuration changed: restarting the Slurm daemons started here"
    do_stop slurm
  fi
  start_munge
  local ctld_args=(-i)
  if [ $changed = 1 ]; then ctld_args=(-c); fi   # new node list: drop old state
  start_daemon slurmctld "$RUN/slurmctld.pid" slurmctld slurmctld -f "$CONF" "${ctld_args[@]}"
  local name
  for name in $(node_names); do
    mkdir -p "$DIR/spool-$name" "$DIR/tmp-$name"
    start_daemon "slurmd-$name" "$RUN/slurmd-$name.pid" slurmd slurmd -f "$CONF" -N "$name"
  done
  wait_idle
}

do_status() {
  local name pid
  if [ -s "$STARTED" ]; then
    while read -r name pid; do
      if pid_alive "$pid" "${name%%-*}"; then echo "$name pid $pid running"; else echo "$name pid $pid DEAD"; fi
    done <"$STARTED"
  else
    echo "no daemon started by this script"
  fi
  sinfo -N 2>/dev/null || true
}

case "$MODE" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) die "usage: $0 start|stop|restart|status|env" ;;
esac
