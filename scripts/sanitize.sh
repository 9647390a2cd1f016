#!/usr/bin/env bash
# Sanitizer builds of Prism, each in its own build directory (the flags differ
# from the normal build's, so build/ is never reused). docs/hardening.md.
#
#   scripts/sanitize.sh                     ASan + UBSan + LeakSanitizer (build-asan/):
#                                           the in-process unit tests, then the
#                                           default multi-rank tests (23, below)
#   scripts/sanitize.sh 'mpi_actors'        the same, with the ctests matching a regex
#   scripts/sanitize.sh --thread            ThreadSanitizer (build-tsan/): the
#                                           in-process unit tests only
#
# Both run in CI after the normal suite (scripts/run-tests.sh, skipped with
# PRISM_CI_SANITIZERS=0). Environment: PRISM_ASAN_BUILD_DIR (default
# build-asan), PRISM_TSAN_BUILD_DIR (default build-tsan), PRISM_SANITIZE_JOBS
# (build parallelism, default 2).
# Exit status: 0 no report; 1 a build failed or a sanitizer reported (the
# report is on the output; for the multi-rank tests also in
# build-asan/Testing/Temporary/LastTest.log). Each stage prints a line
# "sanitize: <stage>: PASS|FAIL (<seconds> s)".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${PRISM_SANITIZE_JOBS:-2}
MODE=address
if [[ ${1:-} == --thread ]]; then MODE=thread; shift; fi
if [[ ${1:-} == --address ]]; then shift; fi
# The default: every multi-rank ctest that runs prism_mpi_tests,
# prism_mpi_gcs_tests or prism_group_tests (the binaries built here) but mpi_tasks_8, whose
# 8 ranks on 2 oversubscribed cores miss a timing check under ASan (the same
# tests run on 4 ranks in mpi_tasks_4), and the netns ones (fake hosts).
DEFAULT_MPI='^mpi_(tasks_4|nested_one_cpu|spill|gpu_slots|resources_held|actors|actor_restarts'
DEFAULT_MPI+='|actor_resources|two_gcs_ranks|tasks_ucx_tcp|default_launch_uses_every_core_n[23]'
DEFAULT_MPI+='|prism_run_uses_every_core|global_scheduler_places_spilled_tasks|work_stealing'
DEFAULT_MPI+='|gcs_1|gcs_chain3|gcs_2shards|gcs_failover_(head|tail|fast)|groups|group_meet_both_ways)$'
MPI_TESTS=${1:-$DEFAULT_MPI}
if [[ $MODE == thread ]]; then
  NAME=tsan; BUILD=${PRISM_TSAN_BUILD_DIR:-$ROOT/build-tsan}; SAN=thread
  TARGETS=(prism_unit_tests gcs_unit_tests)
else
  NAME=asan; BUILD=${PRISM_ASAN_BUILD_DIR:-$ROOT/build-asan}; SAN=address,undefined
  TARGETS=(prism_unit_tests gcs_unit_tests prism_mpi_tests prism_mpi_gcs_tests prism_group_tests)
fi

rc=0
# stage NAME CMD...: runs one stage, prints its verdict and time; a failure
# is remembered (rc) and the next stages still run.
stage() {
  local name=$1 start=$SECONDS r=0
  shift
  echo "sanitize: $name: start"
  "$@" || r=$?
  if ((r == 0)); then
    echo "sanitize: $name: PASS ($((SECONDS - start)) s)"
  else
    echo "sanitize: $name: FAIL, exit $r ($((SECONDS - start)) s)"
    rc=1
  fi
  return 0
}

# -O1: ASan's and TSan's own recommendation (fast enough for the multi-rank
# tests' timeouts) and cheaper to compile than -O2; -g1: line tables only, all
# that a report's stack needs, and a faster build than -g. CUDA off: no
# sanitizer runs GPU code. Every UBSan report aborts the test, as an ASan
# report does.
FLAGS="-O1 -g1 -fno-omit-frame-pointer -fsanitize=$SAN"
[[ $MODE == address ]] && FLAGS+=" -fno-sanitize-recover=undefined"
build() {
  mkdir -p "$BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=None \
    -DPRISM_WITH_CUDA=OFF -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$SAN" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=$SAN" > "$BUILD/configure.log" ||
    { cat "$BUILD/configure.log"; return 1; }
  # Only what the chosen tests run (the tests name apps and benchmarks, so
  # all are configured; none is built here).
  cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"
}
stage "$NAME build" build
if ((rc != 0)); then
  echo "sanitize: $NAME: FAIL (the build failed, no test ran)"
  exit 1
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# UCX's memory hooks (libucm) replace malloc and madvise behind the
# sanitizer's back: ASan's allocator must stay in charge, and under TSan a
# thread's exit (glibc madvises its stack) enters libucm's rwlock after TSan
# has torn the thread down, a crash in TSan's runtime.
export UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_EVENTS=no
cd "$BUILD"

if [[ $MODE == thread ]]; then
  # halt_on_error=0: every race of a run is printed, and the process exits 66
  # at the end if there was one. tests/sanitizers/tsan.supp suppresses
  # third-party code only (Open MPI, UCX, hwloc, HDF5).
  export TSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/tsan.supp:halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  # TSan maps its shadow memory at fixed addresses; with much address space
  # randomisation (vm.mmap_rnd_bits > 28) GCC 12's runtime fails with
  # "unexpected memory mapping". Running without ASLR avoids that.
  RUN=()
  if setarch "$(uname -m)" -R true 2>/dev/null; then RUN=(setarch "$(uname -m)" -R); fi
  # ShortTasksQueueLocallyLongOnesSpill asserts that a tiny task's mean run
  # time is under ~4 us, a timing TSan's 5-15x slowdown breaks (no race).
  stage "tsan prism_unit_tests" "${RUN[@]}" ./tests/unit/prism_unit_tests \
    --gtest_filter=-LoopbackCluster.ShortTasksQueueLocallyLongOnesSpill
  stage "tsan gcs_unit_tests" "${RUN[@]}" ./tests/unit/gcs/gcs_unit_tests
else
  # Open MPI, PMIx, UCX and hwloc keep allocations for the process's life:
  # LeakSanitizer reports them at exit (tests/sanitizers/lsan.supp). Most of
  # them come from MCA plugins that Open MPI has dlclose()d by then, so their
  # stacks name no module and no suppression can match: the multi-rank tests
  # run with leak detection off (ASan and UBSan stay on); the in-process
  # tests, with it on.
  LEAKS="detect_leaks=1:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  NO_LEAKS="detect_leaks=0:detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # The in-process suites, whole; then the multi-rank tests through ctest
  # (timeouts scaled up: instrumented code runs 2-3x slower).
  stage "asan prism_unit_tests" env ASAN_OPTIONS="$LEAKS" ./tests/unit/prism_unit_tests
  stage "asan gcs_unit_tests" env ASAN_OPTIONS="$LEAKS" ./tests/unit/gcs/gcs_unit_tests
  echo "sanitize: the multi-rank ctests: $MPI_TESTS"
  stage "asan multi-rank ctests" env ASAN_OPTIONS="$NO_LEAKS" \
    ctest --output-on-failure --timeout 600 -R "$MPI_TESTS"
fi
if ((rc == 0)); then
  echo "sanitize: $NAME: PASS, no sanitizer report"
else
  echo "sanitize: $NAME: FAIL, see the stages marked FAIL above"
fi
exit "$rc"
