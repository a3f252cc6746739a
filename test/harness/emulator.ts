/**
 * A test file's own emulated Azure over the run's shared real PostgreSQL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { attachRealPostgres } from '../../src/emulator/real-postgres.js';
import { startEmulatedAzure, type EmulatedAzure, type EmulatedAzureOptions } from '../../src/emulator/emulated-azure.js';

export async function startTestAzure(options: Partial<EmulatedAzureOptions> = {}): Promise<EmulatedAzure & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'azdb-test-azure-'));
  const realPostgres = attachRealPostgres(inject('postgresSocketDir'));
  const azure = await startEmulatedAzure({ dir, realPostgres, ...options });
  return {
    ...azure,
    dir,
    async stop() {
      await azure.stop();
      await realPostgres.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
