import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import type { PoolLimits } from '../../../src/broker/pool/pool-manager.js';
import type { PoolKeyInfo } from '../../../src/broker/postgres/pool/postgres-pool.js';
import { cancelKeyOf, sendCancel } from '../../helpers/pg-raw.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';
import { blockingAudit, expectNotReadWhileAuditWaits } from '../../helpers/audit-hold.js';
import { CLOUDS } from '../../../src/azure/clouds.js';

const broker = new BrokerFixture();
const LIMITS: PoolLimits = { maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

beforeAll(() => broker.start());
afterAll(() => broker.stop());

async function pooled(limits: Partial<PoolLimits> = {}, overrides: Partial<TunnelOptions> = {}): Promise<{ tunnel: Tunnel; logins: PoolKeyInfo[] }> {
  const logins: PoolKeyInfo[] = [];
  const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...LIMITS, ...limits }, poolEvents: { onLogin: (info) => logins.push(info) }, ...overrides });
  return { tunnel, logins };
}

async function client(t: Tunnel, overrides: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password, ...overrides });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Waits until `sql` runs on the server, seen from an unpooled session. */
async function runningOnServer(sql: string): Promise<void> {
  const outsider = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' });
  await waitFor(async () => {
    const watcher = await client(outsider);
    const active = (await watcher.query("select count(*)::int as n from pg_stat_activity where query = $1 and state = 'active'", [sql])).rows[0].n as number;
    await watcher.end();
    return active > 0 ? true : undefined;
  }, `${sql} to run`);
}

const pid = async (c: pg.Client): Promise<number> => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;

/** Waits until the pool holds `idle` idle connections (a released one is reset first). */
const idle = (t: Tunnel, count: number) => waitFor(() => (t.pool!.stats().reduce((n, s) => n + s.serversIdle, 0) === count ? true : undefined), `${count} idle server connections`);

describe('PostgreSQL pooling, session mode, against emulated Azure', () => {
  it('hands the next client the same server connection with the first client\'s state reset', async () => {
    const { tunnel, logins } = await pooled();
    const a = await client(tunnel, { application_name: 'client-a' });
    const first = await pid(a);
    await a.query("set work_mem = '7MB'");
    await a.query('create temp table scratch (n int)');
    await a.query('prepare two as select 2');
    await a.query('listen pool_channel');
    await a.query('begin');
    await a.query('insert into scratch values (1)');
    await a.end();
    await idle(tunnel, 1);

    const b = await client(tunnel, { application_name: 'client-b' });
    expect(await pid(b)).toBe(first);
    const state = await b.query(
      "select current_setting('work_mem') as work_mem, current_setting('application_name') as app, to_regclass('pg_temp.scratch') is null as no_temp," +
        ' (select count(*)::int from pg_prepared_statements) as prepared, (select count(*)::int from pg_listening_channels()) as listening, now() = statement_timestamp() as own_transaction',
    );
    expect(state.rows[0]).toEqual({ work_mem: '4MB', app: 'client-b', no_temp: true, prepared: 0, listening: 0, own_transaction: true });
    await b.end();
    expect(logins).toHaveLength(1);
  });

  it('under audit on_failure block, stops reading a session-mode client while the audit waits, and reads it again once it has room', async () => {
    const audit = blockingAudit();
    const { tunnel } = await pooled({}, { audit: audit.sink });
    const [held, other] = [await client(tunnel), await client(tunnel)];
    try {
      await expectNotReadWhileAuditWaits(audit, held, other);
    } finally {
      await Promise.all([held.end(), other.end()]);
    }
  });

  it('greets a pooled client with ParameterStatus, its own startup parameters and a BackendKeyData', async () => {
    const { tunnel } = await pooled();
    const warm = await client(tunnel);
    await warm.end();
    await idle(tunnel, 1);
    const c = await client(tunnel, { application_name: 'greeted' });
    const params = (c as unknown as { connectionParameters: unknown; processID: number; secretKey: number; _parameterStatus?: Record<string, string> });
    expect(typeof params.processID).toBe('number');
    expect((await c.query("select current_setting('application_name') as a")).rows[0].a).toBe('greeted');
    expect(params.processID).toBe(await pid(c));
    await c.end();
  });

  it('logs in per startup options (part of the key), which RESET keeps', async () => {
    const { tunnel, logins } = await pooled();
    const withOptions = await client(tunnel, { options: '-c work_mem=5MB' });
    const optionsPid = await pid(withOptions);
    await withOptions.query("set work_mem = '9MB'");
    await withOptions.end();
    await idle(tunnel, 1);
    const plain = await client(tunnel);
    expect(await pid(plain)).not.toBe(optionsPid);
    expect((await plain.query("select current_setting('work_mem') as w")).rows[0].w).toBe('4MB');
    await plain.end();
    const again = await client(tunnel, { options: '-c work_mem=5MB' });
    expect(await pid(again)).toBe(optionsPid);
    expect((await again.query("select current_setting('work_mem') as w")).rows[0].w).toBe('5MB');
    await again.end();
    expect(logins).toHaveLength(2);
  });

  it('refuses a startup parameter the server rejects with the server\'s error, and reuses the connection', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const error = await client(tunnel, { statement_timeout: 'soon' as unknown as number }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error?.code).toBe('22023');
    expect(error?.message).toContain('statement_timeout');
    const next = await waitFor(() => client(tunnel).catch(() => undefined), 'the connection to come back');
    expect((await next.query("select current_setting('statement_timeout') as t")).rows[0].t).toBe('0');
    await next.end();
    expect(logins).toHaveLength(1);
  });

  it('never shares a server connection between keys (two database names)', async () => {
    const { tunnel, logins } = await pooled();
    const orders = await client(tunnel);
    const ordersPid = await pid(orders);
    await orders.end();
    await idle(tunnel, 1);
    const inventory = await client(tunnel, { database: 'inventory' });
    expect(await pid(inventory)).not.toBe(ordersPid);
    expect((await inventory.query('select current_database() as db')).rows[0].db).toBe('inventory');
    await inventory.end();
    expect(logins.map((l) => l.dbName)).toEqual(['orders', 'inventory']);
    expect(new Set(logins.map((l) => l.identity)).size).toBe(1);
    expect(logins[0]!.identity).toMatch(/^oid:.+@.+/);
  });

  it('refuses a client with 53300 when the pool stays busy for max_client_wait', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1, maxClientWaitMs: 300 });
    const holder = await client(tunnel);
    const error = await client(tunnel).then(
      () => undefined,
      (e: Error & { code?: string; hint?: string }) => e,
    );
    expect(error?.code).toBe('53300');
    expect(error?.message).toContain('pooled server connections');
    expect(error?.hint).toContain('pool.max_server_connections');
    expect((await holder.query('select 1 as one')).rows[0].one).toBe(1);
    await holder.end();
  });

  it('serves waiting clients in the order they came', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const waiting = (n: number) => waitFor(() => (tunnel.pool!.stats()[0]?.clientsWaiting === n ? true : undefined), `${n} waiting clients`);
    const holder = await client(tunnel);
    const order: string[] = [];
    const first = client(tunnel).then((c) => (order.push('first'), c));
    await waiting(1);
    const second = client(tunnel).then((c) => (order.push('second'), c));
    await waiting(2);
    await holder.end();
    const f = await first;
    expect(order).toEqual(['first']);
    await f.end();
    const s = await second;
    expect(order).toEqual(['first', 'second']);
    await s.end();
  });

  it('takes a client that hangs up while it waits out of the queue', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const waiting = (n: number) => waitFor(() => ((tunnel.pool!.stats()[0]?.clientsWaiting ?? 0) === n ? true : undefined), `${n} waiting clients`);
    const holder = await client(tunnel);
    const holderPid = await pid(holder);
    const quitter = new pg.Client({ host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password });
    quitter.on('error', () => {});
    const quitting = quitter.connect().catch(() => {});
    await waiting(1);
    (quitter as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await quitting;
    await waiting(0);
    await holder.end();
    const next = await client(tunnel);
    expect(await pid(next)).toBe(holderPid);
    await next.end();
  });

  it('discards a server connection killed mid-session and serves the next client on a new one', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const victim = await client(tunnel);
    const victimPid = await pid(victim);
    const outsider = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' });
    const admin = await client(outsider);
    await admin.query('select pg_terminate_backend($1)', [victimPid]);
    await admin.end();
    await expect(victim.query('select 1')).rejects.toThrow();
    const next = await client(tunnel);
    expect(await pid(next)).not.toBe(victimPid);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('rolls back a transaction the client left open before the next client gets the connection', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const a = await client(tunnel);
    const first = await pid(a);
    await a.query('begin');
    await a.query("insert into customers (name, email) values ('left open', 'left-open@example.com')");
    await a.end();
    const b = await client(tunnel);
    expect(await pid(b)).toBe(first);
    expect((await b.query("select count(*)::int as n from customers where email = 'left-open@example.com'")).rows[0].n).toBe(0);
    await b.end();
  });

  it('closes a server connection that outlived server_lifetime and logs in a new one', async () => {
    const { tunnel, logins } = await pooled({ serverLifetimeMs: 300 });
    const a = await client(tunnel);
    const first = await pid(a);
    await a.end();
    await waitFor(async () => {
      const c = await client(tunnel);
      const now = await pid(c);
      await c.end();
      return now !== first ? true : undefined;
    }, 'a new server connection after server_lifetime');
    expect(logins.length).toBeGreaterThanOrEqual(2);
  });

  it('forwards a cancel to the server connection that runs the client\'s query', async () => {
    const { tunnel } = await pooled();
    const c = await client(tunnel);
    const running = c.query('select pg_sleep(30)').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    await runningOnServer('select pg_sleep(30)');
    await sendCancel(tunnel.port, tunnel.host, cancelKeyOf(c));
    expect((await running)?.code).toBe('57014');
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
    await c.end();
  });

  it('never hands on a connection whose client left in the middle of a query', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const leaver = await client(tunnel);
    const leaverPid = await pid(leaver);
    void leaver.query('select pg_sleep(1)').catch(() => {});
    await runningOnServer('select pg_sleep(1)');
    (leaver as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const next = await client(tunnel);
    expect(await pid(next)).not.toBe(leaverPid);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('relays large results and audits queries on a pooled connection, then reuses it', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const { tunnel, logins } = await pooled({}, { audit });
    const c = await client(tunnel);
    const big = await c.query("select g, repeat('x', 100000) as filler from generate_series(1, 50) g");
    expect(big.rows).toHaveLength(50);
    expect(big.rows[49].filler).toHaveLength(100000);
    await c.query({ text: 'select $1::int as n', values: [7] });
    await c.end();
    await idle(tunnel, 1);
    const again = await client(tunnel);
    expect((await again.query('select 1 as one')).rows[0].one).toBe(1);
    await again.end();
    expect(logins).toHaveLength(1);
    const events = audit.events.map((e) => e.event);
    expect(events.filter((e) => e === 'session.start')).toHaveLength(2);
    expect(audit.events.some((e) => e.event === 'query' && 'query' in e && String(e.query).includes('generate_series'))).toBe(true);
    expect(audit.events.some((e) => e.event === 'query' && 'query' in e && String(e.query).includes('$1::int'))).toBe(true);
  });

  it('logs a server connection in once for many clients, with the cached token', async () => {
    const { tunnel, logins } = await pooled();
    await broker.getToken();
    const fetchesBefore = broker.tokens.stats.fetches;
    const requestsBefore = broker.azure.identity.requests;
    for (let i = 0; i < 3; i++) {
      const c = await client(tunnel);
      await c.query('select 1');
      await c.end();
      await idle(tunnel, 1);
    }
    expect(logins).toHaveLength(1);
    expect(broker.tokens.stats.fetches).toBe(fetchesBefore);
    expect(broker.azure.identity.requests).toBe(requestsBefore);
  });
});

describe('PostgreSQL pooling: identities, reset, lifetime, tokens, healing', () => {
  it('never hands a connection logged in by one identity to a client with another\'s token: each logs in itself, under a key of its own', async () => {
    // A role of this test's own (the server is shared with other test files), mapped to identity A.
    const role = `pool_identity_${process.pid}`;
    const [oidA, oidB] = ['1a1a1a1a-0000-4000-8000-00000000000a', '2b2b2b2b-0000-4000-8000-00000000000b'];
    const server = broker.azure.realPostgres;
    await server.query("select pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [role, oidA]);
    const audience = CLOUDS.AzureCloud.databaseResource;
    const tokens = {
      A: await broker.azure.issueToken({ audience, objectId: oidA, appId: '1a1a1a1a-1111-4000-8000-00000000000a' }),
      B: await broker.azure.issueToken({ audience, objectId: oidB, appId: '2b2b2b2b-1111-4000-8000-00000000000b' }),
    };
    let who: 'A' | 'B' = 'A';
    const { tunnel, logins } = await pooled({}, { dbUser: role, getToken: async () => tokens[who] });
    try {
      const a = await client(tunnel);
      const pidA = await pid(a);
      await a.end();
      await idle(tunnel, 1);

      // B has no principal for this role: B's own login is refused by the server, and A's idle
      // connection (which would have let B in) stays A's.
      who = 'B';
      const refused = await client(tunnel).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(refused?.code).toBe('28P01');
      expect(tunnel.pool!.stats().map((s) => [s.info.identity.split('@')[0], s.serversIdle])).toEqual([[`oid:${oidA}`, 1]]);

      // The server now takes B for the role too (as a group principal takes each member): B gets a
      // connection of its own, A's stays idle beside it.
      await server.query('update pgaadauth.principals set object_id = $1 where rolname = $2', [oidB, role]);
      const b = await client(tunnel);
      expect(await pid(b)).not.toBe(pidA);
      expect((await b.query('select session_user as u')).rows[0].u).toBe(role);
      const keys = tunnel.pool!.stats().map((s) => ({ identity: s.info.identity.split('@')[0], active: s.serversActive, idle: s.serversIdle }));
      expect(keys).toEqual([
        { identity: `oid:${oidA}`, active: 0, idle: 1 },
        { identity: `oid:${oidB}`, active: 1, idle: 0 },
      ]);
      await b.end();
      expect(logins.map((l) => l.identity.split('@')[0])).toEqual([`oid:${oidA}`, `oid:${oidB}`]);
    } finally {
      await tunnel.close();
      await waitFor(async () => ((await server.query('select count(*)::int as n from pg_stat_activity where usename = $1', [role])).rows[0].n === 0 ? true : undefined), `the sessions of ${role} to end`);
      await server.query('delete from pgaadauth.principals where rolname = $1', [role]);
      await server.query(`drop role "${role}"`);
    }
  });

  it('releases the session\'s advisory locks before the next client gets the connection', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const a = await client(tunnel);
    const first = await pid(a);
    await a.query('select pg_advisory_lock(424242)');
    await a.end();
    await idle(tunnel, 1);
    const outsider = await client(await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' }));
    expect((await outsider.query('select pg_try_advisory_lock(424242) as got')).rows[0].got).toBe(true);
    await outsider.query('select pg_advisory_unlock(424242)');
    await outsider.end();
    const b = await client(tunnel);
    expect(await pid(b)).toBe(first);
    expect((await b.query("select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()")).rows[0].n).toBe(0);
    await b.end();
  });

  it('never closes a busy connection that outlives server_lifetime: its client keeps it, the next client gets a new one', async () => {
    const { tunnel, logins } = await pooled({ serverLifetimeMs: 300, maxServerConnections: 1 });
    const a = await client(tunnel);
    const first = await pid(a);
    // Busy on the server past the lifetime and past a sweep of the pool (every second).
    await a.query('select pg_sleep(1.5)');
    expect(await pid(a)).toBe(first);
    await a.end();
    const b = await client(tunnel);
    expect(await pid(b)).not.toBe(first);
    await b.end();
    expect(logins).toHaveLength(2);
  });

  it('fetches no token on the connection path: six clients over two server connections, two logins, all with the cached token', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 2 });
    await broker.getToken();
    const fetchesBefore = broker.tokens.stats.fetches;
    const requestsBefore = broker.azure.identity.requests;
    const first = [await client(tunnel), await client(tunnel)];
    const queued = [0, 1, 2, 3].map(() => client(tunnel).then(async (c) => (await c.query('select 1'), c.end())));
    await waitFor(() => (tunnel.pool!.stats()[0]?.clientsWaiting === 4 ? true : undefined), '4 clients waiting');
    await Promise.all(first.map((c) => c.end()));
    await Promise.all(queued);
    expect(logins).toHaveLength(2);
    expect(broker.tokens.stats.fetches).toBe(fetchesBefore);
    expect(broker.azure.identity.requests).toBe(requestsBefore);
  });

  it('discards a connection killed while idle (the pool heals) and serves the next client on a new one', async () => {
    const { tunnel, logins } = await pooled({ maxServerConnections: 1 });
    const a = await client(tunnel);
    const victim = await pid(a);
    await a.end();
    await idle(tunnel, 1);
    const admin = await client(await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' }));
    await admin.query('select pg_terminate_backend($1)', [victim]);
    await admin.end();
    await idle(tunnel, 0);
    const next = await client(tunnel);
    expect(await pid(next)).not.toBe(victim);
    expect((await next.query('select 1 as one')).rows[0].one).toBe(1);
    await next.end();
    expect(logins).toHaveLength(2);
  });
});
