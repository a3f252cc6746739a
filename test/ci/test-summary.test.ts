/** `.ci/test-summary.mjs`: the counts line CI ends with, and its verdict. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../.ci/test-summary.mjs');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-test-summary-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function summarise(report: object | string) {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, typeof report === 'string' ? report : JSON.stringify(report));
  return execa(process.execPath, [SCRIPT, file], { reject: false });
}

const counts = (passed: number, failed: number, pending = 0, todo = 0, failedSuites = 0) => ({
  numPassedTests: passed,
  numFailedTests: failed,
  numPendingTests: pending,
  numTodoTests: todo,
  numFailedTestSuites: failedSuites,
  success: failed === 0 && failedSuites === 0,
});

describe('the CI test summary', () => {
  it('prints the counts alone on the last line and exits 0 when all ran tests passed', async () => {
    const result = await summarise(counts(884, 0, 3, 1));
    expect(result.stdout.split('\n').at(-1)).toBe('884 passed, 0 failed, 4 skipped');
    expect(result.exitCode).toBe(0);
  });

  it('exits 1 when a test failed', async () => {
    const result = await summarise(counts(10, 2));
    expect(result.stdout).toBe('10 passed, 2 failed, 0 skipped');
    expect(result.exitCode).toBe(1);
  });

  it('exits 1 when a file failed outside its tests', async () => {
    const result = await summarise(counts(10, 0, 0, 0, 1));
    expect(result.stdout).toBe('10 passed, 0 failed, 0 skipped');
    expect(result.stderr).toContain('failed outside any test');
    expect(result.exitCode).toBe(1);
  });

  it('exits 1 when no test ran', async () => {
    const result = await summarise(counts(0, 0, 5));
    expect(result.stdout).toBe('0 passed, 0 failed, 5 skipped');
    expect(result.stderr).toContain('no test ran');
    expect(result.exitCode).toBe(1);
  });

  it('exits 1 on a missing or unreadable report', async () => {
    const result = await summarise('{ not json');
    expect(result.stderr).toContain('no readable vitest report');
    expect(result.exitCode).toBe(1);
  });
});
