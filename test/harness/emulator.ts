/**
 * A test file's own emulated Azure over the run's shared real PostgreSQL and, when the run has
 * one, its shared real MariaDB (else no MySQL servers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { attachRealPostgres } from '../../src/emulator/real-postgres.js';
import { attachRealMariaDb } from '../../src/emulator/real-mariadb.js';
import { startEmulatedAzure, type EmulatedAzure, type EmulatedAzureOptions } from '../../src/emulator/emulated-azure.js';

export async function startTestAzure(options: Partial<EmulatedAzureOptions> = {}): Promise<EmulatedAzure & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'azdb-test-azure-'));
  const realPostgres = attachRealPostgres(inject('postgresSocketDir'));
  const mariadbSocket = inject('mariadbSocket');
  const realMariaDb = mariadbSocket ? attachRealMariaDb(mariadbSocket) : null;
  const azure = await startEmulatedAzure({ dir, realPostgres, realMariaDb, ...options });
  return {
    ...azure,
    dir,
    async stop() {
      await azure.stop();
      await realPostgres.stop();
      await realMariaDb?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
