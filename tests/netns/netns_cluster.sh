#!/usr/bin/env bash
# netns_cluster.sh - a cluster of fake hosts on one machine: one Linux network
# namespace per host, joined by veth pairs to a bridge on a private subnet, so
# that an MPI job spans "hosts" that share no loopback, no /dev/shm, no SysV
# IPC and no hostname (docs/multi-host-test.md).
#
# Usage:
#   netns_cluster.sh up HOSTS            create the bridge and HOSTS namespaces
#   netns_cluster.sh down                remove everything this script creates
#                                        (also the leftovers of a crashed run)
#   netns_cluster.sh status              list what exists now
#   netns_cluster.sh run HOSTS NP [mpirun options] -- PROGRAM [ARGS]
#                                        up, mpirun NP ranks over the HOSTS
#                                        (rank i on host i mod HOSTS), down
#   netns_cluster.sh mpirun-args HOSTS HOSTFILE
#                                        print the mpirun options `run` adds
#
# `run` holds an exclusive lock for its whole life, because the names and the
# subnet are fixed: two runs at once would tear down each other's hosts. It
# always removes what it created (trap on EXIT, INT, TERM), and bounds itself
# with timeout(1) so that the cleanup runs even when the job hangs.
#
# Host i (1-based) is namespace ${PREFIX}${i} with address ${SUBNET}.$((10+i))
# on its interface "pnet0"; the bridge ${PREFIX}br holds ${SUBNET}.1 in the
# root namespace, where mpirun runs. mpirun starts one orted per host through
# netns_agent.sh (Open MPI's plm_rsh_agent, called like ssh), which enters the
# namespace with a private hostname, /dev/shm and IPC namespace.
#
# Transports: UCX over TCP only (UCX_TLS=tcp,self on pnet0) and Open MPI's
# ob1 over its tcp btl (no vader): nothing is shared between or inside hosts
# but TCP. Override with PRISM_NETNS_UCX_TLS / PRISM_NETNS_MPI_BTL.
#
# Environment (all optional):
#   PRISM_NETNS_PREFIX=prism-ns   names: namespaces prism-ns1.., bridge prism-nsbr
#   PRISM_NETNS_SUBNET=10.231.0   first three octets of the private /24
#   PRISM_NETNS_TIMEOUT=110       bound on `run`, seconds (below ctest's TIMEOUT)
#   PRISM_NETNS_LOCK_WAIT=60      how long `run` waits for another run's lock
#   PRISM_NETNS_UCX_TLS=tcp,self  UCX_TLS for the ranks
#   PRISM_NETNS_MPI_BTL=tcp,self  Open MPI btl list
#   PRISM_NETNS_MPI_PML=ob1       Open MPI pml (ucx: MPI over UCX tcp too)
#   MPIRUN=mpirun                 which mpirun
#
# Exit status: the job's, 124 when the time bound hit, 77 when namespaces
# cannot be made here (not root, no CAP_NET_ADMIN, no `ip`/`unshare`).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
AGENT=$HERE/netns_agent.sh
PREFIX=${PRISM_NETNS_PREFIX:-prism-ns}
SUBNET=${PRISM_NETNS_SUBNET:-10.231.0}
BRIDGE=${PREFIX}br
IFACE=pnet0
LOCK=$([ -d /run/lock ] && echo /run/lock || echo /tmp)/${PREFIX}.lock
MAX_HOSTS=8

say() { printf '[netns] %s\n' "$*" >&2; }
die() { printf '[netns] ERROR: %s\n' "$*" >&2; exit 1; }

# Interface names are limited to 15 characters by the kernel.
[ ${#BRIDGE} -le 15 ] || die "PRISM_NETNS_PREFIX '$PREFIX' is too long (bridge name '$BRIDGE')"
[[ $SUBNET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "PRISM_NETNS_SUBNET '$SUBNET' must be A.B.C"

ns_name() { echo "${PREFIX}$1"; }
host_ip() { echo "${SUBNET}.$((10 + $1))"; }
veth_name() { echo "${PREFIX}v$1"; }

# Can this process make namespaces and links? Exit 77 (skip) when not, so
# that ctest reports the test skipped on machines without the privilege.
check_capable() {
  local cmd
  for cmd in ip unshare mount hostname timeout flock; do
    command -v "$cmd" >/dev/null 2>&1 || { say "SKIP: '$cmd' not found"; exit 77; }
  done
  if [ "$(id -u)" -ne 0 ]; then
    say "SKIP: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces"
    exit 77
  fi
  local probe=${PREFIX}probe$$
  if ! ip netns add "$probe" 2>/dev/null; then
    say "SKIP: 'ip netns add' failed here (no CAP_NET_ADMIN, or no netns support)"
    exit 77
  fi
  ip netns del "$probe" 2>/dev/null || true
}

# Removes every namespace, veth and bridge with our prefix, killing what still
# runs inside the namespaces first (a namespace with live processes would
# outlive `ip netns del`). Idempotent; never fails.
cluster_down() {
  local ns pids link
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+$" || true); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      sleep 0.5
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  # Deleting a namespace deletes its veth end, and with it the peer; these
  # catch host ends left by a run that died between the two `ip link` steps.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
                grep -E "^${PREFIX}(v[0-9]+|br)$" || true); do
    ip link del "$link" 2>/dev/null || true
  done
}

cluster_up() {
  local hosts=$1 i ns veth
  [[ $hosts =~ ^[1-9][0-9]*$ ]] && [ "$hosts" -le $MAX_HOSTS ] ||
    die "HOSTS must be 1..$MAX_HOSTS, got '$hosts'"
  cluster_down
  ip link add "$BRIDGE" type bridge
  ip addr add "${SUBNET}.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for ((i = 1; i <= hosts; i++)); do
    ns=$(ns_name "$i")
    veth=$(veth_name "$i")
    ip netns add "$ns"
    # The namespace end is made inside the namespace, so every host's
    # interface can have the same name (UCX_NET_DEVICES=pnet0 on all of them).
    ip link add "$veth" type veth peer name "$IFACE" netns "$ns"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$ns" addr add "$(host_ip "$i")/24" dev "$IFACE"
    ip -n "$ns" link set "$IFACE" up
    ip -n "$ns" link set lo up
  done
  # Wait until every bridge port forwards (at once without STP, but do not
  # race it); mpirun's orteds connecting back over the bridge are the real
  # connectivity test (the image has no ping).
  for ((i = 1; i <= hosts; i++)); do
    local try
    for try in $(seq 1 50); do
      bridge link show dev "$(veth_name "$i")" 2>/dev/null | grep -q 'state forwarding' && break
      [ "$try" -lt 50 ] || die "bridge port $(veth_name "$i") never reached state forwarding"
      sleep 0.1
    done
  done
  say "up: $hosts hosts on ${SUBNET}.0/24 ($(for ((i = 1; i <= hosts; i++)); do printf '%s=%s ' "$(ns_name "$i")" "$(host_ip "$i")"; done))"
}

cluster_status() {
  ip netns list | grep -E "^${PREFIX}[0-9]+" || echo "(no namespaces)"
  ip -br addr show "$BRIDGE" 2>/dev/null || echo "(no bridge $BRIDGE)"
}

# The mpirun options that place one orted per namespace and keep every byte
# on TCP over the bridge.
mpirun_args() {
  local hosts=$1 hostfile=$2
  local tls=${PRISM_NETNS_UCX_TLS:-tcp,self} btl=${PRISM_NETNS_MPI_BTL:-tcp,self}
  local pml=${PRISM_NETNS_MPI_PML:-ob1}
  local a=(--hostfile "$hostfile" --map-by node --bind-to none --oversubscribe
    --mca plm_rsh_agent "$AGENT"
    # mpirun starts every orted itself, so the agent runs only in the root namespace.
    --mca plm_rsh_no_tree_spawn 1
    --mca oob_tcp_if_include "${SUBNET}.0/24"
    --mca pml "$pml" --mca btl "$btl" --mca btl_tcp_if_include "${SUBNET}.0/24"
    # A rank waiting in a blocking MPI call yields its core between polls, as
    # Open MPI does by itself where it sees a host oversubscribed: it cannot
    # see it here (slots=1 per fake host, yet the hosts share 2 cores). Without
    # it, netns_groups_4 (members spinning in collectives) took 5-77 s and
    # failed 4 runs in 36 (a lazy TCP connect that failed mid-test, a driver
    # silent for 20 s); with it 1.4 s, 39 in 39 passed.
    --mca mpi_yield_when_idle 1
    # Every TCP connection between ranks is made in MPI_Init, not at a pair's
    # first message in the middle of a test.
    --mca mpi_preconnect_mpi 1
    # The ranks start with a clean environment (netns_agent.sh, as ssh
    # would), so what they need goes with -x.
    -x "UCX_TLS=$tls" -x "UCX_NET_DEVICES=$IFACE"
    -x "PRISM_NETNS_HOSTS=$hosts")
  if [ "$pml" = ucx ]; then
    # Debian's Open MPI looks for IB devices only unless told otherwise (shared/notes/hpc-deps.md).
    a+=(--mca pml_ucx_tls any --mca pml_ucx_devices any)
  fi
  if [ "$(id -u)" -eq 0 ]; then a+=(--allow-run-as-root); fi
  local v
  for v in $(env | grep -E '^PRISM_[A-Z0-9_]+=' | cut -d= -f1 | grep -v '^PRISM_NETNS_' || true); do
    a+=(-x "$v")
  done
  printf '%s\n' "${a[@]}"
}

cluster_run() {
  [ $# -ge 4 ] || die "usage: $0 run HOSTS NP [mpirun options] -- PROGRAM [ARGS]"
  local hosts=$1 np=$2
  shift 2
  [[ $np =~ ^[1-9][0-9]*$ ]] || die "NP must be a positive integer, got '$np'"
  local extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do extra+=("$1"); shift; done
  [ $# -ge 2 ] || die "missing '-- PROGRAM'"
  shift
  check_capable

  exec 9>"$LOCK"
  flock -w "${PRISM_NETNS_LOCK_WAIT:-60}" 9 || die "another netns_cluster.sh run holds $LOCK"

  # Global, not local: the EXIT trap runs after this function has returned.
  WORK=$(mktemp -d /tmp/prism-netns.XXXXXX)
  # Whatever happens from here on (failure, Ctrl-C, timeout's TERM), the
  # namespaces, links and the work directory go away.
  trap 'rc=$?; trap - EXIT INT TERM; cluster_down; rm -rf "$WORK"; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  cluster_up "$hosts"
  local i
  for ((i = 1; i <= hosts; i++)); do echo "$(host_ip "$i") slots=1"; done >"$WORK/hostfile"
  local args=()
  mapfile -t args < <(mpirun_args "$hosts" "$WORK/hostfile")
  local limit=${PRISM_NETNS_TIMEOUT:-110}
  say "run: ${MPIRUN:-mpirun} -n $np ${args[*]} ${extra[*]} $*"
  # Not exec: the trap must run after mpirun. timeout sends TERM to mpirun,
  # which takes its orteds and ranks down; cluster_down kills any straggler.
  local rc=0
  timeout --kill-after=10 "$limit" "${MPIRUN:-mpirun}" -n "$np" "${args[@]}" "${extra[@]}" "$@" || rc=$?
  [ $rc -ne 124 ] || say "FAIL: the job ran past ${limit} s (PRISM_NETNS_TIMEOUT)"
  return $rc
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  up)
    [ $# -eq 1 ] || die "usage: $0 up HOSTS"
    check_capable
    exec 9>"$LOCK"
    flock -w "${PRISM_NETNS_LOCK_WAIT:-60}" 9 || die "another netns_cluster.sh run holds $LOCK"
    cluster_up "$1"
    ;;
  down)
    cluster_down
    say "down"
    ;;
  status) cluster_status ;;
  run) cluster_run "$@" ;;
  mpirun-args)
    [ $# -eq 2 ] || die "usage: $0 mpirun-args HOSTS HOSTFILE"
    mpirun_args "$@"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
