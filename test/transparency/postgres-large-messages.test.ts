/**
 * Audit changes nothing that reaches the server, however long a message: a 100 MiB Bind
 * parameter, a 100 MiB simple Query and one 70 MiB CopyData go through a tunnel (and a transaction-mode pool) with
 * `audit.queries` to the real PostgreSQL, which reports their length and md5; the audit keeps a
 * bounded head of what it records and nothing of what it does not audit.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerFixture, USER } from '../helpers/broker-fixtures.js';
import { completeMessages, cstring, encodeMessage, int32, rawLogin, type RawClient } from '../helpers/pg-raw.js';
import { createMemoryAuditSink, type AuditEvent } from '../../src/broker/audit.js';
import { decodeErrorFields } from '../../src/broker/postgres/codec/messages.js';
import type { Tunnel } from '../../src/broker/tunnel.js';

const MiB = 1024 * 1024;
const BYTEA_OID = 17;
/** Time for one large message through TLS, the broker and PostgreSQL on a loaded 2-core machine. */
const LARGE_MS = 120_000;

const broker = new BrokerFixture();
const audit = createMemoryAuditSink({ queries: true });
const tunnels: Record<'plain' | 'transaction', Tunnel | undefined> = { plain: undefined, transaction: undefined };

beforeAll(async () => {
  await broker.start();
  tunnels.plain = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', audit });
  // A transaction pool frames every message both ways (pins, statements, replies): it must too.
  tunnels.transaction = await broker.tunnel({
    target: broker.target('orders'),
    dbName: 'orders',
    audit,
    pool: { mode: 'transaction', maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 },
  });
});

afterAll(() => broker.stop());

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/**
 * `length` bytes of text that is safe in a quoted literal and a COPY row: a block of random base64
 * (1 398 108 bytes, a multiple of no chunk size) repeated, so a chunk lost, doubled or moved on
 * the way changes the md5, and 100 MiB cost a memory fill instead of string building.
 */
function patternText(length: number): Buffer {
  const block = Buffer.from(randomBytes(349_527 * 3).toString('base64'), 'latin1');
  return Buffer.allocUnsafe(length).fill(block);
}

const readyAt = (bytes: Buffer) => completeMessages(bytes).flatMap((m, i) => (m.code === 'Z' ? [i] : []));

/** Sends `messages` and reads up to the next ReadyForQuery: the DataRows' text values, or the error. */
async function exchange(client: RawClient, ...messages: Buffer[]): Promise<string[][]> {
  const seen = readyAt(client.received).length;
  for (const message of messages) client.write(message);
  await client.until((bytes) => (readyAt(bytes).length > seen ? true : undefined), 'ReadyForQuery', LARGE_MS);
  const ready = readyAt(client.received);
  const reply = completeMessages(client.received).slice(ready[seen - 1]! + 1, ready[seen]! + 1);
  const error = reply.find((m) => m.code === 'E');
  if (error) throw new Error(`PostgreSQL: ${JSON.stringify(decodeErrorFields(error.payload))}`);
  return reply.filter((m) => m.code === 'D').map((m) => dataRow(m.payload));
}

function dataRow(payload: Buffer): string[] {
  const values: string[] = [];
  let offset = 2;
  for (let i = 0; i < payload.readInt16BE(0); i++) {
    const length = payload.readInt32BE(offset);
    values.push(payload.toString('utf8', offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return values;
}

const query = (sql: string) => encodeMessage(0x51, cstring(sql));
const sync = encodeMessage(0x53);

function auditLines(from: number): AuditEvent[] {
  return audit.events.slice(from).filter((e) => e.event === 'query');
}

const paths = [
  ['an audited tunnel', 'plain'],
  ['an audited transaction-mode pool', 'transaction'],
] as const;

for (const [title, kind] of paths) describe(`${title} passes messages of any length the server takes`, () => {
  const tunnel = () => tunnels[kind]!;
  it('a 100 MiB Bind parameter reaches PostgreSQL intact; the audit has its count, never its value', { timeout: LARGE_MS }, async () => {
    const client = await rawLogin(tunnel().port, USER, 'orders', tunnel().password);
    broker.sockets.add(client.socket);
    const value = randomBytes(100 * MiB);
    const from = audit.events.length;
    const rows = await exchange(
      client,
      encodeMessage(0x50, cstring(''), cstring('select length($1::bytea), md5($1::bytea)'), Buffer.from([0, 1]), int32(BYTEA_OID)),
      encodeMessage(0x42, cstring(''), cstring(''), Buffer.from([0, 1, 0, 1]), Buffer.from([0, 1]), int32(value.length), value, Buffer.from([0, 0])),
      encodeMessage(0x45, cstring(''), int32(0)),
      sync,
    );
    expect(rows).toEqual([[String(value.length), md5(value)]]);
    expect(auditLines(from)).toMatchObject([{ kind: 'parse' }, { kind: 'bind', parameters: 1 }, { kind: 'execute' }]);
    client.socket.destroy();
  });

  it('a 100 MiB simple Query reaches PostgreSQL intact; the audit keeps a head of its text', { timeout: LARGE_MS }, async () => {
    const client = await rawLogin(tunnel().port, USER, 'orders', tunnel().password);
    broker.sockets.add(client.socket);
    const literal = patternText(100 * MiB);
    const head = "select length(x), md5(x) from (select '";
    const sql = Buffer.concat([Buffer.from(head), literal, Buffer.from("'::text as x) s\0")]);
    const from = audit.events.length;
    const rows = await exchange(client, encodeMessage(0x51, sql));
    expect(rows).toEqual([[String(literal.length), md5(literal)]]);
    const [line] = auditLines(from) as Array<{ kind: string; query: string }>;
    expect(line!.kind).toBe('simple');
    expect(line!.query.startsWith(`${head}${literal.toString('latin1', 0, 100)}`)).toBe(true);
    expect(line!.query).toMatch(/more bytes\]$/);
    expect(line!.query.length).toBeLessThan(64 * 1024);
    client.socket.destroy();
  });

  it('one 70 MiB CopyData reaches PostgreSQL intact and is not audited', { timeout: LARGE_MS }, async () => {
    const client = await rawLogin(tunnel().port, USER, 'orders', tunnel().password);
    broker.sockets.add(client.socket);
    const row = patternText(70 * MiB);
    await exchange(client, query('create temp table big_copy (b text)'));
    client.write(query('copy big_copy from stdin'));
    await client.until((bytes) => (completeMessages(bytes).some((m) => m.code === 'G') ? true : undefined), 'CopyInResponse', LARGE_MS);
    const from = audit.events.length;
    const copied = await exchange(client, encodeMessage(0x64, row, Buffer.from('\n')), encodeMessage(0x63));
    expect(copied).toEqual([]);
    expect(await exchange(client, query('select length(b), md5(b) from big_copy'))).toEqual([[String(row.length), md5(row)]]);
    expect(auditLines(from).map((e) => (e as { query: string }).query)).toEqual(['select length(b), md5(b) from big_copy']);
    client.socket.destroy();
  });
});
