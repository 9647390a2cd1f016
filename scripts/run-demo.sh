#!/usr/bin/env bash
# README command 1: install what is missing, build, run the main app under
# mpirun on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
BUILD=${PRISM_BUILD_DIR:-build}
echo "[prism demo] launch/prism-run -n 4 $BUILD/apps/prism-hello"
launch/prism-run -n 4 "$BUILD/apps/prism-hello"
if [ -x "$BUILD/apps/prism-rollouts" ]; then
  echo "[prism demo] launch/prism-run -n 4 $BUILD/apps/prism-rollouts"
  launch/prism-run -n 4 "$BUILD/apps/prism-rollouts"
fi
