#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
BUILD=${PRISM_BUILD_DIR:-build}
# Leftover shared-memory segments of killed MPI jobs only waste /dev/shm.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$BUILD"
ctest --output-on-failure --timeout 300 "$@"
