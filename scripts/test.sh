#!/usr/bin/env bash
# `npm test`: Redis available → typecheck → build (the packed-package test needs dist/) → vitest.
# Extra arguments go to vitest: `npm test -- test/core` runs only those files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-redis.sh
npx tsc --noEmit -p .
npm run build
npx vitest run "$@"
