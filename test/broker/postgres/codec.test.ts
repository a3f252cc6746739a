import { describe, expect, it } from 'vitest';
import { FrameDecoder, readFrame, encodeMessage, cstring, int32 } from '../../../src/broker/postgres/codec/frames.js';
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeBind,
  decodeErrorFields,
  decodeExecute,
  decodeParse,
  decodePasswordMessage,
  decodeQuery,
  decodeSaslInitialResponse,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodePasswordMessage,
  encodeSaslInitialResponse,
  type AuthenticationRequest,
} from '../../../src/broker/postgres/codec/messages.js';
import {
  encodeCancelRequest,
  encodeSslRequest,
  encodeStartupMessage,
  MAX_STARTUP_LENGTH,
  readStartupPacket,
} from '../../../src/broker/postgres/codec/startup.js';
import { PgProtocolError } from '../../../src/broker/postgres/codec/protocol-error.js';

/** Feeds `bytes` to a decoder split at `at`, returning every frame as [code, payload copy]. */
function decodeSplit(bytes: Buffer, at: number): Array<[number, Buffer]> {
  const decoder = new FrameDecoder();
  const out: Array<[number, Buffer]> = [];
  for (const part of [bytes.subarray(0, at), bytes.subarray(at)]) {
    for (const f of decoder.push(part)) out.push([f.code, Buffer.from(f.payload)]);
  }
  expect(decoder.bufferedLength).toBe(0);
  return out;
}

describe('FrameDecoder', () => {
  const stream = Buffer.concat([
    encodeMessage(0x51, cstring('select 1')),
    encodeMessage(0x58),
    encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'no' }),
  ]);

  it('yields the same frames whichever byte the stream is split at', () => {
    const whole = decodeSplit(stream, stream.length);
    expect(whole.map(([c]) => String.fromCharCode(c))).toEqual(['Q', 'X', 'E']);
    for (let at = 0; at <= stream.length; at++) expect(decodeSplit(stream, at)).toEqual(whole);
  });

  it('yields the same frames when fed one byte at a time', () => {
    const decoder = new FrameDecoder();
    const codes: number[] = [];
    for (const byte of stream) for (const f of decoder.push(Buffer.from([byte]))) codes.push(f.code);
    expect(codes).toEqual([0x51, 0x58, 0x45]);
  });

  it('returns views into the chunk when a message does not span chunks', () => {
    const [frame] = new FrameDecoder().push(stream);
    expect(frame!.payload.buffer).toBe(stream.buffer);
  });

  it.each([
    ['zero', 0],
    ['below the header', 3],
    ['negative', -1],
    ['2^31 - 1', 0x7fffffff],
    ['over the configured max', 1025],
  ])('rejects a %s length', (_name, length) => {
    const bytes = Buffer.alloc(5);
    bytes[0] = 0x51;
    bytes.writeInt32BE(length, 1);
    expect(() => new FrameDecoder(1024).push(bytes)).toThrow(PgProtocolError);
    expect(() => readFrame(bytes, 1024)).toThrow(PgProtocolError);
  });
});

describe('startup packets', () => {
  const startup = encodeStartupMessage({ user: 'alice', database: 'orders', application_name: 'psql' });

  it('parse the same at every split offset', () => {
    for (let at = 0; at < startup.length; at++) {
      expect(readStartupPacket(startup.subarray(0, at))).toBeUndefined();
    }
    const parsed = readStartupPacket(Buffer.concat([startup, Buffer.from('tail')]));
    expect(parsed?.value).toEqual({ type: 'startup', major: 3, minor: 0, params: { user: 'alice', database: 'orders', application_name: 'psql' } });
    expect(parsed?.rest.toString()).toBe('tail');
  });

  it('recognise SSLRequest and CancelRequest', () => {
    expect(readStartupPacket(encodeSslRequest())?.value).toEqual({ type: 'ssl-request' });
    const cancel = readStartupPacket(encodeCancelRequest(4242, Buffer.from([1, 2, 3, 4])))?.value;
    expect(cancel).toEqual({ type: 'cancel', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) });
  });

  it('accept protocol 3.2 (the session negotiates it down)', () => {
    const packet = Buffer.from(startup);
    packet.writeInt32BE((3 << 16) | 2, 4);
    expect(readStartupPacket(packet)?.value).toMatchObject({ type: 'startup', major: 3, minor: 2 });
  });

  it.each([
    ['too short', () => { const b = Buffer.alloc(8); b.writeInt32BE(4, 0); return b; }],
    ['longer than 10 000 bytes', () => { const b = Buffer.alloc(8); b.writeInt32BE(MAX_STARTUP_LENGTH + 1, 0); return b; }],
    ['protocol 2.0', () => { const b = Buffer.from(startup); b.writeInt32BE(2 << 16, 4); return b; }],
    ['no user', () => encodeStartupMessage({ database: 'x' })],
    ['an unterminated parameter', () => { const b = Buffer.from(startup); b[b.length - 1] = 0x41; b[b.length - 2] = 0x41; return b; }],
    ['too many parameters', () => encodeStartupMessage(Object.fromEntries([['user', 'u'], ...Array.from({ length: 100 }, (_, i) => [`p${i}`, 'v'])]))],
  ])('reject a packet with %s', (_name, build) => {
    expect(() => readStartupPacket(build())).toThrow(PgProtocolError);
  });
});

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

  it('round-trip password, SASL initial response, BackendKeyData and ErrorResponse', () => {
    const payload = (b: Buffer) => readFrame(b)!.value.payload;
    expect(decodePasswordMessage(payload(encodePasswordMessage('secret')))).toBe('secret');
    expect(decodeSaslInitialResponse(payload(encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x'))))).toEqual({
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=x'),
    });
    expect(decodeBackendKeyData(payload(encodeBackendKeyData(77, Buffer.from([1, 2, 3, 4]))))).toEqual({ processId: 77, secretKey: Buffer.from([1, 2, 3, 4]) });
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
    expect(decodeParse(parse)).toEqual({ statement: 's1', query: 'select $1', parameterTypeCount: 1 });
    const bind = encodeMessage(0x42, cstring(''), cstring('s1'), Buffer.from([0, 0]), Buffer.from([0, 2]), int32(3), Buffer.from('abc'), int32(-1), Buffer.from([0, 0])).subarray(5);
    expect(decodeBind(bind)).toEqual({ portal: '', statement: 's1', parameterCount: 2 });
    expect(decodeExecute(encodeMessage(0x45, cstring(''), int32(0)).subarray(5))).toEqual({ portal: '', maxRows: 0 });
  });

  it.each([
    ['a truncated Bind', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0, 5]), int32(3)).subarray(5), decodeBind],
    ['a Bind claiming 10 000 parameters', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0x27, 0x10])).subarray(5), decodeBind],
    ['a Bind parameter of length -5', encodeMessage(0x42, cstring(''), cstring('s'), Buffer.from([0, 0]), Buffer.from([0, 1]), int32(-5)).subarray(5), decodeBind],
    ['a Parse with a negative type count', encodeMessage(0x50, cstring(''), cstring('q'), Buffer.from([0xff, 0xff])).subarray(5), decodeParse],
    ['an unterminated Query', Buffer.from('select 1'), decodeQuery],
    ['a password with trailing bytes', Buffer.from('a\0b'), decodePasswordMessage],
  ])('reject %s', (_name, payload, decode) => {
    expect(() => (decode as (b: Buffer) => unknown)(payload)).toThrow(PgProtocolError);
  });
});
