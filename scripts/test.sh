#!/usr/bin/env bash
# `npm test`: the Rust core's tests, a debug build of the addon, then every vitest suite,
# ending with one "N passed, N failed" line for the vitest part.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --no-default-features
npx napi build --platform --js binding.js --dts binding.d.ts

set +e
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-report.json
status=$?
set -e
node scripts/vitest-summary.cjs .vitest-report.json
exit "$status"
