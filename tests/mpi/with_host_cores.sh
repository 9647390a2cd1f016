#!/usr/bin/env bash
# with_host_cores.sh CMD...: runs CMD with PRISM_TEST_HOST_CORES set to the
# physical cores this host lets the job use, as launch/prism-run counts them
# (its --dry-run -v layout line), so a test can check that a default launch
# gives the node ranks every one of them (tests/mpi/layout_test.cpp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
line=$("$here/../../launch/prism-run" --dry-run -v -n 2 /bin/true 2>&1 >/dev/null | tail -n 1)
cores=$(grep -oE '[0-9]+ core\(s\)' <<<"$line" | grep -oE '^[0-9]+')
[[ $cores =~ ^[1-9][0-9]*$ ]] || { echo "could not count the host's cores from: $line" >&2; exit 1; }
export PRISM_TEST_HOST_CORES=$cores
exec "$@"
