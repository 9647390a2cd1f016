#!/usr/bin/env bash
# Builds Prism with AddressSanitizer + UndefinedBehaviorSanitizer (and
# LeakSanitizer, part of ASan: in-process tests only) in build-asan/ and runs
# the in-process unit tests and a few multi-rank tests under it.
# docs/hardening.md.
#
#   scripts/sanitize.sh                  unit tests + the default multi-rank tests
#   scripts/sanitize.sh 'mpi_actors'     unit tests + the ctests matching a regex
#
# Not part of CI (.ci/run): on 2 cores the instrumented build alone takes
# tens of minutes. Environment: PRISM_ASAN_BUILD_DIR (default build-asan),
# PRISM_SANITIZE_JOBS (build parallelism, default 2).
# Exit status: 0 no report, else the failing ctest's (reports are in
# build-asan/Testing/Temporary/LastTest.log and on the output).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PRISM_ASAN_BUILD_DIR:-$ROOT/build-asan}
JOBS=${PRISM_SANITIZE_JOBS:-2}
MPI_TESTS=${1:-'^(mpi_tasks_4|mpi_actors|mpi_gcs_1)$'}

# -O1: ASan's own recommendation (fast enough for the multi-rank tests'
# timeouts). Every UBSan report aborts the test, as an ASan report does.
mkdir -p "$BUILD"
FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=None \
  -DPRISM_WITH_CUDA=OFF -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" > "$BUILD/configure.log"
# Only what the chosen tests run (the tests name apps and benchmarks, so all
# are configured; none is built here).
cmake --build "$BUILD" -j "$JOBS" --target prism_unit_tests gcs_unit_tests prism_mpi_tests \
  prism_mpi_gcs_tests

# Open MPI, PMIx, UCX and hwloc keep allocations for the process's life:
# LeakSanitizer reports them at exit (tests/sanitizers/lsan.supp). Most of
# them come from MCA plugins that Open MPI has dlclose()d by then, so their
# stacks name no module and no suppression can match: the multi-rank tests
# run with leak detection off (ASan and UBSan stay on); the in-process
# tests, with it on. UCX's malloc hooks would replace ASan's.
LEAKS="detect_leaks=1:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
NO_LEAKS="detect_leaks=0:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_EVENTS=no
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$BUILD"
rc=0
# The in-process suites, whole; then the multi-rank tests through ctest
# (timeouts scaled up: instrumented code runs 2-3x slower).
ASAN_OPTIONS=$LEAKS ./tests/unit/prism_unit_tests || rc=$?
ASAN_OPTIONS=$LEAKS ./tests/unit/gcs/gcs_unit_tests || rc=$?
ASAN_OPTIONS=$NO_LEAKS ctest --output-on-failure --timeout 600 -R "$MPI_TESTS" || rc=$?
if ((rc == 0)); then echo "PASS: no sanitizer report"; else echo "FAIL: see the reports above"; fi
exit "$rc"
