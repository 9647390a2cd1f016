#!/usr/bin/env bash
# Configures and builds Prism into ${PRISM_BUILD_DIR:-build} (Release-like).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${PRISM_BUILD_DIR:-build}
JOBS=${PRISM_JOBS:-$(nproc)}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE="${PRISM_BUILD_TYPE:-RelWithDebInfo}" "$@"
cmake --build "$BUILD" -j "$JOBS"
