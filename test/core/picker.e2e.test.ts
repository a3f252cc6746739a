/**
 * The picker's core API over the emulated Azure, in process: a login becomes a "recent" one (what
 * the picker offers first, and what the queries screen logs in with) only once the server took it;
 * the database-name prompt's names come from the real servers, asked through the broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import pg from 'pg';
import type { CoreEvent, TuiApi } from '../../src/core/api/picker.js';
import { SILENT_LOG } from '../../src/core/context.js';
import { createTuiApi } from '../../src/core/picker.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { cliEnv, emulatedDatabase, requireBuild, runAzdb, writeEmulatedConfig } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const mariadbd = await findTool('mariadbd');

let azure: EmulatedAzure & { dir: string };
let work: string;
let api: TuiApi;
let cli: Record<string, string>;
const events: CoreEvent[] = [];

beforeAll(async () => {
  requireBuild();
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-tui-api-'));
  const env = cliEnv(azure.identity.env(), work);
  // @azure/identity reads the managed identity endpoint from this process's environment (this file's worker).
  Object.assign(process.env, azure.identity.env());
  await writeEmulatedConfig(env.AZDB_CONFIG!, azure, {
    // inventory pools its server connections (the picker's pools view reads them).
    databases: azure.servers
      .filter((s) => ['orders', 'inventory', 'shopdb'].includes(s.name))
      .map((s) => ({ ...emulatedDatabase(azure, s), ...(s.name === 'inventory' ? { pool: { mode: 'session' as const, max_server_connections: 3 } } : {}) }))
      // orders once more, through a transaction-mode pool (its pins are counted).
      .concat(azure.servers.filter((s) => s.name === 'orders').map((s) => ({ ...emulatedDatabase(azure, s), name: 'orders-tx', pool: { mode: 'transaction' as const, max_server_connections: 2 } }))),
    role: 'dev',
    // nobody-here: a user the roles allow but no server knows.
    allow: { db_users: [DEMO_IDENTITY.role, 'nobody-here'], db_names: ['*'] },
  });
  cli = env;
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

describe('pools of the picker\'s tunnels', () => {
  it('reads a pooled tunnel\'s counters from its broker: key, identity, clients, servers, logins; an unpooled tunnel has none', async () => {
    const orders = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'orders' });
    const inventory = await api.openTunnel('inventory', { dbUser: DEMO_IDENTITY.role, dbName: 'inventory' });
    const clients = [0, 1].map(() => new pg.Client({ host: inventory.host, port: inventory.port, user: inventory.user, database: inventory.database, password: inventory.password }));
    try {
      expect(api.pools()).toEqual([{ tunnelId: inventory.id, name: 'inventory', listener: `127.0.0.1:${inventory.port}`, mode: 'session', maxServerConnections: 3, keys: [] }]);
      for (const client of clients) await client.connect();
      await Promise.all(clients.map((client) => client.query('select 1')));
      const [busy] = api.pools();
      expect(busy!.keys).toEqual([
        { dbUser: DEMO_IDENTITY.role, dbName: 'inventory', identity: expect.stringMatching(/^oid:[0-9a-f-]{36}@[0-9a-f-]{36}$/), clientsConnected: 2, clientsActive: 2, clientsWaiting: 0, clientsPinned: 0, serversActive: 2, serversIdle: 0, serversOpening: 0, logins: 2 },
      ]);
      await Promise.all(clients.map((client) => client.end()));
      await waitFor(() => api.pools()[0]?.keys[0]?.serversIdle === 2, 'both server connections to go back idle');
      expect(api.pools()[0]!.keys[0]).toMatchObject({ clientsActive: 0, serversActive: 0, serversIdle: 2, logins: 2 });
    } finally {
      await Promise.all(clients.map((client) => client.end().catch(() => {})));
      await api.closeTunnel(orders.id);
      await api.closeTunnel(inventory.id);
    }
    expect(api.pools()).toEqual([]);
  });
});

describe('pools of the picker\'s tunnels in transaction mode', () => {
  it('shows the mode of the tunnel\'s pool and counts a client pinned by LISTEN', async () => {
    const tunnel = await api.openTunnel('orders-tx', { dbUser: DEMO_IDENTITY.role, dbName: 'orders' });
    const client = new pg.Client({ host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password });
    try {
      await client.connect();
      await client.query('select 1');
      expect(api.pools()[0]).toMatchObject({ name: 'orders-tx', mode: 'transaction', maxServerConnections: 2 });
      expect(api.pools()[0]!.keys[0]).toMatchObject({ clientsConnected: 1, clientsPinned: 0 });
      await client.query('listen azdb_picker_pin');
      await waitFor(() => api.pools()[0]?.keys[0]?.clientsPinned === 1, 'the client to be counted as pinned');
      expect(api.pools()[0]!.keys[0]).toMatchObject({ dbUser: DEMO_IDENTITY.role, dbName: 'orders', clientsConnected: 1, clientsPinned: 1 });
    } finally {
      await client.end().catch(() => {});
      await api.closeTunnel(tunnel.id);
    }
  });
});

describe('azdb db logout from another shell', () => {
  it('closes exactly the tunnels it names in the picker, which carries on with the others', async () => {
    const orders = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'orders' });
    const inventory = await api.openTunnel('inventory', { dbUser: DEMO_IDENTITY.role, dbName: 'inventory' });
    const logout = await runAzdb(['db', 'logout', 'orders'], cli);
    expect(logout.exitCode).toBe(0);
    expect(logout.stdout).toContain(`Closed 1 tunnel(s) for "orders": orders on 127.0.0.1:${orders.port} (pid ${process.pid})`);
    // This process (the picker's) was not signalled: it is still here, and so is the other tunnel.
    expect(api.tunnels().map((t) => t.name)).toEqual(['inventory']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'tunnel.closed', tunnelId: orders.id, by: 'logout' }));
    expect(await login(orders)).toMatchObject({ message: expect.stringMatching(/ECONNREFUSED/) });
    expect(await login(inventory)).toBeUndefined();
    // The second time there is nothing left for orders; the JSON names what was closed.
    const again = await runAzdb(['--json', 'db', 'logout', 'orders'], cli);
    expect(JSON.parse(again.stdout)).toEqual({ closed: [], unreachable: [], tokens_dropped: true });
    const all = await runAzdb(['--json', 'db', 'logout'], cli);
    expect(JSON.parse(all.stdout)).toEqual({ closed: [{ name: 'inventory', pid: process.pid, port: inventory.port }], unreachable: [], tokens_dropped: true });
    expect(api.tunnels()).toEqual([]);
  });

  it('never signals a holder it cannot ask: it says so and exits 1', async () => {
    const record = join(cli.AZDB_STATE_DIR!, 'tunnels', `${process.pid}-1.json`);
    await mkdir(dirname(record), { recursive: true });
    // As an azdb without a control socket lists its tunnel.
    await writeFile(record, JSON.stringify({ pid: process.pid, name: 'orders', host: '127.0.0.1', port: 1, started: new Date().toISOString() }));
    try {
      const logout = await runAzdb(['db', 'logout', 'orders'], cli);
      expect(logout.exitCode).toBe(1);
      expect(logout.stderr).toContain(`could not close the tunnel to orders on port 1 (pid ${process.pid}): it has no control socket`);
    } finally {
      await rm(record, { force: true });
    }
  });
});

describe('tunnels for GUI clients, set up once', () => {
  const inventory = { dbUser: DEMO_IDENTITY.role, dbName: 'inventory' };

  it('keeps each database\'s port and password across tunnels and pickers; a taken port gives way to a free one, said in the log', async () => {
    const first = await api.openTunnel('inventory', inventory);
    const passwordFile = join(cli.AZDB_STATE_DIR!, 'tunnel-passwords', 'inventory.password');
    expect(first.passwordFile).toBe(passwordFile);
    expect(await readFile(passwordFile, 'utf8')).toBe(`${first.password}\n`);
    expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
    expect(first.caFile).toBe(join(cli.AZDB_STATE_DIR!, 'tls', 'ca.pem'));
    expect(first.command).toBe(`PGPASSWORD="$(cat ${passwordFile})" psql "host=127.0.0.1 port=${first.port} user=${DEMO_IDENTITY.role} dbname=inventory sslmode=verify-full sslrootcert=${first.caFile}"`);
    await api.closeTunnel(first.id);

    // The next picker (a restart) opens the tunnel where the GUI client expects it.
    const next = await createTuiApi({ log: SILENT_LOG, env: cli, configFlag: undefined });
    const nextEvents: CoreEvent[] = [];
    next.subscribe((event) => nextEvents.push(event));
    try {
      const again = await next.openTunnel('inventory', inventory);
      expect(again.port).toBe(first.port);
      expect(again.password).toBe(first.password);
      expect(await login(again)).toBeUndefined();

      // A second tunnel to the same database while the first holds the port.
      const beside = await next.openTunnel('inventory', inventory);
      expect(beside.port).not.toBe(first.port);
      expect(beside.password).toBe(first.password);
      expect(await login(beside)).toBeUndefined();
      expect(nextEvents).toContainEqual(
        expect.objectContaining({ type: 'notice', level: 'warn', message: `inventory: port ${first.port}, where its tunnels listen, is in use; this one listens on ${beside.port} (${first.port} stays remembered)` }),
      );
      await next.closeTunnel(again.id);
      await next.closeTunnel(beside.id);
      expect((await next.openTunnel('inventory', inventory)).port).toBe(first.port);
    } finally {
      await next.close();
    }
    // Another database has a port and a password of its own.
    const orders = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'orders' });
    expect(orders.port).not.toBe(first.port);
    expect(orders.password).not.toBe(first.password);
    await api.closeTunnel(orders.id);
  });

  it('gives a client that insists on TLS a verifiable certificate', async () => {
    const tunnel = await api.openTunnel('inventory', inventory);
    try {
      const ca = await readFile(tunnel.caFile!, 'utf8');
      const client = new pg.Client({ host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password, ssl: { ca } });
      await client.connect();
      expect((await client.query('select count(*)::int as n from products')).rows[0].n).toBe(17);
      await client.end();
    } finally {
      await api.closeTunnel(tunnel.id);
    }
  });
});

describe('database names for the prompt', () => {
  it('lists the PostgreSQL server\'s databases as the chosen user, the recently used first, no templates', async () => {
    // A login to `postgres` makes it the recent name, ahead of names that sort before it.
    const tunnel = await api.openTunnel('orders', { dbUser: DEMO_IDENTITY.role, dbName: 'postgres' });
    expect(await login(tunnel)).toBeUndefined();
    await waitFor(() => events.some((e) => e.type === 'session.closed' && e.tunnelId === tunnel.id), 'the session to end');
    await api.closeTunnel(tunnel.id);
    const used = [...new Set((await api.databases()).find((d) => d.name === 'orders')!.recent.map((r) => r.dbName))];
    expect(used[0]).toBe('postgres');
    const names = await api.databaseNames('orders', DEMO_IDENTITY.role);
    expect(names).toEqual(expect.arrayContaining(['inventory', 'orders', 'postgres']));
    expect(names.filter((n) => n.startsWith('template'))).toEqual([]);
    // The recent ones first, most recent first; then the others by name.
    expect(names.slice(0, used.length)).toEqual(used);
    const rest = names.slice(used.length);
    expect(rest).toEqual([...rest].sort());
    expect(rest).toContain('inventory');
  });

  it('says why when the server does not take the user, and gives up when asked to', async () => {
    await expect(api.databaseNames('orders', 'nobody-here')).rejects.toThrow(/could not log in to orders as nobody-here/);
    const gone = new AbortController();
    gone.abort(new Error('the prompt was closed'));
    await expect(api.databaseNames('orders', DEMO_IDENTITY.role, gone.signal)).rejects.toThrow('the prompt was closed');
  });

  it.skipIf(mariadbd.skip)('lists the MySQL server\'s databases (SHOW DATABASES), its own schemas last', async () => {
    const names = await api.databaseNames('shopdb', DEMO_IDENTITY.role);
    expect(names).toContain('shop');
    expect(names).not.toContain('');
    const system = ['information_schema', 'mysql', 'performance_schema', 'sys'];
    const firstSystem = names.findIndex((n) => system.includes(n));
    if (firstSystem >= 0) expect(names.slice(firstSystem).every((n) => system.includes(n))).toBe(true);
    expect(names.indexOf('shop')).toBeLessThan(firstSystem >= 0 ? firstSystem : Infinity);
  });
});
