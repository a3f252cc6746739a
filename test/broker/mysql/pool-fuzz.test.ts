/**
 * Fuzzes pooled MySQL sessions (session and transaction mode) after a real login, over the run's
 * real MariaDB: each session logs in, starts a transaction that writes a row, then sends mutated
 * commands. Every session must end within a bound with only whole MySQL packets; a client that
 * shares the pool keeps getting correct answers throughout; afterwards no fuzzed row was
 * committed, no transaction of azdb's connections is left open, no more than
 * max_server_connections exist, and the next client gets a clean connection.
 *
 * Replay a run with AZDB_FUZZ_SEED=<seed printed by the run>; AZDB_POOL_FUZZ_SESSIONS sets the count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import { mutateBytes, seedFromEnv } from '../../helpers/prng.js';
import { BrokerFixture, JWT, sessionPrng, writeInPieces, eachConcurrently } from '../../helpers/broker-fixtures.js';
import { RawMySql, rawLogin } from '../../helpers/mysql-raw.js';
import { RawClient } from '../../helpers/pg-raw.js';
import { comQuery, comStmtPrepare } from '../../helpers/mysql-payloads.js';
import { Command } from '../../../src/broker/mysql/codec/commands.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { PacketDecoder, type Packet } from '../../../src/broker/mysql/codec/packet-decoder.js';
import { drain } from '../../helpers/decoders.js';
import { decodeErr } from '../../../src/broker/mysql/codec/responses.js';
import type { PoolMode } from '../../../src/broker/postgres/pool/postgres-pool.js';
import type { Tunnel } from '../../../src/broker/tunnel.js';

const mariadbd = await findTool('mariadbd');
const SEED = seedFromEnv('AZDB_FUZZ_SEED');
const SESSIONS = Number(process.env.AZDB_POOL_FUZZ_SESSIONS ?? 120);
const CONCURRENCY = 3;
const MAX_SERVERS = 2;
const SESSION_BOUND_MS = 30_000;
const FIRST_ID = 970_000;

const broker = new BrokerFixture();

function fuzzedStream(index: number): { bytes: Buffer; ops: string[] } {
  const prng = sessionPrng(SEED, index);
  const valid = [
    () => comQuery('select 1'),
    () => comQuery('set @fuzzed = 1'),
    () => comStmtPrepare('select ?'),
    () => Buffer.from([Command.StmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 3, 0, 7, 0, 0, 0]),
    () => Buffer.from([Command.Ping]),
    () => Buffer.from([Command.Quit]),
  ];
  const ops: string[] = [];
  const packets = Array.from({ length: 1 + prng.int(4) }, () => encodePacket(0, prng.pick(valid)()));
  if (prng.int(3) === 0) {
    const at = prng.int(packets.length);
    packets[at]![3] = prng.int(256);
    ops.push(`sequence(${at}=${packets[at]![3]})`);
  }
  const bytes = mutateBytes(prng, Buffer.concat(packets), ops, () => Buffer.from([0xff, 0xff, 0xff, 0, prng.pick([Command.Query, Command.StmtPrepare, prng.int(256)])]));
  return { bytes, ops };
}

/**
 * Whether a fuzzed stream holds a COM_REFRESH (a flipped command byte makes one): FLUSH commits
 * the open transaction implicitly, on any server, so that session may commit its own row.
 */
function mayCommitItself(bytes: Buffer): boolean {
  const decoder = new PacketDecoder({ maxPacketLength: 64 * 1024 * 1024 });
  decoder.push(bytes);
  try {
    for (let packet = decoder.next(); packet !== undefined; packet = decoder.next()) if (packet.payload[0] === Command.Refresh) return true;
  } catch {
    // Bytes azdb cannot frame end the session there; what came before was all it passed on.
  }
  return false;
}

async function command(raw: RawMySql, payload: Buffer): Promise<Packet> {
  raw.socket.write(encodePacket(0, payload));
  const answer = await raw.next(30_000);
  if (answer?.payload[0] !== 0) throw new Error(`expected OK, got ${answer ? decodeErr(answer.payload).message : 'a close'}`);
  return answer;
}

describe.skipIf(mariadbd.skip)('pooled MySQL under fuzzed client bytes after login', () => {
  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it.each<PoolMode>(['transaction', 'session'])('%s mode: gives the fuzzing client an ERR or a close, hands on only clean connections and serves everyone else', async (mode) => {
    const tunnel = await broker.tunnel({
      target: broker.target('shopdb'),
      dbName: 'shop',
      pool: { mode, maxServerConnections: MAX_SERVERS, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 60_000 },
    });
    const connect = () => mysql.createConnection({ host: tunnel.host, port: tunnel.port, user: tunnel.user, password: tunnel.password, database: tunnel.database, connectTimeout: 30_000 });
    const probe = await connect();
    const dbUser = String((await probe.query<mysql.RowDataPacket[]>('select substring_index(current_user(), "@", 1) as u'))[0][0]!.u);
    await probe.end();
    const base = FIRST_ID + (mode === 'session' ? 10_000 : 0);

    let stop = false;
    let checked = 0;
    const bystander = (async () => {
      for (let n = 0; !stop; n++) {
        const c = await connect();
        try {
          for (let i = 0; i < 5 && !stop; i++, checked++) {
            const [rows] = await c.query<mysql.RowDataPacket[]>('select ? + 1 as next, @fuzzed as fuzzed, @@in_transaction as txn', [n * 10 + i]);
            expect({ ...rows[0] }).toEqual({ next: n * 10 + i + 1, fuzzed: null, txn: 0 });
          }
        } finally {
          await c.end();
        }
      }
    })();

    const problems: string[] = [];
    await eachConcurrently(SESSIONS, CONCURRENCY, async (index) => {
      const prng = sessionPrng(SEED, index);
      const { bytes, ops } = fuzzedStream(index);
      const raw = await rawLogin(tunnel);
      await command(raw, comQuery('start transaction'));
      await command(raw, comQuery(`insert into customers (id, name, email) values (${base + index}, 'fuzz', 'pool-fuzz-${mode}-${index}@example.com')`));
      raw.socket.removeAllListeners('data');
      const client = new RawClient(raw.socket);
      await writeInPieces(prng, client, bytes);
      const destroyed = prng.int(3) === 0;
      if (destroyed) raw.socket.destroy();
      else raw.socket.end();
      const result = await client.finish(SESSION_BOUND_MS);
      try {
        if (result.ended === 'timeout') throw new Error(`no close within ${SESSION_BOUND_MS} ms`);
        if (JWT.test(result.received.toString('latin1'))) throw new Error('a token reached the client');
        const decoder = new PacketDecoder({ maxPacketLength: 64 * 1024 * 1024 });
        drain(decoder, result.received);
        if (decoder.rest().length > 0 && !destroyed && result.ended !== 'reset') throw new Error(`${decoder.rest().length} bytes of an unfinished packet`);
      } catch (error) {
        problems.push(`session ${index} [${ops.join(' ')}]: ${(error as Error).message}`);
      }
    });
    stop = true;
    await bystander;
    expect(problems, `seed ${SEED}`).toEqual([]);
    expect(checked).toBeGreaterThan(0);

    const mariadb = broker.azure.realMariaDb!;
    const ours = async () => (await mariadb.query('select id, command from information_schema.processlist where user = ?', [dbUser])) as unknown as Array<{ id: number; command: string }>;
    const openTransactions = async () => {
      const ids = (await ours()).map((p) => Number(p.id));
      if (ids.length === 0) return 0;
      const trx = (await mariadb.query(`select count(*) as n from information_schema.innodb_trx where trx_mysql_thread_id in (${ids.join(',')})`)) as unknown as Array<{ n: number }>;
      return Number(trx[0]!.n);
    };
    // A discarded connection leaves the processlist a little after azdb closes it. The limit is
    // per key, and the raw clients' key (capabilities, character set) is not mysql2's.
    const keys = tunnel.pool!.stats().length;
    const settled = async () => {
      const list = await ours();
      return list.length <= MAX_SERVERS * keys && list.every((p) => p.command === 'Sleep') && (await openTransactions()) === 0;
    };
    await waitFor(async () => ((await settled()) ? true : undefined), `at most ${MAX_SERVERS} connections of azdb per key, idle outside a transaction`, 30_000);
    const committed = (await mariadb.query('select id from shop.customers where id between ? and ?', [base, base + SESSIONS])) as unknown as Array<{ id: number }>;
    const committedBy = committed.map((row) => Number(row.id) - base).filter((index) => !mayCommitItself(fuzzedStream(index).bytes));
    expect(committedBy, 'sessions whose fuzzed row was committed without a FLUSH of their own').toEqual([]);

    const after = await Promise.all(Array.from({ length: MAX_SERVERS }, () => connect()));
    for (const c of after) {
      const [rows] = await c.query<mysql.RowDataPacket[]>('select @fuzzed as fuzzed, @@in_transaction as txn');
      expect({ ...rows[0] }).toEqual({ fuzzed: null, txn: 0 });
    }
    await Promise.all(after.map((c) => c.end()));
    // The next mode's count starts from nothing.
    await tunnel.close();
    await waitFor(async () => ((await ours()).length === 0 ? true : undefined), 'the pool to close its connections', 30_000);
  }, 600_000);
});
