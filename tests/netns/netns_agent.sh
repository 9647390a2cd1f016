#!/usr/bin/env bash
# netns_agent.sh - Open MPI's launch agent for the fake hosts of
# netns_cluster.sh (`--mca plm_rsh_agent netns_agent.sh`). mpirun calls it as
# it would call ssh, `netns_agent.sh HOST COMMAND...`, to start an orted on
# HOST; here HOST is the address of a fake host and the command runs in its
# network namespace, with what a separate machine would not share either:
#   - its own hostname (UTS namespace): h1, h2, ...
#   - its own /dev/shm (a private tmpfs in a private mount namespace), so no
#     POSIX shared-memory segment can be opened across hosts
#   - its own SysV IPC namespace, so no sysv segment can either
#   - a clean environment, as after an ssh login: what the ranks need must
#     come with mpirun -x (PATH and HOME are kept)
# Like ssh, the command words are joined with spaces and run by a shell.
set -euo pipefail

PREFIX=${PRISM_NETNS_PREFIX:-prism-ns}
SUBNET=${PRISM_NETNS_SUBNET:-10.231.0}

# ssh-style options before the host (Open MPI passes none to an agent that is
# not called ssh or rsh, but tolerate them).
while [ $# -gt 0 ] && [[ $1 == -* ]]; do shift; done
[ $# -ge 2 ] || { echo "netns_agent.sh: usage: HOST COMMAND..." >&2; exit 255; }
host=$1
shift
case $host in
  "$SUBNET".*) index=$((${host##*.} - 10)) ;;
  *) echo "netns_agent.sh: '$host' is not a fake host on $SUBNET.0/24" >&2; exit 255 ;;
esac
ns=${PREFIX}${index}
ip netns list | grep -qE "^${ns}( |$)" ||
  { echo "netns_agent.sh: no namespace $ns for host $host" >&2; exit 255; }

# The inner shell runs as root in fresh UTS, mount and IPC namespaces;
# --propagation private (unshare's default) keeps the tmpfs out of the host's
# mount table. Its script is single-quoted on purpose (SC2016): $0 is the
# hostname, $1 the command line, $2 and $3 the PATH and HOME it keeps.
exec ip netns exec "$ns" unshare --uts --mount --ipc --propagation private \
  sh -c 'mount -t tmpfs -o mode=1777,size=50% prism-shm /dev/shm && hostname "$0" &&
         exec env -i PATH="$2" HOME="$3" sh -c "$1"' \
  "h${index}" "$*" "${PATH:-/usr/bin:/bin}" "${HOME:-/root}"
