/**
 * Fuzzes the MySQL broker with malformed client sessions: mutations (bit flips, truncations,
 * length and sequence-id corruption, garbage, huge lengths) of valid client byte streams
 * (HandshakeResponse41 with each plugin, SSLRequest, AuthSwitchResponse, commands), sent blind or
 * after reading the greeting, over many concurrent sockets. Every session must end within a
 * bound, everything the broker sends must parse as MySQL packets of the login phase with the
 * expected error codes, the upstream must never receive more than an SSLRequest in clear,
 * memory must stay flat, and a real login must work afterwards.
 *
 * The malformed sessions' upstream is a greeter that sends a real server's greeting and hangs up
 * on anything else (every session connects upstream first); one session in LOGGED_IN_EVERY logs
 * in for real through the emulated Azure front and sends mutated commands on to MariaDB.
 *
 * Replay a run with AZDB_MYSQL_SESSION_FUZZ_SEED=<printed seed>; AZDB_FUZZ_SESSIONS sets the count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import { mutateBytes, seedFromEnv, type Prng } from '../../helpers/prng.js';
import { BrokerFixture, JWT, USER, expectNoProblems, memory, sessionPrng, tally, writeInPieces, eachConcurrently } from '../../helpers/broker-fixtures.js';
import type { Listener } from '../../../src/broker/listener.js';
import { CLIENT_CAPABILITIES, RawMySql, loginResponse } from '../../helpers/mysql-raw.js';
import { runMySqlSession } from '../../../src/broker/mysql/session.js';
import { NO_AUDIT } from '../../../src/broker/audit.js';
import type { UpstreamTarget } from '../../../src/broker/target.js';
import { Capability } from '../../../src/broker/mysql/codec/constants.js';
import { Command } from '../../../src/broker/mysql/codec/commands.js';
import { comQuery, comStmtPrepare } from '../../helpers/mysql-payloads.js';
import { decodeHandshakeV10, encodeHandshakeV10, encodeSslRequest, type HandshakeV10 } from '../../../src/broker/mysql/codec/handshake.js';
import { PacketDecoder, type Packet } from '../../../src/broker/mysql/codec/packet-decoder.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { drain } from '../../helpers/decoders.js';
import { decodeErr } from '../../../src/broker/mysql/codec/responses.js';

const mariadbd = await findTool('mariadbd');
const PASSWORD = 'fuzz-tunnel-password';
const SEED = seedFromEnv('AZDB_MYSQL_SESSION_FUZZ_SEED');
const SESSIONS = Number(process.env.AZDB_FUZZ_SESSIONS ?? 20_000);
const CONCURRENCY = 50;
/** Short on the fuzz listener, so held malformed sessions end quickly. */
const HANDSHAKE_TIMEOUT_MS = 200;
/**
 * The real logins (token, TLS to the emulated front, MariaDB) share two loaded cores with 50
 * fuzzing sockets: they get the broker's own default deadline, not the fuzz listener's 200 ms.
 */
const REAL_LOGIN_HANDSHAKE_TIMEOUT_MS = 30_000;
/** A session may take the handshake timeout, the broker's 1 s linger after an error, and slack for a loaded machine. */
const SESSION_BOUND_MS = HANDSHAKE_TIMEOUT_MS + 1_000 + 10_000;
const LOGGED_IN_EVERY = 200;
/** Bad handshake (timeout), access denied, packet too large, out of order, read error, TLS (the greeter hangs up on TLS). */
const EXPECTED_CODES = new Set([1043, 1045, 1153, 1156, 1158, 1429]);
const SSL_REQUEST_PACKET_LENGTH = 36;

const broker = new BrokerFixture();
let token: string;
let fuzzListener: Listener;
let realListener: Listener;
let greeter: Server;
const greeterSockets = new Set<Socket>();
const greeterReceived: Buffer[] = [];
let realGreeting: Buffer;

// ---- Valid client streams -------------------------------------------------------------------

const packet = (sequenceId: number, payload: Buffer): Buffer => encodePacket(sequenceId, payload);
const fakeGreeting = (prng: Prng): HandshakeV10 => ({ ...decodeHandshakeV10(realGreeting.subarray(4)), authPluginData: prng.bytes(20) });
const sslRequest = (): Buffer => encodeSslRequest({ capabilities: CLIENT_CAPABILITIES, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 });

function login(prng: Prng, greeting: HandshakeV10, plugin = prng.pick(['mysql_native_password', 'caching_sha2_password', 'client_ed25519', 'mysql_clear_password'])): Buffer {
  return loginResponse(greeting, { user: prng.int(8) === 0 ? 'other' : USER, password: PASSWORD, plugin, database: prng.int(3) === 0 ? undefined : 'shop' });
}

function commands(prng: Prng): Buffer[] {
  const pick = [
    () => comQuery('select 1', 0),
    () => comStmtPrepare('select ?'),
    () => Buffer.from([Command.StmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 3, 0, 7, 0, 0, 0]),
    () => Buffer.from([Command.ChangeUser, ...Buffer.from('root\0'), 0, ...Buffer.from('shop\0')]),
    () => Buffer.from([Command.Ping]),
    () => Buffer.from([Command.Quit]),
  ];
  return Array.from({ length: 1 + prng.int(4) }, () => packet(0, prng.pick(pick)()));
}

/** Packets a client might send; `greeting` is what it answers (the real one when it waited for it). */
function template(prng: Prng, greeting: HandshakeV10): Buffer[] {
  switch (prng.int(6)) {
    case 0:
      return [packet(1, login(prng, greeting))];
    case 1:
      return [packet(1, sslRequest()), packet(2, login(prng, greeting))];
    case 2:
      return [packet(1, login(prng, greeting, 'client_ed25519')), packet(3, prng.bytes(20))];
    case 3:
      return [packet(1, login(prng, greeting, 'mysql_native_password')), ...commands(prng)];
    case 4:
      return [];
    default:
      return [packet(1, login(prng, greeting)), packet(3, prng.bytes(prng.int(40)))];
  }
}

// ---- Mutations ------------------------------------------------------------------------------

const SPECIAL_LENGTHS = [0, 1, 3, 4, 5, 32, 0xff, 0x100, 0xfffe, 0xffff, 0x10000, 256 * 1024, 256 * 1024 + 1, 0xfffffe, 0xffffff];

function mutate(prng: Prng, packets: Buffer[]): { bytes: Buffer; ops: string[] } {
  const ops: string[] = [];
  if (prng.int(20) === 0) {
    const n = 1 + prng.int(prng.int(10) === 0 ? 20_000 : 300);
    return { bytes: prng.bytes(n), ops: [`garbage(${n})`] };
  }
  const segs = packets.map((p) => Buffer.from(p));
  if (segs.length > 0 && prng.int(2) === 0) {
    const i = prng.int(segs.length);
    const own = segs[i]!.length - 4;
    const length = prng.pick([...SPECIAL_LENGTHS, Math.max(0, own - 1), own + 1, own + 1 + prng.int(100), prng.int(0x1000000)]);
    segs[i]!.writeUIntLE(length, 0, 3);
    ops.push(`length(${i}=${length})`);
  }
  if (segs.length > 0 && prng.int(4) === 0) {
    const i = prng.int(segs.length);
    segs[i]![3] = prng.int(256);
    ops.push(`sequence(${i}=${segs[i]![3]})`);
  }
  const bytes = mutateBytes(prng, Buffer.concat(segs), ops, () => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, prng.int(4)]), prng.bytes(prng.int(64))]));
  return { bytes, ops };
}

// ---- One session ----------------------------------------------------------------------------

type Action = 'end' | 'hold' | 'destroy';
type Ended = 'closed' | 'reset' | 'timeout';

interface RawResult {
  received: Buffer;
  ended: Ended;
  ms: number;
}

/** A socket that records what it gets until the peer closes (or the bound runs out). */
class RawClient {
  private readonly chunks: Buffer[] = [];
  private readonly started = Date.now();
  closed = false;
  private ended: Ended | undefined;
  private readonly done: Promise<void>;
  private waiter: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.waiter?.();
    });
    this.done = new Promise((resolve) => {
      socket.on('error', () => (this.ended ??= 'reset'));
      socket.on('close', () => {
        this.closed = true;
        this.ended ??= 'closed';
        this.waiter?.();
        resolve();
      });
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** The first packet (the greeting), or undefined when the broker closed first. */
  async firstPacket(timeoutMs: number): Promise<Buffer | undefined> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const all = Buffer.concat(this.chunks);
      if (all.length >= 4 && all.length >= 4 + all.readUIntLE(0, 3)) return all.subarray(4, 4 + all.readUIntLE(0, 3));
      if (this.closed || Date.now() > until) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  async finish(timeoutMs: number): Promise<RawResult> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    if (!this.closed) {
      this.ended = 'timeout';
      this.socket.destroy();
    }
    return { received: Buffer.concat(this.chunks), ended: this.ended ?? 'closed', ms: Date.now() - this.started };
  }
}

interface Outcome {
  index: number;
  ops: string[];
  action: Action;
  result: RawResult;
  code: number | undefined;
  problem: string | undefined;
}

async function malformedSession(index: number): Promise<Outcome> {
  const prng = sessionPrng(SEED, index);
  const client = await RawClient.connect(fuzzListener.port);
  // A quarter wait for the greeting and answer its scramble: their logins can be right.
  const informed = prng.int(4) === 0;
  const first = informed ? await client.firstPacket(2_000) : undefined;
  const greeting = first && first[0] === 0x0a ? decodeHandshakeV10(first) : fakeGreeting(prng);
  const valid = template(prng, greeting);
  const { bytes, ops } = prng.int(25) === 0 ? { bytes: Buffer.concat(valid), ops: ['none'] } : mutate(prng, valid);
  const action: Action = prng.pick(['end', 'end', 'end', 'hold', 'hold', 'destroy']);
  await writeInPieces(prng, client, bytes);
  if (action === 'end' && !client.closed) client.socket.end();
  if (action === 'destroy') setTimeout(() => client.socket.destroy(), prng.int(20));
  const result = await client.finish(SESSION_BOUND_MS);
  return judge(index, [informed ? 'informed' : 'blind', ...ops], action, result, true);
}

/** Logs in for real through the emulated front, then sends mutated commands on to MariaDB. */
async function loggedInSession(index: number): Promise<Outcome> {
  const prng = sessionPrng(SEED, index);
  const raw = await RawMySql.connect(realListener.port);
  const greeting = await raw.greeting();
  raw.send(1, loginResponse(greeting, { user: USER, password: PASSWORD, database: 'shop' }));
  const ok = await raw.next();
  if (ok?.payload[0] !== 0) throw new Error(`login failed: ${ok ? decodeErr(ok.payload).message : 'closed'}`);
  raw.socket.removeAllListeners('data');
  const client = new RawClient(raw.socket);
  const { bytes, ops } = mutate(prng, commands(prng));
  await writeInPieces(prng, client, bytes);
  client.socket.end();
  const result = await client.finish(10_000);
  return judge(index, ['logged-in', ...ops], 'end', result, false);
}

function judge(index: number, ops: string[], action: Action, result: RawResult, beforeLogin: boolean): Outcome {
  let problem: string | undefined;
  let code: number | undefined;
  try {
    if (result.ended === 'timeout') throw new Error(`no close within the bound (${result.ms} ms)`);
    if (result.received.includes(token) || JWT.test(result.received.toString('latin1'))) throw new Error('a token reached the client');
    const packets: Packet[] = [];
    const decoder = new PacketDecoder({ maxPacketLength: 64 * 1024 * 1024 });
    packets.push(...drain(decoder, result.received));
    const partial = action === 'destroy' || result.ended === 'reset';
    const unfinished = decoder.rest().length;
    if (unfinished > 0 && !partial) throw new Error(`${unfinished} bytes of an unfinished packet`);
    if (!beforeLogin) return { index, ops, action, result: { ...result, received: Buffer.alloc(0) }, code, problem };
    if (packets.length > 0 && packets[0]!.payload[0] !== 0x0a) throw new Error('the first packet is no greeting');
    const after = packets.slice(1);
    const odd = after.find((p) => ![0xff, 0xfe, 0x01].includes(p.payload[0]!));
    if (odd) throw new Error(`unexpected packet 0x${odd.payload[0]?.toString(16)} before a login`);
    const errs = after.filter((p) => p.payload[0] === 0xff);
    if (errs.length > 1) throw new Error('more than one ERR');
    if (errs.length === 1 && after.at(-1) !== errs[0]) throw new Error('packets after the ERR');
    if (errs[0]) {
      const err = decodeErr(errs[0].payload);
      code = err.code;
      if (!EXPECTED_CODES.has(err.code)) throw new Error(`unexpected error ${err.code} ${err.sqlState}: ${err.message}`);
    }
  } catch (error) {
    problem = (error as Error).message;
  }
  // Keep the bytes only where they explain a problem, so the run's own memory stays flat.
  return { index, ops, action, result: problem ? result : { ...result, received: Buffer.alloc(0) }, code, problem };
}

// ---- The run --------------------------------------------------------------------------------

async function realLogin(): Promise<void> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: realListener.port, user: USER, password: PASSWORD, database: 'shop', connectTimeout: 10_000 });
  try {
    const [rows] = await c.execute<mysql.RowDataPacket[]>('select ? + 1 as two', [1]);
    expect(rows[0]!.two).toBe(2);
  } finally {
    await c.end();
  }
}

function listenerFor(target: UpstreamTarget, handshakeTimeoutMs: number): Promise<Listener> {
  return broker.listener((socket) =>
    runMySqlSession(socket, {
      target,
      localPassword: PASSWORD,
      defaults: { dbUser: USER, dbName: 'shop' },
      authorize: () => ({ allowed: true }),
      getToken: broker.getToken,
      audit: NO_AUDIT,
      handshakeTimeoutMs,
    }),
  );
}

describe.skipIf(mariadbd.skip)('fuzzing the MySQL broker', () => {
  beforeAll(async () => {
    await broker.start();
    token = await broker.getToken();
    const shopdb = broker.target('shopdb');
    const probe = await RawMySql.connect(shopdb.port);
    const greeting = await probe.greeting();
    probe.close();
    realGreeting = encodePacket(0, encodeHandshakeV10(greeting));
    greeter = createServer((s) => {
      greeterSockets.add(s);
      s.on('close', () => greeterSockets.delete(s));
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        greeterReceived.push(d);
        s.destroy();
      });
      s.write(realGreeting);
    });
    await new Promise<void>((resolve) => greeter.listen(0, '127.0.0.1', resolve));
    fuzzListener = await listenerFor({ ...shopdb, port: (greeter.address() as { port: number }).port }, HANDSHAKE_TIMEOUT_MS);
    realListener = await listenerFor(shopdb, REAL_LOGIN_HANDSHAKE_TIMEOUT_MS);
    await realLogin();
  });

  afterAll(async () => {
    for (const s of greeterSockets) s.destroy();
    await new Promise<void>((resolve) => (greeter ? greeter.close(() => resolve()) : resolve()));
    await broker.stop();
  });

  it(`survives ${SESSIONS} malformed sessions, ${CONCURRENCY} at a time`, { timeout: 300_000 }, async () => {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 200; i++) outcomes.push(await malformedSession(SESSIONS + i));
    const before = memory();
    const started = Date.now();
    await eachConcurrently(SESSIONS, CONCURRENCY, async (index) => {
      outcomes.push(await (index % LOGGED_IN_EVERY === LOGGED_IN_EVERY - 1 ? loggedInSession(index) : malformedSession(index)));
    });
    const seconds = (Date.now() - started) / 1_000;
    await waitFor(() => fuzzListener.connections === 0 && realListener.connections === 0, 'every broker session to end', 10_000);
    await waitFor(() => greeterSockets.size === 0, 'every upstream connection to close', 10_000);
    const after = memory();

    const byCode = tally(outcomes, (o) => String(o.code ?? 'none'));
    const slowest = Math.max(...outcomes.map((o) => o.result.ms));
    const reachedTls = greeterReceived.length;
    console.log(
      [
        `mysql session fuzz seed ${SEED}: ${outcomes.length} sessions in ${seconds.toFixed(1)} s (${CONCURRENCY} concurrent, handshake timeout ${HANDSHAKE_TIMEOUT_MS} ms)`,
        `  outcomes: ${[...byCode].map(([k, v]) => `${k}=${v}`).join(' ')}; logins that reached the upstream's TLS step: ${reachedTls}`,
        `  slowest session ${slowest} ms; RSS ${before.rss} → ${after.rss} MiB, heap ${before.heap} → ${after.heap} MiB`,
      ].join('\n'),
    );
    expectNoProblems(outcomes);
    expect(outcomes).toHaveLength(SESSIONS + 200);
    expect(slowest).toBeLessThan(SESSION_BOUND_MS);
    // The upstream never got more than an SSLRequest in clear: no password, no token.
    expect(greeterReceived.length).toBeGreaterThan(0);
    for (const received of greeterReceived) {
      expect(received.readUIntLE(0, 3)).toBe(SSL_REQUEST_PACKET_LENGTH - 4);
      expect(received.readUInt32LE(4) & Capability.Ssl).toBe(Capability.Ssl);
      // What may follow in the same read is the TLS ClientHello (a handshake record), nothing else.
      if (received.length > SSL_REQUEST_PACKET_LENGTH) expect(received[SSL_REQUEST_PACKET_LENGTH]).toBe(0x16);
      expect(received.includes(token)).toBe(false);
    }
    expect(after.rss - before.rss).toBeLessThan(100);
    expect(after.heap - before.heap).toBeLessThan(32);

    await realLogin();
  });
});
