/**
 * Pooling in `azdb serve` as an operator sees it: a listener with `pool:`, a pg (or mysql2) client through it,
 * the per-pool series on /metrics and `azdb pools [--json]` reading the running broker's /pools.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { findTool } from '../harness/tools.js';
import { startTestAzure } from '../harness/emulator.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { BIN, emulatedDatabase, requireBuild, runAzdb, startProxy, writeEmulatedConfig } from '../helpers/cli.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import type { PoolsReport } from '../../src/core/pools.js';

const USER = DEMO_IDENTITY.role;
const mariadbd = await findTool('mariadbd');
const PASSWORD = 'correct horse battery staple';
let azure: EmulatedAzure & { dir: string };
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  requireBuild('cli/commands/pools.js');
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-pools-'));
  env = { ...azure.identity.env(), AZDB_STATE_DIR: join(work, 'state'), NO_COLOR: '1' };
});

afterAll(async () => {
  await azure?.stop();
});

describe('azdb serve with a pooled listener', () => {
  it('lists its pool with azdb pools --json and exports per-pool metrics', async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    const passwordFile = join(work, 'orders.password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const config = join(work, 'azdb.yaml');
    await writeEmulatedConfig(config, azure, {
      role: 'svc',
      allow: { db_users: [USER], db_names: ['*'] },
      broker: {
        listeners: [{ database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders', password_file: passwordFile, pool: { max_server_connections: 3, server_lifetime: '30m' } }],
        http: { address: `127.0.0.1:${httpPort}` },
      },
    });
    const serve = execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200 || undefined, 'azdb serve to be ready', 45_000);
      const client = new pg.Client({ host: '127.0.0.1', port: pgPort, user: USER, database: 'orders', password: PASSWORD });
      client.on('error', () => {});
      await client.connect();
      expect((await client.query('select 1 as one')).rows[0].one).toBe(1);

      const listed = await runAzdb(['--config', config, 'pools', '--json'], env);
      expect(listed.exitCode, listed.stderr).toBe(0);
      const report = JSON.parse(listed.stdout) as PoolsReport;
      expect(report.pools).toHaveLength(1);
      expect(report.pools[0]).toMatchObject({ listener: `orders@127.0.0.1:${pgPort}`, database: 'orders', mode: 'session', max_server_connections: 3, server_lifetime_seconds: 1800, max_client_wait_seconds: 30, max_prepared_statements: 200 });
      expect(report.pools[0]!.keys).toEqual([
        { db_user: USER, db_name: 'orders', identity: expect.stringMatching(/^oid:/), clients_connected: 1, clients_active: 1, clients_waiting: 0, clients_pinned: 0, servers_active: 1, servers_idle: 0, servers_opening: 0 },
      ]);

      const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      const value = (name: string) => metrics.sum(name, { listener: `orders@127.0.0.1:${pgPort}` });
      expect(value('azdb_pool_clients_active')).toBe(1);
      expect(value('azdb_pool_clients_connected')).toBe(1);
      expect(value('azdb_pool_servers_active')).toBe(1);
      expect(value('azdb_pool_server_logins_total')).toBe(1);
      expect(value('azdb_pool_wait_seconds_count')).toBe(1);

      await client.end();
      const text = await waitFor(async () => {
        const run = await runAzdb(['--config', config, 'pools'], env);
        return run.stdout.includes('1 idle') ? run.stdout : undefined;
      }, 'the server connection to go idle');
      expect(text).toContain(`orders@127.0.0.1:${pgPort}  session mode, at most 3 server connections per key`);
      expect(text).toContain(`${USER}/orders as oid:`);
    } finally {
      serve.kill('SIGTERM');
      await serve;
    }
  });

  it.skipIf(mariadbd.skip)('lists a MySQL listener\'s pool and its series, and hands its connection to the next client', async () => {
    const [port, txnPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const passwordFile = join(work, 'shop.password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const config = join(work, 'mysql-pool.yaml');
    await writeEmulatedConfig(config, azure, {
      role: 'svc',
      allow: { db_users: [USER], db_names: ['*'] },
      broker: {
        listeners: [
          { database: 'shopdb', host: '127.0.0.1', port, db_user: USER, db_name: 'shop', password_file: passwordFile, pool: { max_server_connections: 2 } },
          { database: 'shopdb', host: '127.0.0.1', port: txnPort, db_user: USER, db_name: 'shop', password_file: passwordFile, pool: { mode: 'transaction' } },
        ],
        http: { address: `127.0.0.1:${httpPort}` },
      },
    });
    const serve = execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    const connect = (to = port) => mysql.createConnection({ host: '127.0.0.1', port: to, user: USER, password: PASSWORD, database: 'shop', connectTimeout: 20_000 });
    const thread = async (c: mysql.Connection) => Number((await c.query<mysql.RowDataPacket[]>('select connection_id() as id'))[0][0]!.id);
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200 || undefined, 'azdb serve to be ready', 45_000);
      const first = await connect();
      const id = await thread(first);
      const report = JSON.parse((await runAzdb(['--config', config, 'pools', '--json'], env)).stdout) as PoolsReport;
      expect(report.pools.find((p) => p.mode === 'transaction')).toMatchObject({ listener: `shopdb@127.0.0.1:${txnPort}`, keys: [] });
      expect(report.pools.filter((p) => p.mode === 'session')).toEqual([
        expect.objectContaining({
          listener: `shopdb@127.0.0.1:${port}`,
          database: 'shopdb',
          mode: 'session',
          max_server_connections: 2,
          keys: [{ db_user: USER, db_name: 'shop', identity: expect.stringMatching(/^oid:/), clients_connected: 1, clients_active: 1, clients_waiting: 0, clients_pinned: 0, servers_active: 1, servers_idle: 0, servers_opening: 0 }],
        }),
      ]);
      const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      expect(metrics.sum('azdb_pool_servers_active', { listener: `shopdb@127.0.0.1:${port}`, db_name: 'shop' })).toBe(1);
      expect(metrics.sum('azdb_pool_server_logins_total', { listener: `shopdb@127.0.0.1:${port}` })).toBe(1);
      // Transaction mode: a user variable pins the client, counted by reason.
      const pinned = await connect(txnPort);
      await pinned.query('set @mine = 1');
      const after = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      expect(after.sum('azdb_pool_pins_total', { database: 'shopdb', reason: 'user-variable' })).toBe(1);
      await pinned.end();
      await first.end();
      await waitFor(async () => ((await runAzdb(['--config', config, 'pools'], env)).stdout.includes('1 idle') ? true : undefined), 'the server connection to go idle');
      const second = await connect();
      expect(await thread(second)).toBe(id);
      await second.end();
    } finally {
      serve.kill('SIGTERM');
      await serve;
    }
  });

  it('with --workers 2 lists each worker\'s own pool, marked with its pid, and sums the pool metrics', async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    const passwordFile = join(work, 'workers.password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const config = join(work, 'workers.yaml');
    await writeEmulatedConfig(config, azure, {
      role: 'svc',
      allow: { db_users: [USER], db_names: ['*'] },
      broker: {
        listeners: [{ database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders', password_file: passwordFile, pool: { max_server_connections: 3 } }],
        http: { address: `127.0.0.1:${httpPort}` },
      },
    });
    const serve = execa('node', [BIN, '--config', config, 'serve', '--workers', '2'], { env, reject: false });
    const clients: pg.Client[] = [];
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200 || undefined, 'azdb serve to be ready', 45_000);
      for (let i = 0; i < 2; i += 1) {
        const client = new pg.Client({ host: '127.0.0.1', port: pgPort, user: USER, database: 'orders', password: PASSWORD });
        client.on('error', () => {});
        await client.connect();
        clients.push(client);
      }
      const listed = await runAzdb(['--config', config, 'pools', '--json'], env);
      expect(listed.exitCode, listed.stderr).toBe(0);
      const report = JSON.parse(listed.stdout) as PoolsReport;
      expect(report.pools).toHaveLength(2);
      expect(new Set(report.pools.map((p) => p.worker)).size).toBe(2);
      for (const pool of report.pools) expect(pool.keys).toMatchObject([{ clients_active: 1, servers_active: 1 }]);
      const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      expect(metrics.sum('azdb_pool_clients_active', { listener: `orders@127.0.0.1:${pgPort}` })).toBe(2);
      const text = await runAzdb(['--config', config, 'pools'], env);
      for (const pool of report.pools) expect(text.stdout).toContain(`orders@127.0.0.1:${pgPort} (worker ${pool.worker})  session mode`);
    } finally {
      for (const client of clients) await client.end().catch(() => {});
      serve.kill('SIGTERM');
      await serve;
    }
  });

  it('pools the clients of azdb proxy db when the database entry has a pool', async () => {
    const config = join(work, 'proxy-pool.yaml');
    const orders = { ...emulatedDatabase(azure, azure.servers.find((s) => s.name === 'orders')!), pool: { max_server_connections: 1, max_client_wait: '300ms' } };
    await writeEmulatedConfig(config, azure, { role: 'svc', allow: { db_users: [USER], db_names: ['*'] }, databases: [orders] });
    // A generous start: the CLI's first token fetch is slow on a loaded machine.
    const { child, info } = await startProxy(['--config', config, 'orders', '--db-name', 'orders'], env, 45_000);
    const connectClient = async () => {
      const c = new pg.Client({ host: info.host as string, port: info.port as number, user: info.user as string, database: 'orders', password: info.password as string });
      c.on('error', () => {});
      await c.connect();
      return c;
    };
    try {
      const first = await connectClient();
      const pid = (await first.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const refused = await connectClient().then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(refused?.code).toBe('53300');
      await first.end();
      const second = await waitFor(() => connectClient().catch(() => undefined), 'the pooled connection to come back', 30_000);
      expect((await second.query('select pg_backend_pid() as pid')).rows[0].pid).toBe(pid);
      await second.end();
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });

  it('runs a transaction-mode listener: clients connected apart from active, pins counted and logged once', async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    const passwordFile = join(work, 'txn.password');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const config = join(work, 'txn.yaml');
    await writeEmulatedConfig(config, azure, {
      role: 'svc',
      allow: { db_users: [USER], db_names: ['*'] },
      broker: {
        listeners: [{ database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders', password_file: passwordFile, pool: { mode: 'transaction', max_server_connections: 2 } }],
        http: { address: `127.0.0.1:${httpPort}` },
      },
    });
    const serve = execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    let stderr = '';
    serve.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const logs = () => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status === 200 || undefined, 'azdb serve to be ready', 45_000);
      const connectClient = async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: USER, database: 'orders', password: PASSWORD });
        c.on('error', () => {});
        await c.connect();
        return c;
      };
      const clients = await Promise.all([connectClient(), connectClient(), connectClient()]);
      for (const c of clients) expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      await clients[0]!.query('listen jobs');
      await clients[0]!.query("set work_mem = '8MB'");

      const report = JSON.parse((await runAzdb(['--config', config, 'pools', '--json'], env)).stdout) as PoolsReport;
      expect(report.pools[0]).toMatchObject({ mode: 'transaction', max_server_connections: 2, max_prepared_statements: 200 });
      expect(report.pools[0]!.keys[0]).toMatchObject({ clients_connected: 3, clients_active: 1, clients_pinned: 1 });
      const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      expect(metrics.sum('azdb_pool_clients_connected', { listener: `orders@127.0.0.1:${pgPort}` })).toBe(3);
      expect(metrics.sum('azdb_pool_clients_active', { listener: `orders@127.0.0.1:${pgPort}` })).toBe(1);
      expect(metrics.sum('azdb_pool_pins_total', { database: 'orders', reason: 'listen' })).toBe(1);
      expect(metrics.sum('azdb_pool_pins_total', { database: 'orders' })).toBe(1);
      const pins = logs().filter((l) => l.event === 'pool.pin');
      expect(pins).toEqual([expect.objectContaining({ listener: `orders@127.0.0.1:${pgPort}`, database: 'orders', db_user: USER, db_name: 'orders', reason: 'listen' })]);
      expect(stderr).not.toContain('work_mem');
      await Promise.all(clients.map((c) => c.end()));
    } finally {
      serve.kill('SIGTERM');
      await serve;
    }
  });

  it('says how to point azdb pools at a broker when the config has no broker.http.address', async () => {
    const config = join(work, 'no-http.yaml');
    await writeEmulatedConfig(config, azure, { role: 'svc', allow: { db_users: [USER], db_names: ['*'] } });
    const run = await runAzdb(['--config', config, 'pools'], env);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('broker.http.address');
  });
});
