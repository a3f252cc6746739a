import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import { blockingAudit, expectNotReadWhileAuditWaits } from '../../helpers/audit-hold.js';
import type { PoolKeyInfo, PostgresPoolLimits } from '../../../src/broker/postgres/pool/postgres-pool.js';
import type { PinReason } from '../../../src/broker/postgres/pool/pin-scanner.js';
import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from '../../harness/tools.js';
import { cancelKeyOf, completeMessages, encodeMessage, rawLogin, sendCancel } from '../../helpers/pg-raw.js';

const broker = new BrokerFixture();
const pgbench = await findTool('pgbench');
const psql = await findTool('psql');
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

const cancel = (t: Tunnel, c: pg.Client): Promise<void> => sendCancel(t.port, t.host, cancelKeyOf(c));

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

  it("refuses a startup parameter the server rejects with the server's error, and lends the connection to the next client", async () => {
    const { tunnel, logins } = await pooled();
    const error = await client(tunnel, { statement_timeout: 'soon' as unknown as number }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(error?.code).toBe('22023');
    expect(error?.message).toContain('statement_timeout');
    const next = await client(tunnel);
    expect((await next.query("select current_setting('statement_timeout') as t")).rows[0].t).toBe('0');
    await next.end();
    expect(logins).toHaveLength(1);
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

  it("greets a new client from the key's last parameters without waiting for a busy pool", async () => {
    const { tunnel, logins } = await pooled({ maxClientWaitMs: 3_000 });
    const holder = await client(tunnel, { application_name: 'holder' });
    await holder.query('begin');
    // Every server connection is in a transaction: the login must not need one.
    const late = await client(tunnel, { application_name: 'late' });
    expect(keyStats(tunnel)).toMatchObject({ clientsConnected: 2, clientsWaiting: 0, serversActive: 1 });
    const query = late.query("select current_setting('application_name') as app");
    await waitFor(() => (keyStats(tunnel)?.clientsWaiting === 1 ? true : undefined), 'the late client to wait for its first query');
    await holder.query('commit');
    expect((await query).rows[0].app).toBe('late');
    expect(logins).toHaveLength(1);
    await Promise.all([holder.end(), late.end()]);
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

  it('pins a client that LISTENs: it keeps its connection, others wait, and the next session starts clean', async () => {
    const { tunnel, pins } = await pooled({ maxClientWaitMs: 300 });
    const listener = await client(tunnel);
    const other = await client(tunnel);
    await listener.query("select 'listen in a literal' as x -- listen in a comment");
    expect((await other.query('select 1 as one')).rows[0].one).toBe(1);
    expect(pins).toEqual([]);
    await listener.query('listen pool_jobs');
    expect(pins).toEqual(['listen']);
    expect(keyStats(tunnel)).toMatchObject({ clientsPinned: 1, clientsActive: 1 });
    const refused = await other.query('select 1').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(refused?.code).toBe('53300');
    const notified = new Promise<string | undefined>((resolve) => listener.on('notification', (n) => resolve(n.payload)));
    const admin = await outsider();
    await admin.query("notify pool_jobs, 'hello'");
    await admin.end();
    expect(await notified).toBe('hello');
    await listener.query("set work_mem = '7MB'");
    expect(pins).toEqual(['listen']);
    await listener.end();
    await serversIdle(tunnel, 1);
    const next = await client(tunnel);
    const state = (await next.query("select (select count(*)::int from pg_listening_channels()) as listening, current_setting('work_mem') as work_mem")).rows[0];
    expect(state).toEqual({ listening: 0, work_mem: '4MB' });
    expect(keyStats(tunnel)).toMatchObject({ clientsPinned: 0 });
    await next.end();
  });

  it('pins on a session SET but not on SET LOCAL', async () => {
    const { tunnel, pins } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    await a.query('begin');
    await a.query("set local work_mem = '7MB'");
    expect((await a.query("select current_setting('work_mem') as w")).rows[0].w).toBe('7MB');
    await a.query('commit');
    expect(pins).toEqual([]);
    await a.query("select set_config('work_mem', '6MB', true)");
    expect(pins).toEqual([]);
    await a.query("set work_mem = '7MB'");
    expect(pins).toEqual(['set']);
    // b would be handed a's connection (the one used last) if a had let it go.
    const b = await client(tunnel);
    const seen = (c: pg.Client) => c.query("select current_setting('work_mem') as w, pg_backend_pid() as pid").then((r) => r.rows[0] as { w: string; pid: number });
    const [ofA, ofB] = [await seen(a), await seen(b)];
    expect(ofA.w).toBe('7MB');
    expect(ofB.w).toBe('4MB');
    expect(ofB.pid).not.toBe(ofA.pid);
    await Promise.all([a.end(), b.end()]);
  });

  it('pins a client that prepares a named statement when max_prepared_statements is 0', async () => {
    const { tunnel, pins } = await pooled({ maxPreparedStatements: 0, maxServerConnections: 2 });
    const a = await client(tunnel);
    await a.query({ text: 'select $1::int as n', values: [1] });
    expect(pins).toEqual([]);
    expect((await a.query({ name: 'one', text: 'select $1::int as n', values: [2] })).rows[0].n).toBe(2);
    expect(pins).toEqual(['prepared_statement']);
    const b = await client(tunnel);
    expect(await pid(b)).not.toBe(await pid(a));
    expect((await a.query({ name: 'one', text: 'select $1::int as n', values: [3] })).rows[0].n).toBe(3);
    await Promise.all([a.end(), b.end()]);
  });

  it('routes a cancel to the connection running the client\'s query, and ignores one for a client between transactions', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 2 });
    const [sleeper, b, c] = [await client(tunnel), await client(tunnel), await client(tunnel)];
    const running = sleeper.query('select pg_sleep(30)').then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    await runningOnServer('select pg_sleep(30)');
    // The other clients share the second connection meanwhile.
    expect((await Promise.all([b.query('select 2 as n'), c.query('select 3 as n')])).map((r) => r.rows[0].n)).toEqual([2, 3]);
    await cancel(tunnel, sleeper);
    expect((await running)?.code).toBe('57014');
    expect((await sleeper.query('select 1 as one')).rows[0].one).toBe(1);

    // c is between transactions: its cancel must not reach b's query on a shared connection.
    // Long enough that a misrouted cancel, landing some time after the request is sent, still cuts it short.
    const sql = 'select pg_sleep(3), 7 as n';
    const long = b.query(sql);
    await runningOnServer(sql);
    await cancel(tunnel, c);
    expect((await long).rows[0].n).toBe(7);
    await Promise.all([sleeper.end(), b.end(), c.end()]);
  });

  it('ends the session of a client whose server connection is killed mid-transaction, and heals', async () => {
    const { tunnel, logins } = await pooled();
    const victim = await client(tunnel);
    const errors: Array<Error & { code?: string }> = [];
    victim.on('error', (e) => errors.push(e));
    await victim.query('begin');
    const victimPid = await pid(victim);
    const admin = await outsider();
    await admin.query('select pg_terminate_backend($1)', [victimPid]);
    await admin.end();
    await waitFor(() => (errors.length > 0 ? true : undefined), 'the victim to hear of it');
    expect(['57P01', '08006']).toContain(errors[0]!.code);
    await expect(victim.query('select 1')).rejects.toThrow();
    const next = await client(tunnel);
    expect(await pid(next)).not.toBe(victimPid);
    expect((await next.query('select 1 as one')).rows[0].one).toBe(1);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('keeps the session of a client whose connection is killed between its transactions: the next runs on another', async () => {
    const { tunnel, logins } = await pooled();
    const survivor = await client(tunnel);
    const errors: Error[] = [];
    survivor.on('error', (e) => errors.push(e));
    const before = await pid(survivor);
    await serversIdle(tunnel, 1);
    const admin = await outsider();
    await admin.query('select pg_terminate_backend($1)', [before]);
    await admin.end();
    await waitFor(() => ((keyStats(tunnel)?.serversIdle ?? 0) === 0 ? true : undefined), 'the pool to discard the killed connection');
    const after = await pid(survivor);
    expect(after).not.toBe(before);
    expect(errors).toEqual([]);
    expect(logins).toHaveLength(2);
    await survivor.end();
  });

  it("prepares a client's named statement again on another server connection, and shares it between clients", async () => {
    const { tunnel, pins, logins } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    const b = await client(tunnel);
    const named = (c: pg.Client, n: number) => c.query({ name: 'plus-one', text: 'select $1::int + 1 as n, pg_backend_pid() as pid', values: [n] }).then((r) => r.rows[0] as { n: number; pid: number });
    const first = await named(a, 1);
    expect(first.n).toBe(2);
    // b holds the connection a prepared on, so a's next run goes to a second one.
    await b.query('begin');
    expect(await pid(b)).toBe(first.pid);
    const second = await named(a, 41);
    expect(second).toMatchObject({ n: 42 });
    expect(second.pid).not.toBe(first.pid);
    // On b's connection the statement a prepared is there for b too (one server statement per text).
    expect((await named(b, 9)).n).toBe(10);
    const onB = (await b.query("select count(*)::int as n from pg_prepared_statements where name like 'azdb_s_%'")).rows[0].n as number;
    expect(onB).toBe(1);
    await b.query('commit');
    expect(pins).toEqual([]);
    expect(logins).toHaveLength(2);
    await Promise.all([a.end(), b.end()]);
  });

  it.skipIf(pgbench.skip).each(['extended', 'prepared'])('runs pgbench -M %s through the pool without a failed transaction', async (mode) => {
    const { tunnel, pins } = await pooled({ maxServerConnections: 2 });
    const dir = await mkdtemp(join(tmpdir(), 'azdb-pgbench-'));
    const script = join(dir, 'txn.sql');
    await writeFile(script, ['\\set n random(1, 1000)', 'BEGIN;', 'SELECT :n::int + 1;', 'SELECT count(*) FROM customers WHERE id > :n;', 'END;', 'SELECT :n::int * 2;', ''].join('\n'));
    // A thread per client: pgbench prepares with a blocking PQprepare, which would stall the other
    // clients of its thread (holding both server connections in a transaction) forever.
    const run = await execa(pgbench.path!, ['-n', '-M', mode, '-c', '4', '-j', '4', '-t', '40', '-f', script, '-h', tunnel.host, '-p', String(tunnel.port), '-U', tunnel.user, tunnel.database], {
      env: { PGPASSWORD: tunnel.password, PGSSLMODE: 'disable' },
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('number of transactions actually processed: 160/160');
    expect(run.stdout).toMatch(/number of failed transactions: 0 /);
    expect(pins).toEqual([]);
    expect(keyStats(tunnel)!.logins).toBeLessThanOrEqual(2);
  });

  it('under audit on_failure block, stops reading a client while the audit waits, and reads it again once it has room', async () => {
    const audit = blockingAudit();
    const { tunnel } = await pooled({}, { audit: audit.sink });
    const [held, other] = [await client(tunnel), await client(tunnel)];
    try {
      await expectNotReadWhileAuditWaits(audit, held, other);
    } finally {
      await Promise.all([held.end(), other.end()]);
    }
  });

  it('answers a malformed message with 08P01 to that client only', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 1 });
    const other = await client(tunnel);
    const raw = await rawLogin(tunnel.port, tunnel.user, tunnel.database, tunnel.password);
    const greeting = raw.received.length;
    // A Bind whose portal name runs to the end of the message.
    raw.write(Buffer.concat([encodeMessage(0x42, Buffer.from('no terminator')), encodeMessage(0x53)]));
    const { received } = await raw.finish();
    const error = completeMessages(received.subarray(greeting)).find((m) => m.code === 'E');
    expect(error?.payload.toString()).toContain('C08P01');
    expect((await other.query('select 1 as one')).rows[0].one).toBe(1);
    await other.end();
  });

  it('relays large results intact, also right after a statement it prepared again itself', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    const b = await client(tunnel);
    const big = { name: 'big', text: "select g, repeat(chr(65 + g % 26), 100000) as filler from generate_series(1, $1::int) g", values: [40] };
    const check = (rows: Array<{ g: number; filler: string }>) => {
      expect(rows).toHaveLength(40);
      for (const row of rows) expect(row.filler).toBe(String.fromCharCode(65 + (row.g % 26)).repeat(100000));
    };
    check((await a.query(big)).rows);
    await b.query('begin');
    check((await a.query(big)).rows); // on the other connection: prepared there first
    check((await b.query(big)).rows);
    await b.query('commit');
    await Promise.all([a.end(), b.end()]);
  });

  it('streams one large CopyData message through to the server intact', async () => {
    const { tunnel } = await pooled();
    const raw = await rawLogin(tunnel.port, tunnel.user, tunnel.database, tunnel.password);
    const readies = () => completeMessages(raw.received).filter((m) => m.code === 'Z').length;
    const run = async (sql: string) => {
      const before = readies();
      raw.write(encodeMessage(0x51, Buffer.from(`${sql}\0`)));
      await raw.until(() => (readies() > before ? true : undefined), sql, 30_000);
    };
    await run('begin');
    await run('create table azdb_txn_big_copy (t text)');
    raw.write(encodeMessage(0x51, Buffer.from('copy azdb_txn_big_copy from stdin\0')));
    await raw.until((b) => (completeMessages(b).some((m) => m.code === 'G') ? true : undefined), 'CopyInResponse');
    const size = 8 * 1024 * 1024;
    const row = Buffer.concat([Buffer.alloc(size, 'z'), Buffer.from('\n')]);
    const copying = readies();
    raw.write(Buffer.concat([encodeMessage(0x64, row), encodeMessage(0x63)]));
    await raw.until(() => (readies() > copying ? true : undefined), 'the end of COPY', 30_000);
    await run('select length(t) as n, md5(t) = md5(repeat(\'z\', ' + size + ')) as same from azdb_txn_big_copy');
    const data = completeMessages(raw.received).filter((m) => m.code === 'D').at(-1)!;
    const fields: string[] = [];
    for (let at = 2, i = 0; i < data.payload.readInt16BE(0); i++) {
      const length = data.payload.readInt32BE(at);
      fields.push(data.payload.toString('utf8', at + 4, at + 4 + length));
      at += 4 + length;
    }
    expect(fields).toEqual([String(size), 't']);
    expect(completeMessages(raw.received).filter((m) => m.code === 'E')).toEqual([]);
    await run('rollback');
    raw.write(encodeMessage(0x58, Buffer.alloc(0)));
    await raw.finish();
  });

  it('after DISCARD ALL sets the client parameters and prepared statements up again', async () => {
    const { tunnel, pins } = await pooled();
    const a = await client(tunnel, { application_name: 'keeps-its-name' });
    const named = () => a.query({ name: 'two', text: 'select 2 as n' }).then((r) => r.rows[0].n as number);
    expect(await named()).toBe(2);
    await a.query('discard all');
    expect((await a.query("select current_setting('application_name') as app")).rows[0].app).toBe('keeps-its-name');
    expect(await named()).toBe(2);
    expect(pins).toEqual([]);
    await a.end();
  });

  it.skipIf(psql.skip)('carries COPY in and out through psql, in and outside a transaction', async () => {
    const { tunnel } = await pooled();
    const rows = Array.from({ length: 50_000 }, (_, i) => `${i + 1}\t${'y'.repeat(i % 50)}`);
    const script = [
      'begin;',
      'create table azdb_txn_copy_probe (n int, t text);',
      'copy azdb_txn_copy_probe from stdin;',
      ...rows,
      '\\.',
      "select 'in:' || count(*) || ':' || sum(n) from azdb_txn_copy_probe;",
      'rollback;',
      "copy (select g, repeat('x', 1000) from generate_series(1, 20000) g) to stdout;",
      '',
    ].join('\n');
    const run = await execa(psql.path!, ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', tunnel.host, '-p', String(tunnel.port), '-U', tunnel.user, '-d', tunnel.database], {
      input: script,
      env: { PGPASSWORD: tunnel.password, PGSSLMODE: 'disable' },
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`in:50000:${(50_000 * 50_001) / 2}`);
    const copied = lines.slice(1).filter((l) => l.length > 0);
    expect(copied).toHaveLength(20_000);
    expect(copied[19_999]).toBe(`20000\t${'x'.repeat(1000)}`);
  });
});
