#!/usr/bin/env node
// Reads vitest's JSON report and ends with one plain line, `N passed, M failed, K skipped`, alone
// on a line. Exits 1 when a test failed, a file or suite failed outside its tests (an import, a
// beforeAll), or no test ran at all.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: test-summary.mjs REPORT.json\n');
  process.exit(2);
}
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  process.stderr.write(`no readable vitest report at ${file}: ${error.message}\n`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
const failedSuites = report.numFailedTestSuites ?? 0;

let ok = true;
if (failed === 0 && (failedSuites > 0 || report.success === false)) {
  process.stderr.write(`${failedSuites} test file(s) or suite(s) failed outside any test (an import, a hook)\n`);
  ok = false;
}
if (passed + failed === 0) {
  process.stderr.write('no test ran\n');
  ok = false;
}
if (failed > 0) ok = false;
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(ok ? 0 : 1);
