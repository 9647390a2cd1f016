#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, run every test,
# then the sanitizer stages (docs/hardening.md): ASan + UBSan + LeakSanitizer
# over the in-process tests and a few multi-rank tests (build-asan/), TSan over
# the in-process tests (build-tsan/).
#
#   scripts/run-tests.sh               everything
#   scripts/run-tests.sh -R mpi_gcs    ctest's arguments: those tests only, no
#                                      sanitizer stage
# PRISM_CI_SANITIZERS=0 skips the sanitizer stages, =1 runs them even with
# ctest arguments. Exit status: 0 when the suite and every stage passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
BUILD=${PRISM_BUILD_DIR:-build}
SANITIZERS=${PRISM_CI_SANITIZERS:-$(($# == 0))}
# Leftover shared-memory segments of killed MPI jobs only waste /dev/shm.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rc=0
(cd "$BUILD" && ctest --output-on-failure --timeout 300 "$@") || rc=$?
((rc == 0)) || echo "run-tests: FAIL: the test suite (ctest), exit $rc"
if [[ $SANITIZERS == 0 ]]; then
  exit "$rc"
fi
# Run after the suite (and even when it failed) so one CI run shows both.
failed=()
bash scripts/sanitize.sh --address || failed+=("ASan+UBSan (scripts/sanitize.sh --address)")
bash scripts/sanitize.sh --thread || failed+=("TSan (scripts/sanitize.sh --thread)")
for f in "${failed[@]}"; do echo "run-tests: FAIL: sanitizer stage $f"; done
((rc == 0 && ${#failed[@]} == 0)) || exit 1
echo "run-tests: PASS: test suite and sanitizer stages"
