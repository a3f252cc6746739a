import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../../src/broker/postgres/codec/frame-decoder.js';
import { encodeMessage, cstring, int32 } from '../../../src/broker/postgres/codec/frames.js';
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeBind,
  decodeErrorFields,
  decodeExecute,
  decodeParameterStatus,
  decodeParse,
  decodePasswordMessage,
  decodeQuery,
  decodeSaslInitialResponse,
  parseSqlStart,
  querySqlEnd,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeParameterStatus,
  encodePasswordMessage,
  encodeProtocol2Error,
  encodeSaslInitialResponse,
  type AuthenticationRequest,
} from '../../../src/broker/postgres/codec/messages.js';
import { PgProtocolError } from '../../../src/broker/postgres/codec/protocol-error.js';
import { drain, splitAt } from '../../helpers/decoders.js';

/** Feeds `bytes` to the live decoder split at `at`, returning every frame as [code, payload copy]. */
function decodeSplit(bytes: Buffer, at: number): Array<[number, Buffer]> {
  const decoder = new FrameDecoder();
  const out = splitAt(bytes, at).flatMap((part) => drain(decoder, part).map((f): [number, Buffer] => [f.code, Buffer.from(f.payload)]));
  expect(decoder.rest()).toEqual(Buffer.alloc(0));
  return out;
}

/** The payload of the one message in `bytes`. */
function payload(bytes: Buffer): Buffer {
  const [frame, ...more] = drain(new FrameDecoder(), bytes);
  expect(more).toEqual([]);
  return frame!.payload;
}

describe('messages', () => {
  const requests: AuthenticationRequest[] = [
    { type: 'ok' },
    { type: 'cleartext' },
    { type: 'md5', salt: Buffer.from([9, 8, 7, 6]) },
    { type: 'sasl', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] },
    { type: 'sasl-continue', data: Buffer.from('r=abc,s=def,i=4096') },
    { type: 'sasl-final', data: Buffer.from('v=xyz') },
  ];

  it.each(requests)('round-trip authentication $type at every split', (request) => {
    const bytes = encodeAuthentication(request);
    for (let at = 0; at <= bytes.length; at++) {
      const [[code, payload]] = decodeSplit(bytes, at) as [[number, Buffer]];
      expect(code).toBe(0x52);
      expect(decodeAuthentication(payload)).toEqual(request);
    }
  });

  it('encodes the protocol-2 error PostgreSQL 17 sends a protocol 2.0 client, byte for byte', () => {
    // Captured from PostgreSQL 17 answering a protocol 2.0 StartupMessage.
    const captured = '45464154414c3a2020756e737570706f727465642066726f6e74656e642070726f746f636f6c20322e303a2073657276657220737570706f72747320332e3020746f20332e300a00';
    expect(encodeProtocol2Error('FATAL', 'unsupported frontend protocol 2.0: server supports 3.0 to 3.0').toString('hex')).toBe(captured);
  });

  it("decodes BackendKeyData's key into memory of its own, so a session's key does not pin a shared 8 KiB buffer slab", () => {
    const { secretKey } = decodeBackendKeyData(payload(encodeBackendKeyData(77, Buffer.from([1, 2, 3, 4]))));
    expect(secretKey).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(secretKey.buffer.byteLength).toBe(4);
  });

  it('round-trip password, SASL initial response, BackendKeyData, ParameterStatus and ErrorResponse', () => {
    expect(decodePasswordMessage(payload(encodePasswordMessage('secret')))).toBe('secret');
    expect(decodeSaslInitialResponse(payload(encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x'))))).toEqual({
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=x'),
    });
    expect(decodeBackendKeyData(payload(encodeBackendKeyData(77, Buffer.from([1, 2, 3, 4]))))).toEqual({ processId: 77, secretKey: Buffer.from([1, 2, 3, 4]) });
    expect(decodeParameterStatus(payload(encodeParameterStatus('application_name', 'aé')))).toEqual({ name: 'application_name', value: 'aé' });
    expect(decodeParameterStatus(payload(encodeParameterStatus('TimeZone', '')))).toEqual({ name: 'TimeZone', value: '' });
    expect(decodeParameterStatus(payload(encodeParameterStatus('', 'x')))).toBeUndefined();
    expect(decodeErrorFields(payload(encodeErrorResponse({ severity: 'FATAL', code: '28000', message: 'm', hint: 'h' })))).toMatchObject({
      S: 'FATAL',
      V: 'FATAL',
      C: '28000',
      M: 'm',
      H: 'h',
    });
  });

  it('decode the query messages audit reads, without parameter values', () => {
    expect(decodeQuery(encodeMessage(0x51, cstring('select 1')).subarray(5))).toBe('select 1');
    const parse = encodeMessage(0x50, cstring('s1'), cstring('select $1'), Buffer.from([0, 1]), int32(23)).subarray(5);
    expect(decodeParse(parse)).toEqual({ statement: 's1', query: 'select $1' });
    const bind = encodeMessage(0x42, cstring(''), cstring('s1'), Buffer.from([0, 0]), Buffer.from([0, 2]), int32(3), Buffer.from('abc'), int32(-1), Buffer.from([0, 0])).subarray(5);
    expect(decodeBind(bind)).toEqual({ portal: '', statement: 's1', parameterCount: 2 });
    expect(decodeExecute(encodeMessage(0x45, cstring(''), int32(0)).subarray(5))).toEqual({ portal: '' });
  });

  it('decode the head of a message cut short as far as it goes, and what it holds strictly', () => {
    const bind = encodeMessage(0x42, cstring('p1'), cstring('s1'), Buffer.from([0, 1, 0, 0]), Buffer.from([0, 2]), int32(3), Buffer.from('abc')).subarray(5);
    expect(decodeBind(bind, true)).toEqual({ portal: 'p1', statement: 's1', parameterCount: 2 });
    expect(decodeBind(bind.subarray(0, 9), true)).toEqual({ portal: 'p1', statement: 's1', parameterCount: undefined });
    expect(decodeBind(bind.subarray(0, 4), true)).toEqual({ portal: 'p1', statement: 's', parameterCount: undefined });
    // Counts are unsigned, as PostgreSQL reads them: 0xffff format codes, not -1.
    expect(decodeBind(Buffer.concat([cstring(''), cstring(''), Buffer.from([0xff, 0xff])]), true)).toEqual({ portal: '', statement: '', parameterCount: undefined });
    expect(() => decodeBind(Buffer.concat([cstring(''), cstring(''), Buffer.from([0xff, 0xff])]))).toThrow(PgProtocolError);
    expect(decodeQuery(Buffer.from('select 12'), true)).toBe('select 12');
    expect(decodeParse(Buffer.concat([cstring('s1'), Buffer.from('select lo')]), true)).toEqual({ statement: 's1', query: 'select lo' });
    expect(decodeParse(Buffer.from('s'), true)).toEqual({ statement: 's', query: '' });
    expect(decodeExecute(Buffer.from('por'), true)).toEqual({ portal: 'por' });
  });

  it('find the SQL of a Query or Parse inside a chunk without decoding it, and refuse what decodeQuery and decodeParse refuse, with their errors', () => {
    // Each message between other bytes, as the relay finds it in a chunk.
    const inChunk = (payload: Buffer): [Buffer, number, number] => [Buffer.concat([Buffer.from([0, 0x51, 0]), payload, Buffer.from([0, 0])]), 3, 3 + payload.length];
    const [query, qStart, qEnd] = inChunk(cstring('select 1'));
    expect(query.toString('utf8', qStart, querySqlEnd(query, qStart, qEnd))).toBe('select 1');
    const [parse, pStart, pEnd] = inChunk(Buffer.concat([cstring('s1'), cstring('select $1'), Buffer.from([0, 1]), int32(23)]));
    const sqlStart = parseSqlStart(parse, pStart, pEnd);
    expect(parse.toString('utf8', pStart, sqlStart - 1)).toBe('s1');
    expect(parse.toString('utf8', sqlStart, parse.indexOf(0, sqlStart))).toBe('select $1');
    const refusals: Array<[Buffer, (payload: Buffer) => unknown, (bytes: Buffer, start: number, end: number) => number]> = [
      [Buffer.from('select 1'), decodeQuery, querySqlEnd],
      [Buffer.from('select 1\0x'), decodeQuery, querySqlEnd],
      [Buffer.from('s\0select'), decodeParse, parseSqlStart],
      [Buffer.from('s'), decodeParse, parseSqlStart],
      [Buffer.concat([cstring(''), cstring('q'), Buffer.from([0xff, 0xff])]), decodeParse, parseSqlStart],
      [Buffer.concat([cstring(''), cstring('q'), Buffer.from([0])]), decodeParse, parseSqlStart],
      [Buffer.concat([cstring(''), cstring('q'), Buffer.from([0, 0, 1])]), decodeParse, parseSqlStart],
    ];
    for (const [payload, decode, find] of refusals) {
      const [bytes, start, end] = inChunk(payload);
      let expected: unknown;
      try {
        decode(payload);
      } catch (error) {
        expected = error;
      }
      expect(expected).toBeInstanceOf(PgProtocolError);
      expect(() => find(bytes, start, end)).toThrow((expected as Error).message);
    }
  });

  it.each([
    ['a truncated Bind', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0, 5]), int32(3)).subarray(5), decodeBind],
    ['a Bind claiming 10 000 parameters', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0x27, 0x10])).subarray(5), decodeBind],
    ['a Bind parameter of length -5', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0, 1]), int32(-5)).subarray(5), decodeBind],
    ['a Parse claiming 65 535 parameter types it does not carry', encodeMessage(0x50, cstring(''), cstring('q'), Buffer.from([0xff, 0xff])).subarray(5), decodeParse],
    ['an unterminated Query', Buffer.from('select 1'), decodeQuery],
    ['a password with trailing bytes', Buffer.from('a\0b'), decodePasswordMessage],
  ])('reject %s', (_name, payload, decode) => {
    expect(() => (decode as (b: Buffer) => unknown)(payload)).toThrow(PgProtocolError);
  });
});
