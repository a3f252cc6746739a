/**
 * MySQL pooling in transaction mode against the emulated Azure Database for MySQL over the run's
 * real MariaDB: clients share server connections between transactions, pins keep session state
 * where it was made, KILL QUERY follows the client, a killed connection ends only its client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import type { PoolLimits } from '../../../src/broker/postgres/pool/pool-manager.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
const LIMITS: PoolLimits = { maxServerConnections: 1, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

async function pooled(limits: Partial<PoolLimits> = {}, overrides: Partial<TunnelOptions> = {}): Promise<{ tunnel: Tunnel; pins: string[]; logins: number[] }> {
  const pins: string[] = [];
  const logins: number[] = [];
  const tunnel = await broker.tunnel({
    target: broker.target('shopdb'),
    dbName: 'shop',
    audit: createMemoryAuditSink({ queries: false }),
    pool: { ...LIMITS, mode: 'transaction', ...limits },
    poolEvents: { onPin: (_info, reason) => pins.push(reason), onLogin: () => logins.push(1) },
    ...overrides,
  });
  return { tunnel, pins, logins };
}

function client(t: Tunnel, overrides: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: t.database || undefined, connectTimeout: 10_000, ...overrides });
}

const threadOf = async (c: mysql.Connection): Promise<number> => Number((await c.query<mysql.RowDataPacket[]>('select connection_id() as id'))[0][0]!.id);

const runningOn = async (sql: string): Promise<Array<{ id: number }>> =>
  (await broker.azure.realMariaDb!.query('select id from information_schema.processlist where info = ?', [sql])) as unknown as Array<{ id: number }>;

describe.skipIf(mariadbd.skip)('MySQL pooling, transaction mode, against emulated Azure over real MariaDB', () => {
  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it('lets two clients share one server connection between transactions, and keeps it through a transaction', async () => {
    const { tunnel, pins, logins } = await pooled();
    const a = await client(tunnel);
    const b = await client(tunnel);
    const shared = await threadOf(a);
    expect(await threadOf(b)).toBe(shared);
    await a.query('start transaction');
    await a.query("insert into customers (id, name, email) values (990001, 'in txn', 'txn-mode@example.com')");
    // b waits for the connection until a's transaction ends.
    let bDone = false;
    const bCount = b.query<mysql.RowDataPacket[]>("select count(*) as n from customers where email = 'txn-mode@example.com'").then(([rows]) => ((bDone = true), Number(rows[0]!.n)));
    await waitFor(() => (tunnel.pool!.stats()[0]?.clientsWaiting === 1 ? true : undefined), 'b to wait for the connection');
    expect(bDone).toBe(false);
    expect(await threadOf(a)).toBe(shared);
    await a.query('rollback');
    expect(await bCount).toBe(0);
    await a.end();
    await b.end();
    expect(pins).toEqual([]);
    expect(logins).toHaveLength(1);
  });

  it('streams a large result to one client while the other waits, and follows multi-statement results', async () => {
    const { tunnel } = await pooled();
    const a = await client(tunnel, { multipleStatements: true });
    const [rows] = await a.query<mysql.RowDataPacket[]>("select seq, repeat('x', 1000) as filler from seq_1_to_5000");
    expect(rows).toHaveLength(5000);
    const [multi] = await a.query<mysql.RowDataPacket[][]>('select 1 as a; select 2 as b');
    expect(multi).toHaveLength(2);
    // The same protocol (multi statements agreed) is the same key.
    const b = await client(tunnel, { multipleStatements: true });
    expect(await threadOf(b)).toBe(await threadOf(a));
    await a.end();
    await b.end();
  });

  it.each([
    ["set session sql_mode = 'ANSI'", 'set'],
    ["set @mark = 'mine'", 'user-variable'],
    ['create temporary table scratch (n int)', 'temporary-table'],
    ['lock tables customers read', 'lock-tables'],
    ["select get_lock('azdb-pin', 1)", 'get-lock'],
    ['select sql_calc_found_rows * from customers limit 1', 'found-rows'],
    ['select last_insert_id()', 'last-insert-id'],
    ["prepare s from 'select 1'", 'prepare'],
    ['use information_schema', 'use'],
  ])('pins a client after %s (%s): it keeps its connection, the others get another', async (sql, reason) => {
    const { tunnel, pins, logins } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    const thread = await threadOf(a);
    await a.query(sql);
    expect(pins).toEqual([reason]);
    const b = await client(tunnel);
    const other = await threadOf(b);
    expect(other).not.toBe(thread);
    expect(await threadOf(a)).toBe(thread);
    await b.end();
    await a.end();
    expect(logins).toHaveLength(2);
  });

  it('pins on COM_STMT_PREPARE (prepared statements keep their connection)', async () => {
    const { tunnel, pins } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    const [rows] = await a.execute<mysql.RowDataPacket[]>('select ? + ? as sum', [40, 2]);
    expect(rows[0]).toEqual({ sum: 42 });
    const [again] = await a.execute<mysql.RowDataPacket[]>('select ? + ? as sum', [1, 2]);
    expect(again[0]).toEqual({ sum: 3 });
    expect(pins).toEqual(['prepared-statement']);
    await a.end();
  });

  it('resets a pinned connection before the next client gets it', async () => {
    const { tunnel } = await pooled();
    const a = await client(tunnel);
    const thread = await threadOf(a);
    await a.query("set @mark = 'left behind'");
    await a.end();
    await waitFor(() => (tunnel.pool!.stats()[0]?.serversIdle === 1 ? true : undefined), 'the connection to be reset');
    const b = await client(tunnel);
    expect(await threadOf(b)).toBe(thread);
    expect((await b.query<mysql.RowDataPacket[]>('select @mark as mark'))[0][0]).toEqual({ mark: null });
    await b.end();
  });

  it('routes KILL QUERY of the client\'s minted id to the server thread it holds at that moment', async () => {
    const { tunnel } = await pooled({ maxServerConnections: 2 });
    const a = await client(tunnel);
    const running = a.query('select sleep(30) as slept').then(
      ([rows]) => Number((rows as mysql.RowDataPacket[])[0]!.slept),
      (e: { errno?: number }) => e.errno,
    );
    await waitFor(async () => ((await runningOn('select sleep(30) as slept')).length > 0 ? true : undefined), 'the sleep to run');
    const b = await client(tunnel);
    await b.query(`kill query ${a.threadId}`);
    expect([1, 1317]).toContain(await running);
    await b.end();
    await a.end();
  });

  it('answers a client whose server connection is killed mid-transaction with an ERR, ends its session, and heals', async () => {
    const { tunnel, logins } = await pooled();
    const victim = await client(tunnel);
    victim.on('error', () => {});
    await victim.query('start transaction');
    const thread = await threadOf(victim);
    await broker.azure.realMariaDb!.query(`kill ${thread}`);
    // The broker saw the connection go while the client sat idle in its transaction.
    await waitFor(() => ((tunnel.pool!.stats()[0]?.serversActive ?? 0) === 0 ? true : undefined), 'the killed connection to leave the pool');
    const error = await victim.query('select 1').then(
      () => undefined,
      (e: { errno?: number; message: string }) => e,
    );
    expect(error?.errno).toBe(1184);
    expect(error?.message).toContain('rolled back');
    const next = await client(tunnel);
    expect(await threadOf(next)).not.toBe(thread);
    await next.end();
    expect(logins).toHaveLength(2);
  });

  it('refuses a command with ERR 1040 when no connection comes free within max_client_wait', async () => {
    const { tunnel } = await pooled({ maxClientWaitMs: 300 });
    const holder = await client(tunnel);
    await holder.query('start transaction');
    const waiter = await client(tunnel);
    waiter.on('error', () => {});
    const error = await waiter.query('select 1').then(
      () => undefined,
      (e: { errno?: number; message: string }) => e,
    );
    expect(error?.errno).toBe(1040);
    expect(error?.message).toContain('pool.max_server_connections');
    await holder.query('commit');
    await holder.end();
  });

  it('keeps the connection after SET TRANSACTION through the next transaction, then hands it on', async () => {
    const { tunnel, pins } = await pooled();
    const a = await client(tunnel);
    const b = await client(tunnel);
    const thread = await threadOf(a);
    await a.query('set transaction isolation level serializable');
    let bDone = false;
    const bThread = threadOf(b).then((id) => ((bDone = true), id));
    await waitFor(() => (tunnel.pool!.stats()[0]?.clientsWaiting === 1 ? true : undefined), 'b to wait for the connection');
    await a.query('start transaction');
    await a.query('select count(*) from customers');
    expect(bDone).toBe(false);
    await a.query('commit');
    expect(await bThread).toBe(thread);
    expect(pins).toEqual([]);
    await a.end();
    await b.end();
  });

  it('rolls back the transaction of a client that leaves inside it, and hands the connection on', async () => {
    const { tunnel, logins } = await pooled();
    const a = await client(tunnel);
    const thread = await threadOf(a);
    await a.query('start transaction');
    await a.query("insert into customers (id, name, email) values (990002, 'left', 'txn-left@example.com')");
    await a.end();
    const b = await client(tunnel);
    expect(await threadOf(b)).toBe(thread);
    const [[row]] = await b.query<mysql.RowDataPacket[]>("select count(*) as n, @@in_transaction as t from customers where email = 'txn-left@example.com'");
    expect(row).toEqual({ n: 0, t: 0 });
    await b.end();
    expect(logins).toHaveLength(1);
  });
});
