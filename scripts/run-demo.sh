#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main app under
# mpirun on this machine: apps/rollouts.cpp, the reinforcement-learning loop
# of the Ray paper (episodes as tasks, a learner actor, prism::wait), which
# prints the return rising over the episodes and its result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
BUILD=${PRISM_BUILD_DIR:-build}
# 1 GCS rank + 2 node ranks; the driver runs on the first node rank.
echo "[prism demo] launch/prism-run -n 3 $BUILD/apps/prism-rollouts"
launch/prism-run -n 3 "$BUILD/apps/prism-rollouts"
echo "[prism demo] the other apps: $BUILD/apps/prism-{hello,actors,realtime,param-server,es}" \
  "(docs/tutorial.md)"
