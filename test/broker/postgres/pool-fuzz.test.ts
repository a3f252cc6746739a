/**
 * Fuzzes pooled PostgreSQL sessions (session and transaction mode) after a real login: each
 * session logs in, opens a transaction that writes a row, then sends mutated regular messages.
 * Every session must end within a bound with only well-formed backend messages; a client that
 * shares the pool keeps getting correct answers throughout; afterwards no fuzzed row was
 * committed, no backend of azdb is left `idle in transaction`, no more than
 * max_server_connections exist, and the next client gets a clean connection.
 *
 * Replay a run with AZDB_FUZZ_SEED=<seed printed by the run>; AZDB_POOL_FUZZ_SESSIONS sets the count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { mutateBytes, seedFromEnv } from '../../helpers/prng.js';
import { BrokerFixture, JWT, sessionPrng, writeInPieces, eachConcurrently } from '../../helpers/broker-fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { cstring, encodeMessage, int32, parseBackend, rawLogin } from '../../helpers/pg-raw.js';
import type { PoolMode, PostgresPoolLimits } from '../../../src/broker/postgres/pool/postgres-pool.js';

const SEED = seedFromEnv('AZDB_FUZZ_SEED');
const SESSIONS = Number(process.env.AZDB_POOL_FUZZ_SESSIONS ?? 120);
const CONCURRENCY = 3;
const MAX_SERVERS = 2;
const SESSION_BOUND_MS = 30_000;

const broker = new BrokerFixture();

beforeAll(() => broker.start());
afterAll(() => broker.stop());

const query = (sql: string): Buffer => encodeMessage(0x51, cstring(sql));

function fuzzedStream(index: number): { bytes: Buffer; ops: string[] } {
  const prng = sessionPrng(SEED, index);
  const valid = [
    query('select 1'),
    encodeMessage(0x50, cstring(prng.pick(['', 'fuzz_stmt'])), cstring('select $1::int'), Buffer.from([0, 0])),
    encodeMessage(0x42, cstring(''), cstring(''), Buffer.from([0, 0, 0, 1]), int32(1), Buffer.from('7'), Buffer.from([0, 0])),
    encodeMessage(0x45, cstring(''), int32(0)),
    encodeMessage(0x53),
    query("select pg_catalog.set_config('application_name', 'fuzzed', false)"),
  ];
  const ops: string[] = [];
  const picked = Array.from({ length: 1 + prng.int(5) }, () => Buffer.from(prng.pick(valid)));
  if (prng.int(3) === 0) {
    const at = prng.int(picked.length);
    picked[at]![0] = prng.int(256);
    ops.push(`code(${at}=${picked[at]![0]})`);
  }
  const bytes = mutateBytes(prng, Buffer.concat(picked), ops, () => Buffer.concat([Buffer.from([prng.pick([0x51, 0x50, 0x42, prng.int(256)])]), int32(2 ** 31 - 1 - prng.int(3))]));
  return { bytes, ops };
}

describe.each<PoolMode>(['transaction', 'session'])('pooled PostgreSQL (%s mode) under fuzzed client bytes after login', (mode) => {
  it('gives the fuzzing client a protocol error, hands on only clean connections and serves everyone else', async () => {
    const limits: PostgresPoolLimits = { mode, maxServerConnections: MAX_SERVERS, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 60_000 };
    const tunnel = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: limits });
    const direct = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders' });
    const connect = async (t = tunnel): Promise<pg.Client> => {
      const c = new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password });
      c.on('error', () => {});
      await c.connect();
      return c;
    };
    const tag = `pool-fuzz-${mode}-${SEED}`;

    // In transaction mode a bystander shares the fuzzers' connections; in session mode it would
    // take one of the two for good, so it comes and goes.
    let stop = false;
    let checked = 0;
    const bystander = (async () => {
      for (let n = 0; !stop; n++) {
        const c = await connect();
        try {
          for (let i = 0; i < 5 && !stop; i++, checked++) {
            const row = (await c.query("select $1::int + 1 as next, current_setting('application_name') as app, pg_catalog.txid_current_if_assigned() as xid", [n * 10 + i])).rows[0];
            expect(row).toEqual({ next: n * 10 + i + 1, app: '', xid: null });
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
      const raw = await rawLogin(tunnel.port, tunnel.user, tunnel.database, tunnel.password);
      const opened = raw.received.length;
      raw.write(query(`begin; insert into customers (name, email) values ('fuzz', '${tag}-${index}@example.com')`));
      await raw.until((b) => (b.length > opened && b.subarray(opened).includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x54])) ? true : undefined), 'the insert in a transaction', 30_000);
      await writeInPieces(prng, raw, bytes);
      if (prng.int(3) === 0) raw.socket.destroy();
      else raw.socket.end();
      const result = await raw.finish(SESSION_BOUND_MS);
      try {
        if (result.ended === 'timeout') throw new Error(`no close within ${SESSION_BOUND_MS} ms`);
        if (JWT.test(result.received.toString('latin1'))) throw new Error('a token reached the client');
        parseBackend(result.received, { partial: true });
      } catch (error) {
        problems.push(`session ${index} [${ops.join(' ')}]: ${(error as Error).message}`);
      }
    });
    stop = true;
    await bystander;
    expect(problems, `seed ${SEED}`).toEqual([]);
    expect(checked).toBeGreaterThan(0);

    const watcher = await connect(direct);
    try {
      const server = async () =>
        (await watcher.query("select state from pg_stat_activity where usename = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'", [tunnel.user])).rows.map((r) => r.state as string);
      // A discarded connection's backend exits a little after azdb closes it.
      await waitFor(async () => {
        const states = await server();
        return states.length <= MAX_SERVERS && states.every((s) => s === 'idle') ? true : undefined;
      }, `at most ${MAX_SERVERS} backends of azdb, idle outside a transaction`, 30_000);
      expect((await watcher.query('select count(*)::int as n from customers where email like $1', [`${tag}-%`])).rows[0].n).toBe(0);
    } finally {
      await watcher.end();
    }
    const after = await Promise.all(Array.from({ length: MAX_SERVERS }, () => connect()));
    for (const c of after) {
      const row = (await c.query("select current_setting('application_name') as app, pg_catalog.txid_current_if_assigned() as xid")).rows[0];
      expect(row).toEqual({ app: '', xid: null });
    }
    await Promise.all(after.map((c) => c.end()));
    // The next mode's count starts from nothing.
    await tunnel.close();
    const closing = await connect(direct);
    try {
      await waitFor(async () => ((await closing.query("select count(*)::int as n from pg_stat_activity where usename = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'", [tunnel.user])).rows[0].n === 0 ? true : undefined), 'the pool to close its connections', 30_000);
    } finally {
      await closing.end();
    }
  }, 600_000);
});
