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
import type { PostgresPoolLimits } from '../../../src/broker/postgres/pool/postgres-pool.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';
import { userInfo } from 'node:os';
import { RawMySql, loginResponse } from '../../helpers/mysql-raw.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
const LIMITS: PostgresPoolLimits = { maxServerConnections: 1, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

async function pooled(limits: Partial<PostgresPoolLimits> = {}, overrides: Partial<TunnelOptions> = {}): Promise<{ tunnel: Tunnel; pins: string[]; logins: number[] }> {
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

  it('pins on COM_STMT_PREPARE with max_prepared_statements 0 (prepared statements keep their connection)', async () => {
    const { tunnel, pins } = await pooled({ maxServerConnections: 2, maxPreparedStatements: 0 });
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
  it('answers COM_CHANGE_USER against the greeting scramble on the connection it attaches, pins the client there, and closes that connection after it', async () => {
    const { tunnel, pins, logins } = await pooled();
    const a = await client(tunnel);
    const thread = await threadOf(a);
    await a.changeUser({ user: tunnel.user, password: tunnel.password, database: 'shop' });
    const [[row]] = await a.query<mysql.RowDataPacket[]>('select connection_id() as id, database() as db');
    expect(row).toEqual({ id: thread, db: 'shop' });
    expect(pins).toEqual(['change-user']);
    // A wrong password is refused as at a login (against the same scramble), and ends the session.
    await expect(a.changeUser({ user: tunnel.user, password: 'wrong', database: 'shop' })).rejects.toMatchObject({ errno: 1045 });
    a.destroy();
    const b = await client(tunnel);
    expect(await threadOf(b)).not.toBe(thread);
    await b.end();
    expect(logins).toHaveLength(2);
  });

  describe('prepared statements mapped across server connections', () => {
    const SUM = 'select ? + ? as sum';
    const idOf = (statement: unknown): number => (statement as { statement: { id: number } }).statement.id;

    it('re-prepares a client statement on the connection it gets after another client held its first one; its id stays', async () => {
      const { tunnel, pins, logins } = await pooled({ maxServerConnections: 2 });
      const a = await client(tunnel);
      const b = await client(tunnel);
      const statement = await a.prepare(SUM);
      const [first] = (await statement.execute([40, 2])) as [mysql.RowDataPacket[], unknown];
      expect(first[0]).toEqual({ sum: 42 });
      const firstThread = await threadOf(a);
      // b holds that connection in a transaction: a's next execute takes a second connection.
      await b.query('start transaction');
      expect(await threadOf(b)).toBe(firstThread);
      const [second] = (await statement.execute([1, 2])) as [mysql.RowDataPacket[], unknown];
      expect(second[0]).toEqual({ sum: 3 });
      expect(logins).toHaveLength(2);
      const prepared = (await broker.azure.realMariaDb!.query("select variable_value as n from information_schema.global_status where variable_name = 'Prepared_stmt_count'")) as unknown as Array<{ n: string }>;
      expect(Number(prepared[0]!.n)).toBeGreaterThanOrEqual(2);
      expect(idOf(statement)).toBe(1);
      const other = await a.prepare('select ? as echo');
      expect(idOf(other)).toBe(2);
      expect(((await other.execute(['x'])) as [mysql.RowDataPacket[], unknown])[0][0]).toEqual({ echo: 'x' });
      await b.query('rollback');
      expect(pins).toEqual([]);
      await a.end();
      await b.end();
    });

    it('closes a client statement: executing it again is refused as the server refuses an unknown one; others go on', async () => {
      const { tunnel, pins } = await pooled();
      const a = await client(tunnel);
      const kept = await a.prepare('select ? * 2 as twice');
      const closed = await a.prepare(SUM);
      await closed.close();
      const error = await closed.execute([1, 1]).then(
        () => undefined,
        (e: { errno?: number }) => e,
      );
      expect(error?.errno).toBe(1243);
      expect(((await kept.execute([21])) as [mysql.RowDataPacket[], unknown])[0][0]).toEqual({ twice: 42 });
      expect(pins).toEqual([]);
      await a.end();
    });

    it('re-prepares the statements of other clients after one resets the shared connection (COM_RESET_CONNECTION drops them)', async () => {
      const { tunnel, pins } = await pooled();
      const a = await client(tunnel);
      const b = await client(tunnel);
      const statement = await b.prepare(SUM);
      expect(((await statement.execute([40, 2])) as [mysql.RowDataPacket[], unknown])[0][0]).toEqual({ sum: 42 });
      expect(await threadOf(a)).toBe(await threadOf(b));
      await a.reset();
      expect(((await statement.execute([1, 2])) as [mysql.RowDataPacket[], unknown])[0][0]).toEqual({ sum: 3 });
      expect(pins).toEqual([]);
      await a.end();
      await b.end();
    });

    // The rewrite itself (types sent again) is checked in statement-mapper.test.ts: MariaDB 10.11
    // was seen to read these values right even without the types, so this cannot tell.
    it('executes with "new params bound" 0 after the statement moved to another connection', async () => {
      const { tunnel, pins, logins } = await pooled({ maxServerConnections: 2 });
      const raw = await RawMySql.connect(tunnel.port);
      const b = await client(tunnel);
      try {
        raw.send(1, loginResponse(await raw.greeting(), { user: tunnel.user, password: tunnel.password, database: 'shop' }));
        expect((await raw.next())?.payload[0]).toBe(0x00);
        raw.send(0, Buffer.concat([Buffer.from([0x16]), Buffer.from('select ? as v')]));
        const prepareOk = (await raw.next())!.payload;
        expect(prepareOk[0]).toBe(0x00);
        const id = prepareOk.readUInt32LE(1);
        // One parameter definition and one column definition follow (CLIENT_DEPRECATE_EOF: no EOFs).
        await raw.next();
        await raw.next();
        // A DOUBLE parameter, bound on the first connection only by the client.
        const executeWith = (types: boolean, value: number): Buffer => {
          const head = Buffer.alloc(10);
          head[0] = 0x17;
          head.writeUInt32LE(id, 1);
          head.writeUInt32LE(1, 6);
          const bytes = Buffer.alloc(8);
          bytes.writeDoubleLE(value);
          return Buffer.concat([head, Buffer.from([0, types ? 1 : 0]), types ? Buffer.from([0x05, 0]) : Buffer.alloc(0), bytes]);
        };
        const rowOf = async (): Promise<Buffer> => {
          const packets: Buffer[] = [];
          for (let p = await raw.next(); p && p.payload[0] !== 0xfe; p = await raw.next()) {
            if (p.payload[0] === 0xff && packets.length === 0) throw new Error(`ERR ${p.payload.subarray(9).toString()}`);
            packets.push(p.payload);
          }
          // column count, column definition, then the binary row: header, null bitmap, the value.
          return packets[2]!.subarray(2);
        };
        raw.send(0, executeWith(true, 42.5));
        expect((await rowOf()).readDoubleLE(0)).toBe(42.5);
        const thread = await threadOf(b);
        // b takes the connection the statement was prepared on: the next execute moves.
        await b.query('start transaction');
        expect(await threadOf(b)).toBe(thread);
        raw.send(0, executeWith(false, 43.25));
        expect((await rowOf()).readDoubleLE(0)).toBe(43.25);
        expect(logins).toHaveLength(2);
        await b.query('rollback');
        expect(pins).toEqual([]);
      } finally {
        raw.close();
        await b.end();
      }
    });

    it('serves 2 clients executing many statements over 2 server connections with correct results', async () => {
      const { tunnel, pins } = await pooled({ maxServerConnections: 2 });
      const clients = [await client(tunnel), await client(tunnel)];
      const work = clients.map(async (c, n) => {
        for (let i = 0; i < 60; i++) {
          // Every fifth round holds a connection through a transaction, moving the other client.
          if (i % 5 === 0) await c.query('start transaction');
          // Each client's own statement: on a connection where the other's holds the same server id, a wrong mapping shows.
          const [rows] = await c.execute<mysql.RowDataPacket[]>(`select ? * 2 as twice, ? as who, ${n} as n`, [i, `c${n}`]);
          expect(rows[0]).toEqual({ twice: i * 2, who: `c${n}`, n });
          if (i % 5 === 0) await c.query('commit');
        }
      });
      await Promise.all(work);
      expect(pins).toEqual([]);
      for (const c of clients) await c.end();
    });

    it('returns for parameters of several types what a direct connection returns', async () => {
      const { tunnel, pins } = await pooled({ maxServerConnections: 2 });
      const sql = 'select ? as i, ? as s, ? as n, ? as b, ? as d, ? as big';
      const params = [-7, 'héllo', null, Buffer.from([0, 1, 2, 255]), 2.5, '9007199254740993'];
      const direct = await mysql.createConnection({ socketPath: broker.azure.realMariaDb!.socketPath, user: userInfo().username });
      const [expected] = await direct.execute<mysql.RowDataPacket[]>(sql, params);
      await direct.end();
      const a = await client(tunnel);
      const b = await client(tunnel);
      const [once] = await a.execute<mysql.RowDataPacket[]>(sql, params);
      await b.query('start transaction');
      const [moved] = await a.execute<mysql.RowDataPacket[]>(sql, params);
      expect(once).toEqual(expected);
      expect(moved).toEqual(expected);
      await b.query('rollback');
      expect(pins).toEqual([]);
      await a.end();
      await b.end();
    });
  });
});
