/**
 * Fuzzes one broker listener with malformed client sessions: mutations (bit flips, truncations,
 * length-field corruption, garbage, huge lengths) of valid client byte streams (SSLRequest,
 * GSSENCRequest, CancelRequest, StartupMessage, SCRAM messages), over many concurrent sockets.
 * Every session must end within a bound, everything the broker sends back must parse as
 * PostgreSQL backend messages, memory must stay flat, and a real login must work afterwards.
 *
 * Replay a run with AZDB_FUZZ_SEED=<seed printed by the run>; AZDB_FUZZ_SESSIONS sets the count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { waitFor } from '../../helpers/wait.js';
import { mutateBytes, seedFromEnv, type Prng } from '../../helpers/prng.js';
import { BrokerFixture, JWT, USER, expectNoProblems, memory, sessionPrng, tally, writeInPieces, eachConcurrently } from '../../helpers/broker-fixtures.js';
import type { Listener } from '../../../src/broker/listener.js';
import { RawClient, parseBackend, rawLogin, type RawResult } from '../../helpers/pg-raw.js';
import { runPostgresSession } from '../../../src/broker/postgres/session.js';
import { CancelRegistry } from '../../../src/broker/cancel-registry.js';
import { NO_AUDIT } from '../../../src/broker/audit.js';
import { cstring, encodeMessage, int32 } from '../../../src/broker/postgres/codec/frames.js';
import { encodeSaslInitialResponse, encodeSaslResponse } from '../../../src/broker/postgres/codec/messages.js';
import { SCRAM_MECHANISM, ScramClient } from '../../../src/broker/postgres/scram.js';
import { encodeCancelRequest, encodeSslRequest, encodeStartupMessage, GSSENC_REQUEST_CODE } from '../../../src/broker/postgres/codec/startup.js';

const PASSWORD = 'fuzz-tunnel-password';
const SEED = seedFromEnv('AZDB_FUZZ_SEED');
const SESSIONS = Number(process.env.AZDB_FUZZ_SESSIONS ?? 20_000);
const CONCURRENCY = 50;
/** Short on the fuzz listener, so held malformed sessions end quickly. */
const HANDSHAKE_TIMEOUT_MS = 200;
/**
 * The real logins (token, TLS to the emulated front, SCRAM) share two loaded cores with 50
 * fuzzing sockets: they get a listener with the broker's own default deadline, not 200 ms.
 */
const REAL_LOGIN_HANDSHAKE_TIMEOUT_MS = 60_000;
/** A session may take the handshake timeout, the broker's 1 s linger after an error, and slack for a loaded machine. */
const SESSION_BOUND_MS = HANDSHAKE_TIMEOUT_MS + 1_000 + 10_000;
/** Sessions that log in for real and then send mutated messages on to PostgreSQL. */
const LOGGED_IN_EVERY = 200;
/** What a broker may answer before a login succeeds; any of these (or XX000) is a failure. */
const PRE_LOGIN_CODES = new Set(['R', 'E', 'v']);
const EXPECTED_SQLSTATES = new Set(['08P01', '0A000', '08006', '28000', '28P01']);

const broker = new BrokerFixture();
let token: string;
let listener: Listener;
let realListener: Listener;
let upstreamLogins = 0;

// ---- Valid client streams, as segments whose int32 length field offset is known -------------

interface Segment {
  bytes: Buffer;
  /** Offset of the int32 length: 0 for untyped startup packets, 1 for regular messages. */
  lengthAt: 0 | 1;
}

const packet = (bytes: Buffer): Segment => ({ bytes, lengthAt: 0 });
const message = (bytes: Buffer): Segment => ({ bytes, lengthAt: 1 });

function gssencRequest(): Buffer {
  return Buffer.concat([int32(8), int32(GSSENC_REQUEST_CODE)]);
}

function startup(prng: Prng): Buffer {
  const params: Record<string, string> = { user: USER, database: 'orders', application_name: 'fuzz' };
  if (prng.int(3) === 0) params.client_encoding = 'UTF8';
  const bytes = encodeStartupMessage(params);
  if (prng.int(4) === 0) bytes.writeInt32BE((3 << 16) | 2, 4); // protocol 3.2
  return bytes;
}

function scramMessages(prng: Prng): Segment[] {
  const client = new ScramClient(PASSWORD);
  const nonce = `${prng.bytes(18).toString('base64')}${prng.bytes(18).toString('base64')}`;
  const final = Buffer.from(`c=biws,r=${nonce},p=${prng.bytes(32).toString('base64')}`);
  return [message(encodeSaslInitialResponse(SCRAM_MECHANISM, client.first())), message(encodeSaslResponse(final))];
}

function template(prng: Prng): Segment[] {
  const sp = packet(startup(prng));
  switch (prng.int(8)) {
    case 0:
      return [packet(encodeSslRequest()), sp, ...scramMessages(prng)];
    case 1:
      return [sp, ...scramMessages(prng)];
    case 2:
      return [packet(gssencRequest()), packet(encodeSslRequest()), sp, ...scramMessages(prng)];
    case 3:
      return [packet(encodeCancelRequest(prng.int(2 ** 31), prng.bytes(4)))];
    case 4:
      return [packet(encodeSslRequest()), packet(encodeSslRequest()), packet(gssencRequest()), sp];
    case 5:
      return [sp, ...scramMessages(prng), message(encodeMessage(0x51, cstring('select 1'))), message(encodeMessage(0x58))];
    case 6:
      return [sp];
    default:
      return [packet(encodeSslRequest()), sp, scramMessages(prng)[0]!];
  }
}

// ---- Mutations ------------------------------------------------------------------------------

const SPECIAL_LENGTHS = [0, -1, -(2 ** 31), 2 ** 31 - 1, 1, 3, 4, 5, 7, 8, 9, 4_096, 4_097, 10_000, 10_001, 65_536, 2 ** 24];

function mutate(prng: Prng, segments: Segment[]): { bytes: Buffer; ops: string[] } {
  const ops: string[] = [];
  if (prng.int(20) === 0) {
    const n = 1 + prng.int(prng.int(10) === 0 ? 20_000 : 300);
    return { bytes: prng.bytes(n), ops: [`garbage(${n})`] };
  }
  // Length-field corruption first, while the segment boundaries are known.
  const segs = segments.map((s) => ({ ...s, bytes: Buffer.from(s.bytes) }));
  if (prng.int(2) === 0) {
    const seg = prng.pick(segs);
    const own = seg.bytes.length - seg.lengthAt;
    const length = prng.pick([...SPECIAL_LENGTHS, own - 1, own + 1, own + 1 + prng.int(100), prng.int(2 ** 32) | 0]);
    seg.bytes.writeInt32BE(length | 0, seg.lengthAt);
    ops.push(`length(${segs.indexOf(seg)}=${length | 0})`);
  }
  if (prng.int(4) === 0) {
    const seg = prng.pick(segs.filter((s) => s.lengthAt === 1).concat(segs[0]!));
    if (seg.lengthAt === 1) {
      seg.bytes[0] = prng.int(256);
      ops.push(`code(${segs.indexOf(seg)}=${seg.bytes[0]})`);
    } else {
      seg.bytes.writeInt32BE(prng.int(2 ** 32) | 0, 4);
      ops.push('startup-code');
    }
  }
  const bytes = mutateBytes(prng, Buffer.concat(segs.map((s) => s.bytes)), ops, () => Buffer.concat([Buffer.from([prng.pick([0x70, 0x51, 0x50, 0x42, prng.int(256)])]), int32(2 ** 31 - 1 - prng.int(3))]));
  return { bytes, ops };
}

// ---- One session ----------------------------------------------------------------------------

type Action = 'end' | 'hold' | 'destroy';

interface Outcome {
  index: number;
  ops: string[];
  action: Action;
  result: RawResult;
  sqlstate: string | undefined;
  problem: string | undefined;
}

async function malformedSession(index: number): Promise<Outcome> {
  const prng = sessionPrng(SEED, index);
  const { bytes, ops } = prng.int(25) === 0 ? { bytes: Buffer.concat(template(prng).map((s) => s.bytes)), ops: ['none'] } : mutate(prng, template(prng));
  const action: Action = prng.pick(['end', 'end', 'end', 'hold', 'hold', 'destroy']);
  const client = await RawClient.connect(listener.port);
  await writeInPieces(prng, client, bytes);
  if (action === 'end' && !client.closed) client.socket.end();
  if (action === 'destroy') setTimeout(() => client.socket.destroy(), prng.int(20));
  const result = await client.finish(SESSION_BOUND_MS);
  return judge(index, ops, action, result, PRE_LOGIN_CODES);
}

/** Logs in for real, then sends mutated regular messages on to PostgreSQL through the relay. */
async function loggedInSession(index: number): Promise<Outcome> {
  const prng = sessionPrng(SEED, index);
  const client = await rawLogin(realListener.port, USER, 'orders', PASSWORD);
  const valid = [
    message(encodeMessage(0x51, cstring('select 1'))),
    message(encodeMessage(0x50, cstring(''), cstring('select $1::int'), Buffer.from([0, 0]))),
    message(encodeMessage(0x42, cstring(''), cstring(''), Buffer.from([0, 0, 0, 1]), int32(1), Buffer.from('7'), Buffer.from([0, 0]))),
    message(encodeMessage(0x45, cstring(''), int32(0))),
    message(encodeMessage(0x53)),
  ];
  const { bytes, ops } = mutate(prng, valid);
  await writeInPieces(prng, client, bytes);
  client.socket.end();
  const result = await client.finish(10_000);
  return judge(index, ['logged-in', ...ops], 'end', result, undefined);
}

function judge(index: number, ops: string[], action: Action, result: RawResult, allowedCodes: Set<string> | undefined): Outcome {
  let problem: string | undefined;
  let sqlstate: string | undefined;
  try {
    if (result.ended === 'timeout') throw new Error(`no close within ${SESSION_BOUND_MS} ms`);
    if (result.received.includes(token) || JWT.test(result.received.toString('latin1'))) throw new Error('a token reached the client');
    const parsed = parseBackend(result.received, { partial: action === 'destroy' || result.ended === 'reset' });
    if (parsed.answers.length > 0 && !/^N+$/.test(parsed.answers)) throw new Error(`answers ${parsed.answers}`);
    if (allowedCodes) {
      const odd = parsed.messages.find((m) => !allowedCodes.has(m.code));
      if (odd) throw new Error(`unexpected message '${odd.code}' before a login`);
      if (parsed.errors.length > 1) throw new Error('more than one ErrorResponse');
    }
    sqlstate = parsed.errors.at(-1)?.C;
    if (allowedCodes && sqlstate !== undefined && !EXPECTED_SQLSTATES.has(sqlstate)) {
      throw new Error(`unexpected SQLSTATE ${sqlstate}: ${parsed.errors.at(-1)?.M}`);
    }
  } catch (error) {
    problem = (error as Error).message;
  }
  // Keep the bytes only where they explain a problem, so the run's own memory stays flat.
  return { index, ops, action, result: problem ? result : { ...result, received: Buffer.alloc(0) }, sqlstate, problem };
}

// ---- The run --------------------------------------------------------------------------------

async function login(): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: realListener.port, user: USER, database: 'orders', password: PASSWORD, connectionTimeoutMillis: 10_000 });
  c.on('error', () => {});
  try {
    await c.connect();
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
  } finally {
    await c.end().catch(() => {});
  }
}

beforeAll(async () => {
  await broker.start();
  token = await broker.getToken();
  const target = broker.target('orders');
  const cancels = new CancelRegistry();
  const listenerWith = (handshakeTimeoutMs: number) =>
    broker.listener((socket) =>
      runPostgresSession(socket, {
        target,
        localPassword: PASSWORD,
        defaults: { dbUser: USER, dbName: 'orders' },
        authorize: () => ({ allowed: true }),
        getToken: () => {
          upstreamLogins += 1;
          return broker.getToken();
        },
        audit: NO_AUDIT,
        cancels,
        handshakeTimeoutMs,
      }),
    );
  listener = await listenerWith(HANDSHAKE_TIMEOUT_MS);
  realListener = await listenerWith(REAL_LOGIN_HANDSHAKE_TIMEOUT_MS);
  await login();
});

afterAll(() => broker.stop());

describe('fuzzing the PostgreSQL broker', () => {
  it(`survives ${SESSIONS} malformed sessions, ${CONCURRENCY} at a time`, { timeout: 120_000 }, async () => {
    // Warm up (JIT, pools) before taking the first memory sample.
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 200; i++) outcomes.push(await malformedSession(SESSIONS + i));
    const before = memory();
    const started = Date.now();
    const samples: number[] = [];
    await eachConcurrently(SESSIONS, CONCURRENCY, async (index) => {
      outcomes.push(await (index % LOGGED_IN_EVERY === LOGGED_IN_EVERY - 1 ? loggedInSession(index) : malformedSession(index)));
      if (index % 5_000 === 0) samples.push(Math.round(process.memoryUsage().rss / 2 ** 20));
    });
    const seconds = (Date.now() - started) / 1_000;
    await waitFor(() => listener.connections === 0 && realListener.connections === 0, 'every broker session to end', 10_000);
    const after = memory();

    const count = (f: (o: Outcome) => boolean) => outcomes.filter(f).length;
    const byState = tally(outcomes, (o) => o.sqlstate ?? 'none');
    const slowest = Math.max(...outcomes.map((o) => o.result.ms));
    console.log(
      [
        `fuzz seed ${SEED}: ${outcomes.length} sessions in ${seconds.toFixed(1)} s (${CONCURRENCY} concurrent, handshake timeout ${HANDSHAKE_TIMEOUT_MS} ms)`,
        `  outcomes: ${[...byState].map(([k, v]) => `${k}=${v}`).join(' ')}; closed=${count((o) => o.result.ended === 'closed')} reset=${count((o) => o.result.ended === 'reset')}`,
        `  slowest session ${slowest} ms; upstream logins ${upstreamLogins}; RSS ${before.rss} → ${after.rss} MiB, heap ${before.heap} → ${after.heap} MiB (RSS samples ${samples.join(', ')})`,
      ].join('\n'),
    );

    expectNoProblems(outcomes);
    expect(outcomes).toHaveLength(SESSIONS + 200);
    expect(slowest).toBeLessThan(SESSION_BOUND_MS);
    expect(after.rss - before.rss).toBeLessThan(100);
    expect(after.heap - before.heap).toBeLessThan(32);
    expect(listener.connections + realListener.connections).toBe(0);
    // The upstream is reached only by the sessions that logged in for real (and rare lucky mutants).
    expect(upstreamLogins).toBeLessThan(SESSIONS / 20);

    await login();
  });
});
