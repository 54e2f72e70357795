"use strict";
// Print vitest's JSON report as the plain "N passed, N failed" line CI recognises.
const fs = require("node:fs");

const file = process.argv[2];
let report;
try {
  report = JSON.parse(fs.readFileSync(file, "utf8"));
} catch (err) {
  console.error(`no vitest report at ${file}: ${err.message}`);
  process.exit(1);
}
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
