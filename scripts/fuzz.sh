#!/usr/bin/env bash
# Builds the libFuzzer target over the wire and object decoders (tests/fuzz:
# clang, ASan, UBSan) and runs it. docs/hardening.md.
#
#   scripts/fuzz.sh [SECONDS]     fuzz for SECONDS (default 300)
#
# Environment:
#   PRISM_FUZZ_BUILD_DIR  build directory (default build-fuzz/fuzz); its
#                         corpus/ grows from run to run, findings/ holds crashes
#   PRISM_FUZZ_OPT        -O1 (default) or -O0: builds in half the time, runs
#                         about 3x fewer inputs a second
#   PRISM_FUZZ_BUDGET     seconds for the build and the run together (ctest
#                         fuzz_decoders): fuzz for what the build leaves
#   CXX                   a clang++ with libFuzzer (default clang++)
# Exit status: 0 nothing found, 1 a finding (or a build error), 77 skipped
# (no clang/libFuzzer here, or the build took the whole budget).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_WANTED=${1:-300}
BUILD=${PRISM_FUZZ_BUILD_DIR:-$ROOT/build-fuzz/fuzz}
OPT=${PRISM_FUZZ_OPT:--O1}
BUDGET=${PRISM_FUZZ_BUDGET:-}
CXX=${CXX:-clang++}
case "$CXX" in *clang*) ;; *) CXX=clang++ ;; esac  # the main build's GCC cannot
start=$(date +%s)

skip() {
  echo "SKIP: $*"
  exit 77
}

command -v "$CXX" > /dev/null || skip "no $CXX (the fuzz target needs clang with libFuzzer)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  > "$probe/probe.cpp"
"$CXX" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2> /dev/null ||
  skip "$CXX cannot link -fsanitize=fuzzer,address,undefined (libclang_rt.fuzzer missing?)"

build() {
  CXX="$CXX" cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -DPRISM_FUZZ_OPT="$OPT" > "$BUILD/build.log" 2>&1 &&
    cmake --build "$BUILD" -j "${PRISM_FUZZ_JOBS:-2}" >> "$BUILD/build.log" 2>&1
}
export -f build
export CXX ROOT BUILD OPT
mkdir -p "$BUILD"
rc=0
if [[ -n "$BUDGET" ]]; then
  # Leave at least 10 s of the budget to run the target. (timeout signals
  # the whole build, compilers included.)
  limit=$((BUDGET - 10))
  timeout -k 5 "$limit" bash -c build || rc=$?
  if ((rc == 124 || rc == 137)); then
    skip "building the fuzz target took over $limit s of the $BUDGET s budget (a slow machine)"
  fi
else
  build || rc=$?
fi
if ((rc != 0)); then
  tail -40 "$BUILD/build.log"
  echo "FAIL: the fuzz target does not build (log: $BUILD/build.log)"
  exit 1
fi
built=$(($(date +%s) - start))

run_for=$SECONDS_WANTED
if [[ -n "$BUDGET" ]]; then run_for=$((BUDGET - built - 5)); fi
((run_for >= 1)) || run_for=1

FUZZ="$BUILD/prism_decoders_fuzz"
rm -rf "$BUILD/seeds"
mkdir -p "$BUILD/seeds" "$BUILD/corpus" "$BUILD/findings"
PRISM_FUZZ_WRITE_SEEDS="$BUILD/seeds" "$FUZZ" 2> /dev/null
# Limits: inputs up to 4 KiB, so no decoder has a reason to allocate 64 MiB
# at once (CheckedBinaryIArchive allows 16 MiB for elements that encode to
# nothing); one input taking 30 s is a hang, not a slow machine.
echo "fuzz: built in ${built} s, running ${run_for} s ($OPT)"
rc=0
"$FUZZ" -max_total_time="$run_for" -max_len=4096 -malloc_limit_mb=64 -rss_limit_mb=2048 \
  -timeout=30 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$BUILD/findings/" "$BUILD/corpus" "$BUILD/seeds" > "$BUILD/last-run.log" 2>&1 ||
  rc=$?
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$BUILD/last-run.log" ||
  true
if ((rc != 0)); then
  grep -E -A30 'ERROR|FINDING|runtime error|out-of-memory' "$BUILD/last-run.log" | head -60 || true
  echo "FAIL: a finding; the input is under $BUILD/findings/ (replay: $FUZZ <file>)"
  exit 1
fi
echo "PASS: no finding in ${run_for} s"
