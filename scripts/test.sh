#!/usr/bin/env bash
# `npm test`: install what the tests need and the machine lacks (once, into .test-deps/), the Rust
# core's tests, a debug build of the addon, then every vitest suite, ending with one
# "N passed, N failed" line for the vitest part.
set -euo pipefail
cd "$(dirname "$0")/.."

node dev/test-deps.cjs

cargo test --no-default-features
npx napi build --platform --js binding.js --dts binding.d.ts

# A report left by an earlier run must not stand in for this one.
rm -f .vitest-report.json
set +e
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-report.json
status=$?
set -e
node scripts/vitest-summary.cjs .vitest-report.json "$status"
exit "$status"
