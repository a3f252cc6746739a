/**
 * Faults through a MySQL transaction pool over the run's real MariaDB: a client that stops
 * reading mid-result holds its connection without azdb buffering the result, the others wait up
 * to max_client_wait and get ERR 1040; a client that vanishes mid-result costs its connection,
 * and the pool heals; idle pooled connections killed on the server are never handed out; churn
 * of clients that vanish mid-transaction and mid-result leaves the server and azdb as they were.
 *
 * Replay the churn with AZDB_CHURN_SEED=<printed seed>; AZDB_CHURN_OPERATIONS sets its length.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { seedFromEnv } from '../../helpers/prng.js';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { BrokerFixture, sessionPrng, eachConcurrently } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { rawLogin } from '../../helpers/mysql-raw.js';
import { comQuery } from '../../helpers/mysql-payloads.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import type { PoolLimits } from '../../../src/broker/pool/pool-manager.js';
import type { Tunnel } from '../../../src/broker/tunnel.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
const CHURN_SEED = seedFromEnv('AZDB_CHURN_SEED');
const CHURN_OPERATIONS = Number(process.env.AZDB_CHURN_OPERATIONS ?? 1_500);
const openFds = (): number => readdirSync('/proc/self/fd').length;

const LIMITS: PoolLimits = { maxServerConnections: 1, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };
/** Rows of 1 KiB: ~200 MiB that the server would send the slow client. */
const BIG_RESULT = "select repeat('x', 1024) from seq_1_to_200000";

function client(t: Tunnel): Promise<mysql.Connection> {
  return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, connectTimeout: 30_000 });
}

/** Connections that came through azdb (the harness's own log in as root). */
const processlist = async () =>
  (await broker.azure.realMariaDb!.query("select id, info from information_schema.processlist where user not in ('system user', 'root') and id <> connection_id()")) as unknown as Array<{ id: number; info: string | null }>;

describe.skipIf(mariadbd.skip)('MySQL transaction pool under faults', () => {
  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it('pauses the server for a client that stops reading; others get ERR 1040 in time, and the pool heals when it vanishes', async () => {
    const tunnel = await broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', pool: { ...LIMITS, mode: 'transaction', maxClientWaitMs: 500 } });
    const raw = await rawLogin(tunnel);
    // mysql2 shares the raw client's key only if it logs in alike: the waiting client is a raw one too.
    const other = await rawLogin(tunnel);

    raw.socket.pause();
    raw.socket.write(encodePacket(0, comQuery(BIG_RESULT)));
    await waitFor(async () => ((await processlist()).some((p) => p.info === BIG_RESULT) ? true : undefined), 'the big query to run');
    const before = process.memoryUsage().rss;
    const started = Date.now();
    other.socket.write(encodePacket(0, comQuery('select 1')));
    const refused = await other.next(30_000);
    expect(refused?.payload[0]).toBe(0xff);
    expect(refused!.payload.readUInt16LE(1)).toBe(1040);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
    expect((await processlist()).some((p) => p.info === BIG_RESULT)).toBe(true);

    raw.close();
    other.close();
    await waitFor(async () => ((await processlist()).some((p) => p.info === BIG_RESULT) ? undefined : true), 'the slow client’s query to go', 30_000);
    const next = await client(tunnel);
    const [rows] = await next.query<mysql.RowDataPacket[]>('select 41 + 1 as n');
    expect(Number(rows[0]!.n)).toBe(42);
    await next.end();
  });

  it('never hands out idle pooled connections killed on the server, and logs in anew', async () => {
    const tunnel = await broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', pool: { ...LIMITS, mode: 'transaction' } });
    const c = await client(tunnel);
    const thread = async () => Number((await c.query<mysql.RowDataPacket[]>('select connection_id() as id'))[0][0]!.id);
    const first = await thread();
    await waitFor(() => (tunnel.pool!.stats()[0]?.serversIdle === 1 ? true : undefined), 'the connection back in the pool');
    await broker.azure.realMariaDb!.query(`kill ${first}`);
    await waitFor(() => (tunnel.pool!.stats()[0]?.serversIdle === 0 ? true : undefined), 'the pool to drop the killed connection', 30_000);
    const second = await thread();
    expect(second).not.toBe(first);
    await c.end();
  });

  it('leaves no more than max_server_connections, no open transaction and no extra fds after churn', async () => {
    const MAX = 3;
    const mariadb = broker.azure.realMariaDb!;
    const earlier = new Set((await processlist()).map((p) => Number(p.id)));
    const baseline = openFds();
    const tunnel = await broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', pool: { ...LIMITS, mode: 'transaction', maxServerConnections: MAX, maxClientWaitMs: 60_000 } });
    const base = 960_000;
    await eachConcurrently(CHURN_OPERATIONS, 8, async (index) => {
      // One generator per operation: the seed replays a run whatever order the workers take.
      const prng = sessionPrng(CHURN_SEED, index);
      const raw = await rawLogin(tunnel);
      const kind = prng.int(4);
      if (kind === 0) {
        raw.socket.write(encodePacket(0, comQuery('start transaction')));
        await raw.next(30_000);
        raw.socket.write(encodePacket(0, comQuery(`insert into customers (id, name, email) values (${base + index}, 'churn', 'churn-${index}@example.com')`)));
      } else if (kind === 1) raw.socket.write(encodePacket(0, comQuery("select repeat('y', 512) from seq_1_to_20000")));
      else if (kind === 2) raw.socket.write(encodePacket(0, comQuery(`select sleep(0.0${prng.int(5)})`)));
      else raw.socket.write(encodePacket(0, comQuery('select 1')));
      if (prng.int(2) === 0) await raw.next(30_000).catch(() => undefined);
      raw.close();
      await raw.closed;
    });
    const ours = async () => (await processlist()).filter((p) => !earlier.has(Number(p.id)));
    await waitFor(async () => {
      const list = await ours();
      if (list.length > MAX) return undefined;
      if (list.length === 0) return true;
      const trx = (await mariadb.query(`select count(*) as n from information_schema.innodb_trx where trx_mysql_thread_id in (${list.map((p) => p.id).join(',')})`)) as unknown as Array<{ n: number }>;
      return Number(trx[0]!.n) === 0 ? true : undefined;
    }, `at most ${MAX} connections of azdb, none in a transaction`, 30_000);
    const committed = (await mariadb.query('select count(*) as n from shop.customers where id between ? and ?', [base, base + CHURN_OPERATIONS])) as unknown as Array<{ n: number }>;
    expect(Number(committed[0]!.n)).toBe(0);
    const after = await rawLogin(tunnel);
    after.socket.write(encodePacket(0, comQuery('select 1')));
    expect((await after.next(30_000))?.payload[0]).not.toBe(0xff);
    after.close();
    await after.closed;
    await tunnel.close();
    await waitFor(async () => ((await ours()).length === 0 ? true : undefined), 'the pool to close its connections', 30_000);
    await waitFor(() => (openFds() <= baseline ? true : undefined), `azdb's fds back to ${baseline} (now ${openFds()})`, 30_000);
  }, 600_000);
});
