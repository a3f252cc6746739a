/**
 * MySQL pooling (session mode) against the emulated Azure Database for MySQL over the run's real
 * MariaDB, with mysql2 and the mariadb client through azdb.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import mysqlCallbacks from 'mysql2';
import { findTool } from '../../harness/tools.js';
import { BrokerFixture, USER } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import type { PoolLimits } from '../../../src/broker/pool/pool-manager.js';
import type { PoolKeyInfo } from '../../../src/broker/postgres/pool/postgres-pool.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';
import { CLOUDS } from '../../../src/azure/clouds.js';
import { connectionIds, serverKey } from '../../../src/broker/mysql/connection-ids.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
const LIMITS: PoolLimits = { maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

async function pooled(limits: Partial<PoolLimits> = {}, overrides: Partial<TunnelOptions> = {}): Promise<{ tunnel: Tunnel; logins: PoolKeyInfo[] }> {
  const logins: PoolKeyInfo[] = [];
  const tunnel = await broker.tunnel({
    target: broker.target('shopdb'),
    dbName: 'shop',
    audit: createMemoryAuditSink({ queries: false }),
    pool: { ...LIMITS, ...limits },
    poolEvents: { onLogin: (info) => logins.push(info) },
    ...overrides,
  });
  return { tunnel, logins };
}

function client(t: Tunnel, overrides: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: t.database || undefined, connectTimeout: 10_000, ...overrides });
}

const threadOf = async (c: mysql.Connection): Promise<number> => {
  const [[row]] = await c.query<mysql.RowDataPacket[]>('select connection_id() as id');
  return Number(row!.id);
};

/** The server threads running `sql` now, seen from the server itself. */
const runningOn = async (sql: string): Promise<Array<{ id: number }>> =>
  (await broker.azure.realMariaDb!.query('select id from information_schema.processlist where info = ?', [sql])) as unknown as Array<{ id: number }>;

/** Waits until the pool holds `count` idle connections (a released one is reset first). */
const idle = (t: Tunnel, count: number) => waitFor(() => (t.pool!.stats().reduce((n, s) => n + s.serversIdle, 0) === count ? true : undefined), `${count} idle server connections`);

describe.skipIf(mariadbd.skip)('MySQL pooling, session mode, against emulated Azure over real MariaDB', () => {
  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it('hands the next client the same server connection with the first client\'s session reset', async () => {
    const { tunnel, logins } = await pooled();
    const a = await client(tunnel, { charset: 'latin1_swedish_ci' });
    const first = await threadOf(a);
    await a.query("set session sql_mode = 'ANSI_QUOTES', @mark = 'left behind'");
    await a.query('create temporary table scratch (n int)');
    await a.query("prepare two from 'select 2'");
    await a.query('use information_schema');
    await a.query('start transaction');
    await a.query("insert into shop.customers (name, email) values ('left open', 'left-open@example.com')");
    await a.end();
    await idle(tunnel, 1);

    const b = await client(tunnel, { charset: 'latin1_swedish_ci' });
    expect(await threadOf(b)).toBe(first);
    const [[state]] = await b.query<mysql.RowDataPacket[]>(
      "select @@session.sql_mode = @@global.sql_mode as mode_reset, @mark as mark, database() as db, @@in_transaction as in_trans, @@character_set_client as cs," +
        " (select count(*) from shop.customers where email = 'left-open@example.com') as left_open",
    );
    expect(state).toEqual({ mode_reset: 1, mark: null, db: 'shop', in_trans: 0, cs: 'latin1', left_open: 0 });
    await expect(b.query('select * from scratch')).rejects.toThrow(/doesn't exist/);
    await expect(b.query('execute two')).rejects.toThrow(/Unknown prepared statement/);
    await b.end();
    expect(logins).toHaveLength(1);
    expect(logins[0]).toMatchObject({ database: 'shopdb', dbUser: USER, dbName: 'shop' });
    expect(logins[0]!.identity).toMatch(/^oid:.+@.+/);
  });

  it('never hands one identity\'s connection to another: a token of another identity logs in anew (and Azure refuses it)', async () => {
    let other: string | undefined;
    const { tunnel, logins } = await pooled({}, { getToken: async () => other ?? (await broker.getToken()) });
    const a = await client(tunnel);
    await threadOf(a);
    await a.end();
    await idle(tunnel, 1);
    other = await broker.azure.issueToken({ audience: CLOUDS.AzureCloud.databaseResource, objectId: '0b5c3e1a-7d2f-4e8a-9c61-3f0d2a9b8e47' });
    const refused = await client(tunnel).then(
      async (c) => (await c.end(), undefined),
      (e: { errno?: number; message: string }) => e,
    );
    // A new login with the other identity's token, which Azure refuses for this user.
    expect(refused?.errno).toBe(1045);
    expect(refused?.message).toContain('Azure refused the Entra token');
    expect(logins).toHaveLength(1);
    // The first identity's connection stayed idle, untouched.
    await idle(tunnel, 1);
  });

  it('keys connections by schema: another database name gets its own connection', async () => {
    const { tunnel, logins } = await pooled();
    const shop = await client(tunnel);
    const shopThread = await threadOf(shop);
    await shop.end();
    await idle(tunnel, 1);
    const info = await client(tunnel, { database: 'information_schema' });
    expect(await threadOf(info)).not.toBe(shopThread);
    await info.end();
    expect(logins.map((l) => l.dbName)).toEqual(['shop', 'information_schema']);
  });

  it('resets a connection without a schema with COM_CHANGE_USER and a fresh token: USE and variables are gone', async () => {
    const { tunnel, logins } = await pooled({}, { dbName: '' });
    const a = await client(tunnel);
    const first = await threadOf(a);
    await a.query("use shop");
    await a.query("set @mark = 'left behind'");
    await a.end();
    await idle(tunnel, 1);
    const b = await client(tunnel);
    expect(await threadOf(b)).toBe(first);
    const [[state]] = await b.query<mysql.RowDataPacket[]>('select database() as db, @mark as mark, current_user() as user');
    expect(state).toEqual({ db: null, mark: null, user: `${USER}@%` });
    await b.end();
    expect(logins).toHaveLength(1);
  });

  it('refuses a client with ERR 1040 naming pool.max_server_connections when the pool stays busy for max_client_wait', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1, maxClientWaitMs: 300 });
    const holder = await client(tunnel);
    const error = await client(tunnel).then(
      async (c) => (await c.end(), undefined),
      (e: { errno?: number; sqlState?: string; message: string }) => e,
    );
    expect(error?.errno).toBe(1040);
    expect(error?.sqlState).toBe('08004');
    expect(error?.message).toContain('pool.max_server_connections');
    expect(error?.message).toContain('max_client_wait');
    expect(await threadOf(holder)).toBeGreaterThan(0);
    await holder.end();
  });

  it('takes a client that hangs up while it waits out of the queue, and serves the next one the connection', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const waiting = (n: number) => waitFor(() => ((tunnel.pool!.stats()[0]?.clientsWaiting ?? 0) === n ? true : undefined), `${n} waiting clients`);
    const holder = await client(tunnel);
    const holderThread = await threadOf(holder);
    // Proves the password, then waits for the busy pool's only connection before its OK (a mysql2
    // client, so that its login has the holder's key: capabilities and character set are in it).
    const quitter = mysqlCallbacks.createConnection({ host: tunnel.host, port: tunnel.port, user: tunnel.user, password: tunnel.password, database: tunnel.database || undefined });
    quitter.on('error', () => {});
    await waiting(1);
    quitter.destroy();
    await waiting(0);
    await holder.end();
    const next = await client(tunnel);
    expect(await threadOf(next)).toBe(holderThread);
    await next.end();
  });

  it('follows the binary protocol (prepare, execute) so the connection is reused after prepared statements', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const a = await client(tunnel);
    const thread = await threadOf(a);
    const [rows] = await a.execute<mysql.RowDataPacket[]>('select ? + ? as sum', [40, 2]);
    expect(rows[0]).toEqual({ sum: 42 });
    await a.end();
    await idle(tunnel, 1);
    const b = await client(tunnel);
    expect(await threadOf(b)).toBe(thread);
    const [again] = await b.execute<mysql.RowDataPacket[]>('select ? + ? as sum', [1, 2]);
    expect(again[0]).toEqual({ sum: 3 });
    await b.end();
    expect(logins).toHaveLength(1);
  });

  it('routes the client\'s KILL QUERY (its minted id) to the server thread of its pooled connection', async () => {
    const { tunnel } = await pooled();
    const a = await client(tunnel);
    const thread = await threadOf(a);
    expect(a.threadId).toBeGreaterThanOrEqual(0x8000_0000);
    const running = a.query('select sleep(30) as slept').then(
      ([rows]) => ({ rows }),
      (e: { errno?: number }) => ({ errno: e.errno }),
    );
    await waitFor(async () => {
      const rows = await runningOn("select sleep(30) as slept");
      return rows.some((r) => Number(r.id) === thread) ? true : undefined;
    }, 'the sleep to run on the pooled connection');
    const b = await client(tunnel);
    await b.query(`kill query ${a.threadId}`);
    await b.end();
    const outcome = await running;
    expect('errno' in outcome ? outcome.errno : (outcome.rows as mysql.RowDataPacket[])[0]!.slept).toSatisfy((v: unknown) => v === 1317 || Number(v) === 1);
    expect(await threadOf(a)).toBe(thread);
    await a.end();
  });

  it('gives the client\'s minted id back when its session ends, so a later KILL of it reaches nothing', async () => {
    const { tunnel } = await pooled();
    const a = await client(tunnel);
    const thread = await threadOf(a);
    const server = serverKey(broker.target('shopdb'));
    expect(connectionIds.threadOf(a.threadId!, server)).toBe(thread);
    await a.end();
    await waitFor(() => (connectionIds.threadOf(a.threadId!, server) === undefined ? true : undefined), 'the minted id released');
  });

  it('never hands on a connection whose client left in the middle of a query', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const leaver = await client(tunnel);
    const thread = await threadOf(leaver);
    void leaver.query('select sleep(2)').catch(() => {});
    await waitFor(async () => {
      const rows = await runningOn('select sleep(2)');
      return rows.length > 0 ? true : undefined;
    }, 'the sleep to run');
    leaver.destroy();
    const next = await client(tunnel);
    expect(await threadOf(next)).not.toBe(thread);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('ends the session of a client whose server connection is killed, and serves the next client on a new one', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const victim = await client(tunnel);
    victim.on('error', () => {});
    const thread = await threadOf(victim);
    await victim.query('start transaction');
    await broker.azure.realMariaDb!.query(`kill ${thread}`);
    await expect(victim.query('select 1')).rejects.toThrow();
    const next = await client(tunnel);
    expect(await threadOf(next)).not.toBe(thread);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('closes a connection whose client changed user, instead of handing it on', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const a = await client(tunnel);
    const thread = await threadOf(a);
    await a.changeUser({ user: USER, password: tunnel.password, database: 'shop' });
    expect(await threadOf(a)).toBe(thread);
    await a.end();
    const b = await client(tunnel);
    expect(await threadOf(b)).not.toBe(thread);
    await b.end();
    expect(logins).toHaveLength(2);
  });

  it('closes a connection that outlived server_lifetime and logs in a new one', async () => {
    const { tunnel, logins } = await pooled({ serverLifetimeMs: 300 });
    const a = await client(tunnel);
    const first = await threadOf(a);
    await a.end();
    await waitFor(async () => {
      const c = await client(tunnel);
      const now = await threadOf(c);
      await c.end();
      return now !== first ? true : undefined;
    }, 'a new server connection after server_lifetime');
    expect(logins.length).toBeGreaterThanOrEqual(2);
  });

  it('serves the real mariadb client on a pooled connection', async () => {
    const { execa } = await import('execa');
    const mariadb = await findTool('mariadb', ['mysql']);
    const { tunnel } = await pooled();
    for (let i = 0; i < 2; i++) {
      const result = await execa(mariadb.path!, ['--no-defaults', '--protocol=TCP', '-h', tunnel.host, '-P', String(tunnel.port), '-u', tunnel.user, '--batch', '--skip-column-names', 'shop', '-e', 'select count(*) > 0 from customers; select @x; set @x = 1'], {
        env: { MYSQL_PWD: tunnel.password },
        extendEnv: false,
        timeout: 60_000,
      });
      expect(result.stdout.split('\n')).toEqual(['1', 'NULL']);
      // Back in the pool and reset before the next client: else that one may log in a second connection.
      await idle(tunnel, 1);
    }
    expect(tunnel.pool!.stats()[0]!.logins).toBe(1);
  });

  it('closes idle connections after idle_timeout, down to min_idle', async () => {
    const { tunnel } = await pooled({ idleTimeoutMs: 200, minIdle: 1 });
    const [a, b] = [await client(tunnel), await client(tunnel)];
    await a.end();
    await b.end();
    // Both back (none lent), one closed by idle_timeout, one kept for min_idle.
    await waitFor(() => {
      const [key] = tunnel.pool!.stats();
      return key && key.serversActive === 0 && key.serversIdle === 1 ? true : undefined;
    }, 'one idle connection left');
  });

  it('audits the queries of a pooled session', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const { tunnel } = await pooled({}, { audit });
    const c = await client(tunnel);
    await c.query('select 4242 as audited');
    await c.end();
    await waitFor(() => (audit.events.some((e) => JSON.stringify(e).includes('select 4242 as audited')) ? true : undefined), 'the query in the audit');
  });
});
