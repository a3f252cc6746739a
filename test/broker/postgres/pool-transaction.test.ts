import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import pg from 'pg';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import type { PoolKeyInfo, PostgresPoolLimits } from '../../../src/broker/postgres/pool/postgres-pool.js';
import type { PinReason } from '../../../src/broker/postgres/pool/pin-scanner.js';
import { encodeCancelRequest } from '../../../src/broker/postgres/codec/startup.js';

const broker = new BrokerFixture();
const LIMITS: PostgresPoolLimits = { mode: 'transaction', maxServerConnections: 1, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

beforeAll(() => broker.start());
afterAll(() => broker.stop());

interface Pooled {
  tunnel: Tunnel;
  logins: PoolKeyInfo[];
  pins: PinReason[];
}

async function pooled(limits: Partial<PostgresPoolLimits> = {}, overrides: Partial<TunnelOptions> = {}): Promise<Pooled> {
  const logins: PoolKeyInfo[] = [];
  const pins: PinReason[] = [];
  const tunnel = await broker.tunnel({
    target: broker.target('orders'),
    dbName: 'orders',
    pool: { ...LIMITS, ...limits },
    poolEvents: { onLogin: (info) => logins.push(info), onPin: (_info, reason) => pins.push(reason) },
    ...overrides,
  });
  return { tunnel, logins, pins };
}

async function client(t: Tunnel, overrides: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password, ...overrides });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** An unpooled session to the same server, for watching and killing. */
async function outsider(): Promise<pg.Client> {
  const direct = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' });
  return client(direct);
}

async function runningOnServer(sql: string): Promise<number> {
  const watcher = await outsider();
  try {
    return await waitFor(async () => {
      const rows = (await watcher.query("select pid from pg_stat_activity where query = $1 and state = 'active'", [sql])).rows;
      return rows[0]?.pid as number | undefined;
    }, `${sql} to run`);
  } finally {
    await watcher.end();
  }
}

const pid = async (c: pg.Client): Promise<number> => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
const keyStats = (t: Tunnel) => t.pool!.stats()[0];
const serversIdle = (t: Tunnel, count: number) => waitFor(() => (keyStats(t)?.serversIdle === count ? true : undefined), `${count} idle server connections`);

async function sendCancel(t: Tunnel, c: pg.Client): Promise<void> {
  const keys = c as unknown as { processID: number; secretKey: number };
  const secret = Buffer.alloc(4);
  secret.writeInt32BE(keys.secretKey);
  const socket = connect(t.port, t.host);
  await new Promise<void>((resolve) => socket.on('connect', () => socket.end(encodeCancelRequest(keys.processID, secret))).on('close', () => resolve()));
}

describe('PostgreSQL pooling, transaction mode, against emulated Azure', () => {
  it('lends one server connection to several clients, one transaction at a time', async () => {
    const { tunnel, logins } = await pooled();
    const a = await client(tunnel);
    const b = await client(tunnel);
    const first = await pid(a);
    expect(await pid(b)).toBe(first);
    await serversIdle(tunnel, 1);
    expect(keyStats(tunnel)).toMatchObject({ clientsConnected: 2, clientsActive: 0, serversIdle: 1 });
    await a.query('begin');
    await a.query("insert into customers (name, email) values ('txn', 'txn-a@example.com')");
    expect(keyStats(tunnel)).toMatchObject({ clientsConnected: 2, clientsActive: 1, serversActive: 1 });
    const waiting = b.query("select count(*)::int as n from customers where email = 'txn-a@example.com'");
    await waitFor(() => (keyStats(tunnel)?.clientsWaiting === 1 ? true : undefined), 'b to wait for the connection');
    await a.query('rollback');
    expect((await waiting).rows[0].n).toBe(0);
    expect(logins).toHaveLength(1);
    await a.end();
    await b.end();
  });

  it("applies each client's startup parameters on whichever connection it gets", async () => {
    const { tunnel } = await pooled();
    const a = await client(tunnel, { application_name: 'client-a', options: undefined });
    const b = await client(tunnel, { application_name: 'client-b' });
    const c = await client(tunnel);
    const settings = "select current_setting('application_name') as app, current_setting('TimeZone') as tz, pg_backend_pid() as pid";
    await a.query("select 1"); // nothing session-level: a stays unpinned
    for (let round = 0; round < 2; round++) {
      const [ra, rb, rc] = [(await a.query(settings)).rows[0], (await b.query(settings)).rows[0], (await c.query(settings)).rows[0]];
      expect(ra.app).toBe('client-a');
      expect(rb.app).toBe('client-b');
      expect(rc.app).toBe('');
      expect(new Set([ra.pid, rb.pid, rc.pid]).size).toBe(1);
    }
    await Promise.all([a.end(), b.end(), c.end()]);
  });

  it('refuses a client with 53300 when a transaction holds the only connection for max_client_wait', async () => {
    const { tunnel } = await pooled({ maxClientWaitMs: 300 });
    const holder = await client(tunnel);
    const other = await client(tunnel);
    await holder.query('begin');
    const error = await other.query('select 1').then(
      () => undefined,
      (e: Error & { code?: string; hint?: string }) => e,
    );
    expect(error?.code).toBe('53300');
    expect(error?.hint).toContain('pool.max_server_connections');
    await holder.query('commit');
    const next = await client(tunnel);
    expect((await next.query('select 1 as one')).rows[0].one).toBe(1);
    await Promise.all([holder.end(), next.end()]);
  });

  it('rolls back and reuses the connection of a client that leaves in the middle of a transaction', async () => {
    const { tunnel, logins } = await pooled();
    const leaver = await client(tunnel);
    const first = await pid(leaver);
    await leaver.query('begin');
    await leaver.query("insert into customers (name, email) values ('left', 'txn-left@example.com')");
    (leaver as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await serversIdle(tunnel, 1);
    const next = await client(tunnel);
    expect(await pid(next)).toBe(first);
    expect((await next.query("select count(*)::int as n from customers where email = 'txn-left@example.com'")).rows[0].n).toBe(0);
    await next.end();
    expect(logins).toHaveLength(1);
  });
});
