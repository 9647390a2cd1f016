#!/usr/bin/env bash
# expect_failure.sh REGEX CMD...: passes when CMD exits non-zero AND its output
# matches REGEX (the job failed, and said why).
set -uo pipefail
regex=$1; shift
out=$("$@" 2>&1); rc=$?
if [ "$rc" -eq 0 ]; then echo "expected a non-zero exit, got 0. Output:"; echo "$out"; exit 1; fi
if ! grep -qE -- "$regex" <<<"$out"; then echo "exit $rc but no line matches '$regex'. Output:"; echo "$out"; exit 1; fi
echo "ok: exit $rc with: $(grep -E -- "$regex" <<<"$out" | head -1)"
