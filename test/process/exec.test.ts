import { describe, expect, it } from 'vitest';
import { run } from '../../src/process/exec.js';
import { UserError } from '../../src/errors.js';

describe('run', () => {
  it('returns the exit code of a program that exits by itself', async () => {
    expect((await run('sh', ['-c', 'exit 3'])).exitCode).toBe(3);
  });

  it('reports a program ended by a signal as a shell does (128 + the signal), not as one that could not start', async () => {
    // psql killed by Ctrl+C while it connects: it was started.
    expect((await run('sh', ['-c', 'kill -INT $$'])).exitCode).toBe(130);
    expect((await run('sh', ['-c', 'kill -TERM $$'])).exitCode).toBe(143);
  });

  it('says a program that is not installed is not installed', async () => {
    await expect(run('azdb-no-such-program', [])).rejects.toBeInstanceOf(UserError);
  });
});
