/**
 * FrameDecoder, the one streaming decoder of the PostgreSQL protocol (the handshake reads through
 * it, the relay's audit frames the client's stream with it): whatever the chunking, the same
 * units come out, and what was not asked for comes back as it was sent.
 */
import { describe, expect, it } from 'vitest';
import { FrameDecoder, MAX_MESSAGE_LENGTH, type FrameDecoderOptions } from '../../../src/broker/postgres/codec/frame-decoder.js';
import { cstring, encodeMessage, int32, type Frame } from '../../../src/broker/postgres/codec/frames.js';
import { encodeErrorResponse } from '../../../src/broker/postgres/codec/messages.js';
import { PgProtocolError, PgStartupRefusal } from '../../../src/broker/postgres/codec/protocol-error.js';
import { encodeCancelRequest, encodeSslRequest, encodeStartupMessage, MAX_STARTUP_LENGTH, type StartupPacket } from '../../../src/broker/postgres/codec/startup.js';
import { chunked, drain, splitAt } from '../../helpers/decoders.js';

type Plain = [code: string, length: number, payload: string];
const plain = (f: Frame): Plain => [String.fromCharCode(f.code), f.length, f.payload.toString('hex')];

/** Every frame of `chunks` through one decoder, copied; and what it still holds after. */
function decode(chunks: Buffer[], options?: FrameDecoderOptions): { frames: Plain[]; rest: string } {
  const decoder = new FrameDecoder(options);
  const frames = chunks.flatMap((chunk) => drain(decoder, chunk).map(plain));
  return { frames, rest: decoder.rest().toString('hex') };
}

const pattern = (length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff));

describe('FrameDecoder: typed messages', () => {
  const stream = Buffer.concat([
    encodeMessage(0x51, cstring('select 1')),
    encodeMessage(0x58), // empty payload
    encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'no' }),
    encodeMessage(0x64, pattern(300)), // CopyData
    encodeMessage(0x53),
  ]);
  const whole = decode([stream]);

  it('frames a stream of messages, an empty one included', () => {
    expect(whole.frames.map(([code, length]) => [code, length])).toEqual([['Q', 9], ['X', 0], ['E', whole.frames[2]![1]], ['d', 300], ['S', 0]]);
    expect(whole.frames[3]![2]).toBe(pattern(300).toString('hex'));
    expect(whole.rest).toBe('');
  });

  it('shows the same messages in one reused view (nextView), whole or cut to their heads, at every split', () => {
    for (let at = 0; at <= stream.length; at++) {
      for (const headLength of [Infinity, 3]) {
        const viewer = new FrameDecoder({ headLength });
        const framer = new FrameDecoder({ headLength });
        const seen: Array<[number, number, string, number | undefined]> = [];
        const framed: Array<[number, number, string, number | undefined]> = [];
        let last: unknown;
        for (const chunk of splitAt(stream, at)) {
          viewer.push(chunk);
          framer.push(chunk);
          for (let view = viewer.nextView(); view; view = viewer.nextView()) {
            if (last !== undefined) expect(view).toBe(last);
            last = view;
            seen.push([view.code, view.length, view.payload.toString('hex'), view.byte(0)]);
          }
          for (let frame = framer.next(); frame; frame = framer.next()) framed.push([frame.code, frame.length, frame.payload.toString('hex'), frame.payload[0]]);
        }
        expect(seen).toEqual(framed);
        expect(seen).toHaveLength(5);
      }
    }
  });

  it('yields the same frames whichever byte the stream is split at', () => {
    for (let at = 0; at <= stream.length; at++) expect(decode(splitAt(stream, at))).toEqual(whole);
  });

  it('yields the same frames split at any two offsets (headers cut into three pieces)', () => {
    const small = stream.subarray(0, 5 + 9 + 5 + 20);
    const want = decode([small]);
    expect(want.frames).toHaveLength(2);
    for (let a = 0; a <= small.length; a++) {
      for (let b = a; b <= small.length; b++) expect(decode(splitAt(small, a, b))).toEqual(want);
    }
  });

  it('yields the same frames in three pieces cut anywhere in the whole stream', () => {
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 7) expect(decode(splitAt(stream, a, b))).toEqual(whole);
    }
  });

  it('yields the same frames fed one byte at a time', () => {
    expect(decode(chunked(stream, 1))).toEqual(whole);
  });

  it('returns views into the chunk for messages within it, and one copy for a message that spans chunks', () => {
    // Told apart by writing to the chunk afterwards: a view sees it, a copy does not.
    const chunk = Buffer.from(stream);
    const [first] = drain(new FrameDecoder(), chunk);
    chunk[5] = 0x2a;
    expect(first!.payload[0]).toBe(0x2a);
    const decoder = new FrameDecoder();
    const big = encodeMessage(0x64, pattern(300));
    expect(drain(decoder, big.subarray(0, 100))).toEqual([]);
    const [spanned] = drain(decoder, big.subarray(100));
    big.fill(0);
    expect(spanned!.payload).toEqual(pattern(300));
  });

  it('gives back what it was not asked for exactly as it came: at every offset, a message in progress included', () => {
    const ends = [0];
    for (const [, length] of whole.frames) ends.push(ends.at(-1)! + 5 + length);
    for (let at = 0; at <= stream.length; at++) {
      const decoder = new FrameDecoder();
      const frames = drain(decoder, stream.subarray(0, at));
      const boundary = ends[frames.length]!;
      expect(boundary).toBeLessThanOrEqual(at);
      expect(decoder.rest()).toEqual(stream.subarray(boundary, at));
    }
  });

  it('decodes nothing ahead: the bytes after the last message asked for stay raw', () => {
    const decoder = new FrameDecoder({ maxLength: 64 });
    decoder.push(Buffer.concat([encodeMessage(0x70, cstring('x')), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])]));
    expect(plain(decoder.next()!)).toEqual(['p', 2, '7800']);
    // A TLS record header read as a message would be 'invalid message length'; unread, it is just bytes.
    expect(decoder.rest()).toEqual(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]));
  });

  it.each([
    ['zero', 0],
    ['below the header', 3],
    ['negative', -1],
    ['2^31 - 1', 0x7fffffff],
    ['over the configured max', 1025],
  ])('rejects a %s length with PgProtocolError, at every split of the header', (_name, length) => {
    const bytes = Buffer.alloc(5);
    bytes[0] = 0x51;
    bytes.writeInt32BE(length, 1);
    for (let at = 0; at <= 5; at++) {
      const decoder = new FrameDecoder({ maxLength: 1024 });
      expect(() => splitAt(bytes, at).forEach((chunk) => drain(decoder, chunk))).toThrow(PgProtocolError);
    }
    // Without a configured max, only PostgreSQL's own limit applies.
    if (length === 1025) expect(drain(new FrameDecoder(), bytes)).toEqual([]);
    else expect(() => drain(new FrameDecoder(), bytes)).toThrow(PgProtocolError);
  });

  it('accepts messages up to what PostgreSQL reads by default (1 GB), and rejects one byte more', () => {
    const header = (length: number) => Buffer.concat([Buffer.from([0x51]), int32(length)]);
    expect(drain(new FrameDecoder(), header(MAX_MESSAGE_LENGTH))).toEqual([]);
    expect(() => drain(new FrameDecoder(), header(MAX_MESSAGE_LENGTH + 1))).toThrow(PgProtocolError);
  });

  it('refuses a chunk pushed before the last one was decoded', () => {
    const decoder = new FrameDecoder();
    decoder.push(stream);
    decoder.next();
    expect(() => decoder.push(stream)).toThrow(/before the last one was decoded/);
  });
});

describe('FrameDecoder: kept types and heads (the audit)', () => {
  const keep = new Set([0x51, 0x42]); // Query, Bind
  const stream = Buffer.concat([
    encodeMessage(0x64, pattern(5000)), // CopyData: skipped
    encodeMessage(0x51, cstring('select 1')),
    encodeMessage(0x53), // Sync: skipped
    encodeMessage(0x42, pattern(100)), // cut to its head
    encodeMessage(0x58),
  ]);
  const options = { keep, headLength: 16, maxLength: 1024 };
  const want: Plain[] = [
    ['Q', 9, cstring('select 1').toString('hex')],
    ['B', 100, pattern(16).toString('hex')],
  ];

  it('returns only kept types, cut to the head, whichever byte the stream is split at', () => {
    for (let at = 0; at <= stream.length; at++) expect(decode(splitAt(stream, at), options).frames).toEqual(want);
  });

  it('does the same in three pieces and one byte at a time', () => {
    for (let a = 0; a <= stream.length; a += 5) {
      for (let b = a; b <= stream.length; b += 11) expect(decode(splitAt(stream, a, b), options).frames).toEqual(want);
    }
    expect(decode(chunked(stream, 1), options).frames).toEqual(want);
  });

  it('never caps a type it does not keep (the server judges it), and caps the kept ones', () => {
    const copyOfOneGb = Buffer.concat([Buffer.from([0x64]), int32(MAX_MESSAGE_LENGTH)]);
    const decoder = new FrameDecoder(options);
    expect(drain(decoder, copyOfOneGb)).toEqual([]);
    expect(drain(decoder, Buffer.alloc(65_536))).toEqual([]);
    expect(() => drain(new FrameDecoder(options), Buffer.concat([Buffer.from([0x51]), int32(1025)]))).toThrow(PgProtocolError);
    expect(() => drain(new FrameDecoder(options), Buffer.concat([Buffer.from([0x64]), int32(3)]))).toThrow(PgProtocolError);
  });

  it('cannot give back the bytes of a message it skipped', () => {
    const decoder = new FrameDecoder(options);
    drain(decoder, stream.subarray(0, 100));
    expect(() => decoder.rest()).toThrow(/skipped or cut/);
  });
});

describe('FrameDecoder: the opening of a connection', () => {
  const params = { user: 'alice', database: 'orders', application_name: 'psql' };
  const startup = encodeStartupMessage(params);
  const password = encodeMessage(0x70, cstring('secret'));
  // What a server reads: SSLRequest (answered 'N'), StartupMessage, then typed messages.
  const opening = Buffer.concat([encodeSslRequest(), startup, password]);

  function readOpening(chunks: Buffer[]): { packets: StartupPacket[]; frames: Plain[] } {
    const decoder = new FrameDecoder();
    const packets: StartupPacket[] = [];
    const frames: Plain[] = [];
    for (const chunk of chunks) {
      decoder.push(chunk);
      for (;;) {
        if (packets.length < 2) {
          const packet = decoder.nextStartupPacket();
          if (!packet) break;
          packets.push(packet);
        } else {
          const frame = decoder.next();
          if (!frame) break;
          frames.push(plain(frame));
        }
      }
    }
    return { packets, frames };
  }

  const expected = { packets: [{ type: 'ssl-request' }, { type: 'startup', major: 3, minor: 0, params }], frames: [['p', 7, cstring('secret').toString('hex')]] };

  it('reads startup packets, then messages, whichever byte the stream is split at, and in three pieces', () => {
    for (let at = 0; at <= opening.length; at++) expect(readOpening(splitAt(opening, at))).toEqual(expected);
    for (let a = 0; a <= opening.length; a += 2) {
      for (let b = a; b <= opening.length; b += 5) expect(readOpening(splitAt(opening, a, b))).toEqual(expected);
    }
    expect(readOpening(chunked(opening, 1))).toEqual(expected);
  });

  it('recognises SSLRequest, CancelRequest and protocol 3.2 (the session negotiates it down)', () => {
    const one = (bytes: Buffer) => {
      const decoder = new FrameDecoder();
      decoder.push(bytes);
      return decoder.nextStartupPacket();
    };
    expect(one(encodeSslRequest())).toEqual({ type: 'ssl-request' });
    expect(one(encodeCancelRequest(4242, Buffer.from([1, 2, 3, 4])))).toEqual({ type: 'cancel', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) });
    const v32 = Buffer.from(startup);
    v32.writeInt32BE((3 << 16) | 2, 4);
    expect(one(v32)).toMatchObject({ type: 'startup', major: 3, minor: 2 });
  });

  it('waits for every byte of a startup packet and returns the rest as it came', () => {
    for (let at = 0; at < startup.length; at++) {
      const decoder = new FrameDecoder();
      decoder.push(startup.subarray(0, at));
      expect(decoder.nextStartupPacket()).toBeUndefined();
      expect(decoder.rest()).toEqual(startup.subarray(0, at));
    }
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([startup, Buffer.from('tail')]));
    expect(decoder.nextStartupPacket()).toMatchObject({ type: 'startup' });
    expect(decoder.rest().toString()).toBe('tail');
  });

  it.each([
    ['too short', () => { const b = Buffer.alloc(8); b.writeInt32BE(4, 0); return b; }, undefined],
    ['4 bytes over PostgreSQL\'s 10 000 after the length word', () => { const b = Buffer.alloc(8); b.writeInt32BE(MAX_STARTUP_LENGTH + 5, 0); return b; }, undefined],
    ['a CancelRequest of 12 bytes', () => Buffer.concat([int32(12), int32(80877102), int32(7)]), undefined],
    ['protocol 2.0', () => { const b = Buffer.from(startup); b.writeInt32BE(2 << 16, 4); return b; }, { code: '0A000', protocol2: true }],
    ['protocol 0.0', () => { const b = Buffer.from(startup); b.writeInt32BE(0, 4); return b; }, { code: '0A000', protocol2: false }],
    ['protocol 4.0', () => { const b = Buffer.from(startup); b.writeInt32BE(4 << 16, 4); return b; }, { code: '0A000', protocol2: false }],
    ['no user', () => encodeStartupMessage({ database: 'x' }), { code: '28000', protocol2: false }],
    ['an unterminated parameter', () => { const b = Buffer.from(startup); b[b.length - 1] = 0x41; b[b.length - 2] = 0x41; return b; }, { code: '08P01', protocol2: false }],
  ])('refuses a startup packet with %s as PostgreSQL does (no reply: a close without a byte)', (_name, build, reply) => {
    const decoder = new FrameDecoder();
    decoder.push(build());
    let error: unknown;
    try {
      decoder.nextStartupPacket();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PgStartupRefusal);
    expect((error as PgStartupRefusal).reply).toEqual(reply);
  });

  it('reads as many parameters as fit the length cap (PostgreSQL counts none)', () => {
    const decoder = new FrameDecoder();
    decoder.push(encodeStartupMessage(Object.fromEntries([['user', 'u'], ...Array.from({ length: 1000 }, (_, i) => [`p${i}`, 'v'])])));
    const packet = decoder.nextStartupPacket();
    expect(packet).toMatchObject({ type: 'startup' });
    expect(Object.keys((packet as { params: object }).params)).toHaveLength(1001);
  });

  it('reads a startup packet of 10 004 bytes, the longest PostgreSQL reads, and an SSLRequest of any length', () => {
    const longest = encodeStartupMessage({ user: 'u', application_name: 'x'.repeat(10_004 - 34) });
    expect(longest.length).toBe(10_004);
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([longest, int32(12), int32(80877103), int32(0)]));
    expect(decoder.nextStartupPacket()).toMatchObject({ type: 'startup', params: { user: 'u' } });
    expect(decoder.nextStartupPacket()).toEqual({ type: 'ssl-request' });
  });

  it("reads a server's one-byte answer to SSLRequest and leaves the TLS bytes after it untouched", () => {
    const tlsHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    for (let at = 0; at <= 1 + tlsHello.length; at++) {
      const decoder = new FrameDecoder();
      const chunks = splitAt(Buffer.concat([Buffer.from('S'), tlsHello]), at);
      let answer: number | undefined;
      for (const chunk of chunks) {
        decoder.push(chunk);
        answer ??= decoder.nextByte();
        if (answer !== undefined) break;
      }
      expect(answer).toBe(0x53);
      const unread = chunks.slice(chunks.findIndex((c) => c.length > 0) + 1);
      expect(Buffer.concat([decoder.rest(), ...unread])).toEqual(tlsHello);
    }
  });
});
