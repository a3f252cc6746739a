/**
 * The picker's core API over the emulated Azure, in process: a login becomes a "recent" one (what
 * the picker offers first, and what the queries screen logs in with) only once the server took it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pg from 'pg';
import type { CoreEvent, TuiApi } from '../../src/core/api/picker.js';
import { SILENT_LOG } from '../../src/core/context.js';
import { createTuiApi } from '../../src/core/picker.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { startTestAzure } from '../harness/emulator.js';
import { cliEnv, emulatedDatabase, writeEmulatedConfig } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

let azure: EmulatedAzure & { dir: string };
let work: string;
let api: TuiApi;
const events: CoreEvent[] = [];

beforeAll(async () => {
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-tui-api-'));
  const env = cliEnv(azure.identity.env(), work);
  // @azure/identity reads the managed identity endpoint from this process's environment (this file's worker).
  Object.assign(process.env, azure.identity.env());
  await writeEmulatedConfig(env.AZDB_CONFIG!, azure, {
    databases: azure.servers.filter((s) => s.name === 'orders').map((s) => emulatedDatabase(azure, s)),
    role: 'dev',
    allow: { db_users: [DEMO_IDENTITY.role], db_names: ['*'] },
  });
  api = await createTuiApi({ log: SILENT_LOG, env, configFlag: undefined });
  api.subscribe((event) => events.push(event));
});

afterAll(async () => {
  await api?.close();
  await azure?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function login(tunnel: { host: string; port: number; user: string; database: string; password: string }): Promise<unknown> {
  const client = new pg.Client({ host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await client.end().catch(() => {});
  }
}

const recent = async () => (await api.databases()).find((d) => d.name === 'orders')!.recent.map((r) => `${r.dbUser}/${r.dbName}`);

describe('recent logins of the picker', () => {
  it('remembers a login once a session through it was relayed, not a mistyped database name', async () => {
    const typo = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'ordrs' });
    expect(await login(typo)).toMatchObject({ message: expect.stringContaining('ordrs') });
    await waitFor(() => events.some((e) => e.type === 'session.closed' && e.tunnelId === typo.id), 'the failed session to end');
    await api.closeTunnel(typo.id);
    expect(await recent()).toEqual([]);

    const good = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'orders' });
    expect(await recent()).toEqual([]); // opening is not logging in
    expect(await login(good)).toBeUndefined();
    await waitFor(() => events.some((e) => e.type === 'session.opened' && e.tunnelId === good.id), 'the session to open');
    expect(await recent()).toEqual([`${DEMO_IDENTITY.role}/orders`]);
    await api.closeTunnel(good.id);
  });
});
