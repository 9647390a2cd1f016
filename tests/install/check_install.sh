#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/install/consumer
# against it with find_package(Prism), and runs it under mpirun.
set -euo pipefail
build_dir=$1; src_dir=$2
prefix=$(mktemp -d /tmp/prism-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix/usr" >/dev/null
test -f "$prefix/usr/include/prism/prism.hpp"
# prism/mpi.hpp is the one exception: the opt-in MPI interop header
# (docs/mpi-interop.md), never included by prism.hpp; its users link MPI.
test -f "$prefix/usr/include/prism/mpi.hpp"
! grep -q 'mpi.hpp' "$prefix/usr/include/prism/prism.hpp" ||
  { echo "prism.hpp pulls in the MPI interop header"; exit 1; }
! grep -rlE '#include <(mpi|ucp/|hdf5|H5Cpp|hwloc)' --exclude=mpi.hpp "$prefix/usr/include/prism" ||
  { echo "a public header includes MPI/UCX/HDF5/hwloc"; exit 1; }
cmake -S "$src_dir/consumer" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix/usr" >/dev/null
cmake --build "$prefix/consumer" -j 2 >/dev/null
out=$(mpirun -n 3 --oversubscribe "$prefix/consumer/consumer" 2>&1)
echo "$out"
grep -q "consumer: OK" <<<"$out"
