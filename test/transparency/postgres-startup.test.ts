/**
 * The opening of a PostgreSQL connection, byte for byte: the same raw bytes sent to the real
 * PostgreSQL 17 and to azdb tunnels (plain, audited, session and transaction pools), and what came back compared — the answers to SSLRequest,
 * the refusals (a FATAL ErrorResponse, a protocol-2 error, or a close without a byte) and the
 * close. azdb's own refusals carry no source location (fields F, L, R of the server's C code),
 * the one thing normalised away; a reset and a clean close both count as "closed".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import { BrokerFixture, USER } from '../helpers/broker-fixtures.js';
import { RawClient, parseBackend, startupMessage, type RawResult } from '../helpers/pg-raw.js';
import { createMemoryAuditSink } from '../../src/broker/audit.js';
import { decodeErrorFields } from '../../src/broker/postgres/codec/messages.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from '../../src/broker/postgres/codec/startup.js';
import type { Tunnel } from '../../src/broker/tunnel.js';
import { describeTransparency, scenario, type Path } from './harness.js';

const broker = new BrokerFixture();
let plain: Tunnel;
let audited: Tunnel;
let sessionPool: Tunnel;
let transactionPool: Tunnel;

interface RawEndpoint {
  open(): Promise<RawClient>;
}

interface Observed {
  /** 'N'/'S' answers to SSLRequest and GSSENCRequest. */
  answers: string;
  /** ErrorResponse fields (protocol 3), a protocol-2 error's text, or the hex of anything else. */
  messages: unknown[];
  ended: 'closed' | 'timeout';
}

/** Fields of the server's C source (file, line, routine): azdb's own refusals have none. */
const SOURCE_FIELDS = new Set(['F', 'L', 'R']);

function observe(result: RawResult): Observed {
  const parsed = parseBackend(result.received, { answers: 'NS' });
  const messages = parsed.messages.map((m) => {
    if (m.code !== 'E') return { [m.code]: m.payload.toString('hex') };
    if (parsed.protocol2Error !== undefined) return { E2: parsed.protocol2Error };
    return { E: Object.fromEntries(Object.entries(decodeErrorFields(m.payload)).filter(([key]) => !SOURCE_FIELDS.has(key))) };
  });
  return { answers: parsed.answers, messages, ended: result.ended === 'timeout' ? 'timeout' : 'closed' };
}

function packet(code: number, body: Buffer = Buffer.alloc(0), length = 8 + body.length): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(length | 0, 0);
  head.writeInt32BE(code | 0, 4);
  return Buffer.concat([head, body]);
}

const params = (text: string) => Buffer.from(text.replaceAll('|', '\0'), 'latin1');
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** A script of writes; `end` half-closes afterwards, else the server must close by itself. */
function sends(chunks: Buffer[], options: { end?: boolean; awaitAnswer?: boolean } = {}) {
  return async (endpoint: RawEndpoint): Promise<Observed> => {
    const client = await endpoint.open();
    broker.sockets.add(client.socket);
    for (const [i, chunk] of chunks.entries()) {
      client.write(chunk);
      // Wait for the one-byte answer to an SSLRequest / GSSENCRequest before the next packet, as clients do.
      if (options.awaitAnswer && i < chunks.length - 1) await client.until((b) => (b.length > i ? true : undefined), 'the answer');
    }
    if (options.end) client.socket.end();
    return observe(await client.finish(10_000));
  };
}

const silent = (o: Observed) => expect(o).toEqual({ answers: '', messages: [], ended: 'closed' });
const fatal = (code: string, message: string) => (o: Observed) =>
  expect(o).toEqual({ answers: '', messages: [{ E: { S: 'FATAL', V: 'FATAL', C: code, M: message } }], ended: 'closed' });
const answeredThenFatal = (answers: string, code: string, message: string) => (o: Observed) =>
  expect(o).toEqual({ answers, messages: [{ E: { S: 'FATAL', V: 'FATAL', C: code, M: message } }], ended: 'closed' });
const MITM_DETAIL = 'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.';
const protocol2 = (version: string) => (o: Observed) =>
  expect(o).toEqual({ answers: '', messages: [{ E2: `FATAL:  unsupported frontend protocol ${version}: server supports 3.0 to 3.0\n` }], ended: 'closed' });

const direct: Path<RawEndpoint> = {
  name: 'PostgreSQL 17 (its Unix socket)',
  endpoint: () => ({ open: () => RawClient.attach(broker.azure.realPostgres.connectRaw()) }),
};
const tunnelPath = (name: string, tunnel: () => Tunnel): Path<RawEndpoint> => ({ name, endpoint: () => ({ open: () => RawClient.connect(tunnel().port) }) });

beforeAll(async () => {
  await broker.start();
  const tunnel = (queries: boolean) => broker.tunnel({ target: broker.target('orders'), dbName: 'orders', audit: createMemoryAuditSink({ queries }) });
  plain = await tunnel(false);
  audited = await tunnel(true);
  const pooled = (mode: 'session' | 'transaction') =>
    broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { mode, maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 } });
  sessionPool = await pooled('session');
  transactionPool = await pooled('transaction');
});

afterAll(() => broker.stop());

describeTransparency('PostgreSQL connection opening: azdb answers as PostgreSQL does', {
  direct,
  through: [
    tunnelPath('an azdb tunnel', () => plain),
    tunnelPath('an azdb tunnel with audit.queries', () => audited),
    tunnelPath('a session-mode pool', () => sessionPool),
    tunnelPath('a transaction-mode pool', () => transactionPool),
  ],
  scenarios: [
    // A driver that gives up before its StartupMessage (node-postgres: connect() then end()).
    scenario('Terminate before any StartupMessage, then a half-close', sends([TERMINATE], { end: true }), silent),
    scenario('Terminate before any StartupMessage, the connection left open', sends([TERMINATE]), silent),
    scenario('nothing at all, then a close', sends([], { end: true }), silent),
    scenario('half a length word, then a close', sends([Buffer.from([0, 0])], { end: true }), silent),
    scenario('a startup length of 7', sends([Buffer.from([0, 0, 0, 7, 0, 3, 0, 0])]), silent),
    scenario('a startup length of 0', sends([packet(3 << 16, Buffer.alloc(24), 0)]), silent),
    scenario('a negative startup length', sends([packet(3 << 16, Buffer.alloc(24), -1)]), silent),
    scenario('a startup length of 2^31-1', sends([packet(3 << 16, Buffer.alloc(24), 2 ** 31 - 1)]), silent),
    scenario('a startup packet one byte over the cap (10 005)', sends([packet(3 << 16, Buffer.alloc(10_005 - 8))]), silent),
    scenario('a StartupMessage cut short, then a close', sends([startupMessage(USER, 'orders').subarray(0, 20)], { end: true }), silent),
    scenario('a CancelRequest of 20 bytes', sends([packet(CANCEL_REQUEST_CODE, Buffer.alloc(12))]), silent),
    scenario('a CancelRequest for no session', sends([packet(CANCEL_REQUEST_CODE, Buffer.from([0, 0, 0x30, 0x39, 1, 2, 3, 4]))]), silent),
    scenario('a protocol 2.0 StartupMessage (296 bytes, as version 2 clients sent it)', sends([packet(2 << 16, Buffer.alloc(288), 296)]), protocol2('2.0')),
    scenario('a protocol 1.0 StartupMessage', sends([packet(1 << 16, params('user|postgres||'))]), protocol2('1.0')),
    scenario('a protocol 0.5 StartupMessage', sends([packet(5, params('user|postgres||'))]), protocol2('0.5')),
    scenario('a protocol 0.0 StartupMessage (answered in protocol 3)', sends([packet(0, params('user|postgres||'))]), fatal('0A000', 'unsupported frontend protocol 0.0: server supports 3.0 to 3.0')),
    scenario('a protocol 4.0 StartupMessage', sends([packet(4 << 16, params('user|postgres||'))]), fatal('0A000', 'unsupported frontend protocol 4.0: server supports 3.0 to 3.0')),
    scenario('an unknown request code 1234.9', sends([packet((1234 << 16) | 9)]), fatal('0A000', 'unsupported frontend protocol 1234.9: server supports 3.0 to 3.0')),
    scenario('a StartupMessage without a user', sends([packet(3 << 16, params('database|orders||'))]), fatal('28000', 'no PostgreSQL user name specified in startup packet')),
    scenario('a StartupMessage of exactly 10 004 bytes (the cap) without a user', sends([packet(3 << 16, Buffer.concat([params('database|'), Buffer.alloc(10_004 - 8 - 9 - 2, 0x61), Buffer.from([0, 0])]))]), fatal('28000', 'no PostgreSQL user name specified in startup packet')),
    scenario('a StartupMessage without its terminator', sends([packet(3 << 16, params(`user|${USER}|`))]), fatal('08P01', 'invalid startup packet layout: expected terminator as last byte')),
    scenario('a StartupMessage with a name and no value', sends([packet(3 << 16, params(`user|${USER}|database`))]), fatal('08P01', 'invalid startup packet layout: expected terminator as last byte')),
    scenario('a StartupMessage with bytes after its terminator', sends([packet(3 << 16, params(`user|${USER}||x`))]), fatal('08P01', 'invalid startup packet layout: expected terminator as last byte')),
    scenario('an SSLRequest of 12 bytes, then a close', sends([packet(SSL_REQUEST_CODE, Buffer.alloc(4))], { end: true }), (o) => expect(o).toEqual({ answers: 'N', messages: [], ended: 'closed' })),
    scenario('a GSSENCRequest, then a close', sends([packet(GSSENC_REQUEST_CODE)], { end: true }), (o) => expect(o).toEqual({ answers: 'N', messages: [], ended: 'closed' })),
    scenario(
      'an SSLRequest with a StartupMessage pipelined behind it',
      sends([Buffer.concat([packet(SSL_REQUEST_CODE), startupMessage(USER, 'orders')])]),
      (o) => expect(o).toEqual({ answers: 'N', messages: [{ E: { S: 'FATAL', V: 'FATAL', C: '08P01', M: 'received unencrypted data after SSL request', D: MITM_DETAIL } }], ended: 'closed' }),
    ),
    scenario(
      "an SSLRequest answered 'N', then a second SSLRequest",
      sends([packet(SSL_REQUEST_CODE), packet(SSL_REQUEST_CODE)], { awaitAnswer: true }),
      answeredThenFatal('N', '0A000', 'unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0'),
    ),
    scenario(
      "a GSSENCRequest answered 'N', then an SSLRequest, then a StartupMessage without a user",
      sends([packet(GSSENC_REQUEST_CODE), packet(SSL_REQUEST_CODE), packet(3 << 16, params('database|orders||'))], { awaitAnswer: true }),
      (o) => expect(o).toMatchObject({ answers: 'NN', messages: [{ E: { C: '28000' } }] }),
    ),
    scenario(
      "a GSSENCRequest answered 'N', then a second GSSENCRequest",
      sends([packet(GSSENC_REQUEST_CODE), packet(GSSENC_REQUEST_CODE)], { awaitAnswer: true }),
      answeredThenFatal('N', '0A000', 'unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0'),
    ),
    scenario(
      'a GSSENCRequest with a StartupMessage pipelined behind it',
      sends([Buffer.concat([packet(GSSENC_REQUEST_CODE), startupMessage(USER, 'orders')])]),
      (o) => expect(o).toEqual({ answers: 'N', messages: [{ E: { S: 'FATAL', V: 'FATAL', C: '08P01', M: 'received unencrypted data after GSSAPI encryption request', D: MITM_DETAIL } }], ended: 'closed' }),
    ),
    scenario(
      "an SSLRequest answered 'N', then a StartupMessage without a user",
      sends([packet(SSL_REQUEST_CODE), packet(3 << 16, params('database|orders||'))], { awaitAnswer: true }),
      (o) => expect(o).toMatchObject({ answers: 'N', messages: [{ E: { C: '28000' } }] }),
    ),
  ],
});

describe('a pg client that ends before it has connected', () => {
  /** What the driver reports when `end()` follows `connect()` at once (it sends Terminate first). */
  async function connectThenEnd(config: pg.ClientConfig): Promise<{ errors: string[]; connect: string }> {
    const client = new pg.Client(config);
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.message));
    let connect = 'pending';
    client.connect().then(
      () => (connect = 'connected'),
      (error: Error) => (connect = `rejected: ${error.message}`),
    );
    await client.end();
    // The driver parses anything the server sent before it sees the close that ends end().
    await new Promise((resolve) => setImmediate(resolve));
    return { errors, connect };
  }

  it('reports nothing through azdb, as with PostgreSQL', async () => {
    const straight = await connectThenEnd({ host: inject('postgresSocketDir'), port: 5432, user: 'postgres', database: 'orders' });
    expect(straight).toEqual({ errors: [], connect: 'pending' });
    for (const t of [plain, audited, sessionPool, transactionPool]) {
      expect(await connectThenEnd({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password })).toEqual(straight);
    }
  });
});
