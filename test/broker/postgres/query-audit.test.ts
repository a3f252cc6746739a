/**
 * The audit of a relayed PostgreSQL session (the tap the relay runs every client chunk through):
 * whatever the chunking, the same audit lines come out, every chunk goes on untouched, nothing
 * but the audited messages' heads is held, and malformed input ends the session.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryAuditSink, type AuditEvent } from '../../../src/broker/audit.js';
import { MAX_MESSAGE_LENGTH } from '../../../src/broker/postgres/codec/frame-decoder.js';
import { cstring, encodeMessage, int32 } from '../../../src/broker/postgres/codec/frames.js';
import { AUDIT_HEAD_LENGTH, queryAudit } from '../../../src/broker/postgres/query-audit.js';
import { chunked, splitAt } from '../../helpers/decoders.js';

const IDENTITY = { session_id: 's1', database: 'orders', protocol: 'postgres', db_user: 'app', db_name: 'shop', client_address: '127.0.0.1:1' } as const;
const BASE = { event: 'query', session_id: 's1', database: 'orders', db_user: 'app', db_name: 'shop' } as const;

const query = (sql: string) => encodeMessage(0x51, cstring(sql));
const parse = (name: string, sql: string, types: number[] = []) =>
  encodeMessage(0x50, cstring(name), cstring(sql), Buffer.from([0, types.length]), ...types.map(int32));
function bind(portal: string, statement: string, values: Buffer[]): Buffer {
  const params = Buffer.concat(values.flatMap((v) => [int32(v.length), v]));
  return encodeMessage(0x42, cstring(portal), cstring(statement), Buffer.from([0, 0]), Buffer.from([values.length >> 8, values.length & 0xff]), params, Buffer.from([0, 0]));
}
const execute = (portal: string) => encodeMessage(0x45, cstring(portal), int32(0));
const sync = encodeMessage(0x53);

interface Run {
  lines: AuditEvent[];
  failures: string[];
  /** Every chunk came back as itself (nothing copied, nothing held back). */
  untouched: boolean;
}

/** Runs `chunks` through a fresh audit tap, as the relay does. */
function run(chunks: Buffer[]): Run {
  const audit = createMemoryAuditSink({ queries: true });
  const failures: string[] = [];
  const filter = queryAudit(audit, IDENTITY)((message) => failures.push(message));
  let untouched = true;
  for (const chunk of chunks) {
    const out = filter(chunk);
    if (out !== chunk) untouched = false;
    if (failures.length > 0) break;
  }
  return { lines: audit.events, failures, untouched };
}

describe('queryAudit', () => {
  const secret = Buffer.from('parameter-value-xyz');
  const session = Buffer.concat([
    query('select 1'),
    parse('s1', 'select $1::text', [25]),
    bind('', 's1', [secret]),
    execute(''),
    sync,
    encodeMessage(0x64, Buffer.alloc(3000, 0x41)), // CopyData: skipped, never audited
    encodeMessage(0x63), // CopyDone
    query('commit'),
  ]);
  const expected: AuditEvent[] = [
    { ...BASE, kind: 'simple', query: 'select 1' },
    { ...BASE, kind: 'parse', query: 'select $1::text', statement: 's1' },
    { ...BASE, kind: 'bind', query: '', statement: 's1', portal: '', parameters: 1 },
    { ...BASE, kind: 'execute', query: '', portal: '' },
    { ...BASE, kind: 'simple', query: 'commit' },
  ];

  it('audits Query, Parse, Bind and Execute, never a parameter value, and passes the chunk on untouched', () => {
    const result = run([session]);
    expect(result).toEqual({ lines: expected, failures: [], untouched: true });
    expect(JSON.stringify(result.lines)).not.toContain('parameter-value-xyz');
  });

  it('writes the same lines whichever byte the stream is split at', () => {
    for (let at = 0; at <= session.length; at++) expect(run(splitAt(session, at))).toEqual({ lines: expected, failures: [], untouched: true });
  });

  it('writes the same lines in three pieces cut anywhere, and fed one byte at a time', () => {
    for (let a = 0; a <= session.length; a += 7) {
      for (let b = a; b <= session.length; b += 13) expect(run(splitAt(session, a, b)).lines).toEqual(expected);
    }
    const head = session.subarray(0, 60); // Query, Parse and the start of Bind: every header cut every way
    const want = run([head]).lines;
    for (let a = 0; a <= head.length; a++) {
      for (let b = a; b <= head.length; b++) expect(run(splitAt(head, a, b)).lines).toEqual(want);
    }
    expect(run(chunked(session, 1))).toEqual({ lines: expected, failures: [], untouched: true });
  });

  it('reads only the head of a long message: a cut query says how much is missing, a cut Bind still has its count', () => {
    const longSql = `select '${'x'.repeat(AUDIT_HEAD_LENGTH)}'`;
    const bigBind = bind('p', 's', [Buffer.alloc(AUDIT_HEAD_LENGTH * 2, 7)]);
    const stream = Buffer.concat([query(longSql), bigBind, query('select 2')]);
    const want = (lines: AuditEvent[]) => {
      const [cut, bound, after] = lines as Array<{ kind: string; query: string; parameters?: number }>;
      const missing = Buffer.byteLength(longSql) + 1 - AUDIT_HEAD_LENGTH;
      expect(cut!.kind).toBe('simple');
      expect(cut!.query.startsWith("select 'xxx")).toBe(true);
      expect(cut!.query.endsWith(`more characters]…[${missing} more bytes]`)).toBe(true);
      expect(bound).toMatchObject({ kind: 'bind', statement: 's', portal: 'p', parameters: 1 });
      expect(after).toMatchObject({ kind: 'simple', query: 'select 2' });
    };
    for (const chunks of [[stream], chunked(stream, 65_536), splitAt(stream, 3, AUDIT_HEAD_LENGTH + 7, stream.length - 3)]) {
      const result = run(chunks);
      expect(result.failures).toEqual([]);
      expect(result.untouched).toBe(true);
      want(result.lines);
    }
  });

  it("leaves out a Bind's parameter count when the head ends before it", () => {
    // 65 535 format codes after a 100 000-byte portal name: the count lies past the head.
    const formats = Buffer.alloc(2 * 65_535);
    const bound = encodeMessage(0x42, cstring('x'.repeat(100_000)), cstring('s'), Buffer.from([0xff, 0xff]), formats, Buffer.from([0, 0]), Buffer.from([0, 0]));
    const [line] = run(chunked(bound, 4096)).lines;
    expect(line).toMatchObject({ kind: 'bind', statement: 's' });
    expect(line).not.toHaveProperty('parameters');
  });

  it('skips any message it does not audit by length, up to what PostgreSQL itself accepts, holding none of it', () => {
    const header = Buffer.concat([Buffer.from([0x64]), int32(MAX_MESSAGE_LENGTH)]);
    const audit = createMemoryAuditSink({ queries: true });
    const failures: string[] = [];
    const filter = queryAudit(audit, IDENTITY)((message) => failures.push(message));
    const chunk = Buffer.alloc(1024 * 1024, 0x51);
    expect(filter(header)).toBe(header);
    for (let i = 0; i < 64; i++) expect(filter(chunk)).toBe(chunk);
    expect(failures).toEqual([]);
    expect(audit.events).toEqual([]);
  });

  it('audits a Bind of 65 535 parameters, the most PostgreSQL takes (counts are unsigned)', () => {
    const values = Array.from({ length: 65_535 }, () => Buffer.alloc(0));
    const [line] = run(chunked(bind('', 's', values), 65_536)).lines;
    expect(line).toMatchObject({ kind: 'bind', parameters: 65_535 });
  });

  it.each([
    ['a Bind parameter of length -5', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0, 1]), int32(-5)), /Bind: bad length -5/],
    ['an unterminated Query', encodeMessage(0x51, Buffer.from('select 1')), /Query: string is not terminated/],
    ['a message length below 4', Buffer.concat([Buffer.from([0x53]), int32(2)]), /invalid message length 2 for message type 'S'/],
    ['a Query longer than PostgreSQL reads', Buffer.concat([Buffer.from([0x51]), int32(MAX_MESSAGE_LENGTH + 1)]), /invalid message length/],
  ])('ends the session on %s, whichever byte it is split at', (_name, bad, reason) => {
    const stream = Buffer.concat([query('select 1'), bad]);
    for (let at = 0; at <= stream.length; at++) {
      const result = run(splitAt(stream, at));
      expect(result.lines).toEqual([{ ...BASE, kind: 'simple', query: 'select 1' }]);
      expect(result.failures).toHaveLength(1);
      expect(result.failures[0]).toMatch(/^client sent a malformed message: /);
      expect(result.failures[0]).toMatch(reason);
    }
  });
});
