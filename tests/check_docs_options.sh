#!/usr/bin/env bash
# Every option the runtime knows (app --prism-help) is documented in
# docs/configuration.md.
set -euo pipefail
mpiexec=$1; app=$2; doc=$3
missing=0
for opt in $("$mpiexec" -n 2 --oversubscribe "$app" --prism-help | grep -oE -- '--prism-[a-z0-9-]+'); do
  grep -qF -- "\`$opt\`" "$doc" || { echo "undocumented option: $opt"; missing=1; }
done
[ "$missing" = 0 ] && echo "all options documented in $doc"
exit "$missing"
