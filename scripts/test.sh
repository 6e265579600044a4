#!/usr/bin/env bash
# `npm test`: Redis available → typecheck → build (the packed-package test needs dist/) → vitest,
# closing with one plain summary line ("N passed, N failed") that any CI can read.
# Extra arguments go to vitest: `npm test -- test/core` runs only those files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-redis.sh
npx tsc --noEmit -p .
npm run build
mkdir -p .tmp
summary=.tmp/vitest-summary.json
rm -f "$summary"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$summary" "$@" || status=$?
if [ -f "$summary" ]; then
  node -e '
    const r = require(process.argv[1]);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
  ' "$PWD/$summary"
fi
exit "$status"
