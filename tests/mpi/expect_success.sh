#!/usr/bin/env bash
# expect_success.sh REGEX CMD...: passes when CMD exits 0 AND its output
# matches REGEX (the job did what its log says).
set -uo pipefail
regex=$1; shift
out=$("$@" 2>&1); rc=$?
if [ "$rc" -ne 0 ]; then echo "exit $rc. Output:"; echo "$out"; exit 1; fi
if ! grep -qE -- "$regex" <<<"$out"; then echo "no line matches '$regex'. Output:"; echo "$out"; exit 1; fi
echo "ok: $(grep -E -- "$regex" <<<"$out" | head -1)"
