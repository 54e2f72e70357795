"use strict";
// Print vitest's JSON report as the plain "N passed, N failed" line CI recognises. Without a report
// (vitest stopped before running tests: a test server that could not start, a config error) the
// line is still printed, after one saying why, and vitest's exit status stands.
//   node scripts/vitest-summary.cjs REPORT [VITEST_STATUS]
const fs = require("node:fs");

const [file, status = "0"] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(fs.readFileSync(file, "utf8"));
} catch (err) {
  console.error(`no vitest report at ${file} (${err.code ?? err.message}): vitest stopped before running any test (exit ${status}); its reason is above`);
  console.log("0 passed, 0 failed");
  process.exit(Number(status) || 1);
}
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
