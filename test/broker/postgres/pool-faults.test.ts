/**
 * Faults through a PostgreSQL transaction pool over the run's real PostgreSQL: a client that stops
 * reading mid-result holds its connection without azdb buffering the result, the others wait up
 * to max_client_wait and get 53300; a client that vanishes mid-result costs its connection, and
 * the pool heals; idle pooled connections whose backends die are never handed out; churn of
 * clients that vanish mid-transaction and mid-result leaves the server and azdb as they were.
 *
 * Replay the churn with AZDB_CHURN_SEED=<printed seed>; AZDB_CHURN_OPERATIONS sets its length.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { seedFromEnv } from '../../helpers/prng.js';
import { BrokerFixture, sessionPrng, eachConcurrently } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { cstring, encodeMessage, rawLogin } from '../../helpers/pg-raw.js';
import type { PostgresPoolLimits } from '../../../src/broker/postgres/pool/postgres-pool.js';
import type { Tunnel } from '../../../src/broker/tunnel.js';

const broker = new BrokerFixture();
const CHURN_SEED = seedFromEnv('AZDB_CHURN_SEED');
const CHURN_OPERATIONS = Number(process.env.AZDB_CHURN_OPERATIONS ?? 1_500);
const openFds = (): number => readdirSync('/proc/self/fd').length;
const LIMITS: PostgresPoolLimits = { mode: 'transaction', maxServerConnections: 1, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };
/** Rows of 1 KiB: ~200 MiB that the server would send the slow client. */
const BIG_RESULT = "select repeat('x', 1024) from generate_series(1, 200000)";

beforeAll(() => broker.start());
afterAll(() => broker.stop());

async function client(t: Tunnel): Promise<pg.Client> {
  const c = new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function outsider(): Promise<pg.Client> {
  return client(await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' }));
}

const backendsOf = async (watcher: pg.Client, user: string) =>
  (await watcher.query("select pid, state, query from pg_stat_activity where usename = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'", [user])).rows as Array<{ pid: number; state: string; query: string }>;

describe('PostgreSQL transaction pool under faults', () => {
  it('pauses the server for a client that stops reading; others get 53300 in time, and the pool heals when it vanishes', async () => {
    const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...LIMITS, maxClientWaitMs: 500 } });
    const watcher = await outsider();
    const slow = await rawLogin(tunnel.port, tunnel.user, tunnel.database, tunnel.password);
    slow.socket.pause();
    slow.write(encodeMessage(0x51, cstring(BIG_RESULT)));
    // The server blocks on its socket once azdb stops reading: the backend stays active on the query.
    await waitFor(async () => ((await backendsOf(watcher, tunnel.user)).some((b) => b.query === BIG_RESULT && b.state === 'active') ? true : undefined), 'the big query to run');
    const before = process.memoryUsage().rss;
    const started = Date.now();
    // A transaction pool lends a connection for the login's greeting too: the refusal may come there.
    const refused = await client(tunnel).then((other) => other.query('select 1').finally(() => other.end())).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(refused?.code).toBe('53300');
    expect(Date.now() - started).toBeLessThan(15_000);
    // Still held: azdb has not read the result into memory meanwhile (200 MiB would show).
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
    expect((await backendsOf(watcher, tunnel.user)).find((b) => b.query === BIG_RESULT)?.state).toBe('active');

    slow.socket.destroy();
    // Mid-result the connection cannot be reset: it is closed, and its backend goes.
    await waitFor(async () => ((await backendsOf(watcher, tunnel.user)).some((b) => b.query === BIG_RESULT) ? undefined : true), 'the slow client’s backend to go', 30_000);
    const next = await client(tunnel);
    expect((await next.query('select 41 + 1 as n')).rows[0].n).toBe(42);
    expect((await backendsOf(watcher, tunnel.user)).length).toBeLessThanOrEqual(1);
    await Promise.all([next.end(), watcher.end()]);
  });

  it('never hands out idle pooled connections whose backends died, and logs in anew', async () => {
    const logins: string[] = [];
    const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...LIMITS, maxServerConnections: 2 }, poolEvents: { onLogin: (info) => logins.push(info.dbUser) } });
    const [a, b] = [await client(tunnel), await client(tunnel)];
    await Promise.all([a.query('begin'), b.query('begin')]);
    const pooled = await Promise.all([a, b].map(async (c) => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number));
    await Promise.all([a.query('commit'), b.query('commit')]);
    expect(logins).toHaveLength(2);
    expect(new Set(pooled).size).toBe(2);
    const watcher = await outsider();
    await watcher.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [pooled]);
    await waitFor(() => (tunnel.pool!.stats()[0]?.serversIdle === 0 ? true : undefined), 'the pool to drop the dead connections', 30_000);
    const answers = await Promise.all([a, b].map(async (c) => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number));
    for (const pid of answers) expect(pooled).not.toContain(pid);
    expect(logins.length).toBeGreaterThan(2);
    await Promise.all([a.end(), b.end(), watcher.end()]);
  });

  it('a backend that dies under a transaction ends only that client; the client waiting for the slot gets a new connection', async () => {
    const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...LIMITS, maxClientWaitMs: 30_000 } });
    const holder = await client(tunnel);
    const waiter = await client(tunnel);
    await holder.query('begin');
    const dying = (await holder.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const waited = waiter.query('select pg_backend_pid() as pid');
    await waitFor(() => (tunnel.pool!.stats()[0]?.clientsWaiting === 1 ? true : undefined), 'the waiter to queue');
    const holderError = new Promise<Error & { code?: string }>((resolve) => holder.once('error', resolve));
    const watcher = await outsider();
    await watcher.query('select pg_terminate_backend($1)', [dying]);
    await watcher.end();
    expect(['57P01', '08006']).toContain((await holderError).code);
    const got = (await waited).rows[0].pid as number;
    expect(got).not.toBe(dying);
    await waiter.end();
    await holder.end().catch(() => {});
  });

  it('leaves no more than max_server_connections, nothing idle in transaction and no extra fds after churn', async () => {
    const MAX = 3;
    // Warm what a first login opens for good (the token cache's HTTP connections), then count;
    // the backends already there are the other tests' pools.
    const before = await outsider();
    const earlier = new Set((await backendsOf(before, (await before.query('select current_user as u')).rows[0].u as string)).map((b) => b.pid));
    await before.end();
    const baseline = openFds();
    const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...LIMITS, maxServerConnections: MAX, maxClientWaitMs: 60_000 } });
    const direct = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' });
    const tag = `churn-${CHURN_SEED}`;
    await eachConcurrently(CHURN_OPERATIONS, 8, async (index) => {
      // One generator per operation: the seed replays a run whatever order the workers take.
      const prng = sessionPrng(CHURN_SEED, index);
      const raw = await rawLogin(tunnel.port, tunnel.user, tunnel.database, tunnel.password);
      const kind = prng.int(4);
      if (kind === 0) raw.write(encodeMessage(0x51, cstring(`begin; insert into customers (name, email) values ('churn', '${tag}-${index}@example.com')`)));
      else if (kind === 1) raw.write(encodeMessage(0x51, cstring('select repeat(\'y\', 512) from generate_series(1, 20000)')));
      else if (kind === 2) raw.write(encodeMessage(0x51, cstring(`begin; select pg_sleep(0.0${prng.int(5)})`)));
      else raw.write(encodeMessage(0x51, cstring('select 1')));
      const seen = raw.received.length;
      // Gone somewhere between sending and the answer, or after part of it.
      if (prng.int(2) === 0) await raw.until((b) => (b.length > seen ? true : undefined), 'some answer', 30_000).catch(() => {});
      raw.socket.destroy();
      await raw.finish(30_000);
    });
    const watcher = await client(direct);
    await waitFor(async () => {
      const backends = (await backendsOf(watcher, tunnel.user)).filter((b) => !earlier.has(b.pid));
      return backends.length <= MAX && backends.every((b) => b.state === 'idle') ? true : undefined;
    }, `at most ${MAX} backends of azdb, none in a transaction`, 30_000);
    expect((await watcher.query('select count(*)::int as n from customers where email like $1', [`${tag}-%`])).rows[0].n).toBe(0);
    await watcher.end();
    const after = await client(tunnel);
    expect((await after.query('select 2 as two')).rows[0].two).toBe(2);
    await after.end();
    await Promise.all([tunnel.close(), direct.close()]);
    await waitFor(() => (openFds() <= baseline ? true : undefined), `azdb's fds back to ${baseline} (now ${openFds()})`, 30_000);
  }, 600_000);
});
