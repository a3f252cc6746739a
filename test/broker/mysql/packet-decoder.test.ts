/**
 * PacketDecoder, the one streaming decoder of the MySQL protocol (the handshake reads through it,
 * the relay's command gate frames the client's stream with it, keeping heads): whatever the
 * chunking, the same packets come out, continuation packets joined, and what was not asked for
 * comes back as it was sent.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PacketDecoder, type Packet, type PacketDecoderOptions } from '../../../src/broker/mysql/codec/packet-decoder.js';
import { MAX_ALLOWED_PACKET_LIMIT, MAX_PHYSICAL_PAYLOAD, encodePacket, sequenceIdAfter } from '../../../src/broker/mysql/codec/packets.js';
import { NetErrorCode, MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';
import { chunked, drain, splitAt } from '../../helpers/decoders.js';

type Plain = [sequenceId: number, lastSequenceId: number, length: number, payload: string];
const plain = (p: Packet): Plain => [p.sequenceId, p.lastSequenceId, p.length, p.payload.toString('hex')];

/** Every packet of `chunks` through one decoder (copied), each with where it ended in the whole stream. */
function decode(chunks: Buffer[], options?: PacketDecoderOptions): { packets: Plain[]; ends: number[] } {
  const decoder = new PacketDecoder(options);
  const packets: Plain[] = [];
  const ends: number[] = [];
  let base = 0;
  for (const chunk of chunks) {
    decoder.push(chunk);
    // As the command gate does: where a packet ends is the position right after `next` returned it.
    for (let p = decoder.next(); p !== undefined; p = decoder.next()) {
      packets.push(plain(p));
      ends.push(base + decoder.position);
    }
    base += chunk.length;
  }
  return { packets, ends };
}

function expectProtocolError(fn: () => unknown, errorCode?: NetErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MySqlProtocolError);
  if (errorCode !== undefined) expect((thrown as MySqlProtocolError).errorCode).toBe(errorCode);
}

/** Feeds each chunk, draining it, until the decoder throws. */
const feed = (decoder: PacketDecoder, chunks: Buffer[]) => () => chunks.forEach((chunk) => drain(decoder, chunk));

const pattern = (length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff));

describe('PacketDecoder', () => {
  const payloads = [Buffer.from('\x03select 1'), Buffer.alloc(0), Buffer.from([1, 2, 3]), pattern(300)];
  const ids = [0, 1, 255, 0];
  const stream = Buffer.concat(payloads.map((p, i) => encodePacket(ids[i]!, p)));
  const expected: Plain[] = payloads.map((p, i) => [ids[i]!, ids[i]!, p.length, p.toString('hex')]);
  const ends = payloads.reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + 4 + p.length], []);

  it('frames a stream of packets, empty and sequence id 255 included, and says where each ends', () => {
    expect(decode([stream])).toEqual({ packets: expected, ends });
  });

  it('yields the same packets whichever byte the stream is split at', () => {
    for (let at = 0; at <= stream.length; at++) expect(decode(splitAt(stream, at))).toEqual({ packets: expected, ends });
  });

  it('yields the same packets split at any two offsets (headers cut into three pieces)', () => {
    const small = stream.subarray(0, 4 + 9 + 4 + 4 + 3);
    const want = decode([small]);
    expect(want.packets).toHaveLength(3);
    for (let a = 0; a <= small.length; a++) {
      for (let b = a; b <= small.length; b++) expect(decode(splitAt(small, a, b))).toEqual(want);
    }
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 7) expect(decode(splitAt(stream, a, b))).toEqual({ packets: expected, ends });
    }
  });

  it('yields the same packets fed one byte at a time', () => {
    expect(decode(chunked(stream, 1))).toEqual({ packets: expected, ends });
  });

  it('returns views into the chunk for packets within it, and one copy for a packet that spans chunks', () => {
    // Told apart by writing to the chunk afterwards: a view sees it, a copy does not.
    const chunk = Buffer.from(stream);
    const [first] = drain(new PacketDecoder(), chunk);
    chunk[4] = 0x2a;
    expect(first!.payload[0]).toBe(0x2a);
    const decoder = new PacketDecoder();
    const last = encodePacket(0, pattern(300));
    expect(drain(decoder, last.subarray(0, 100))).toEqual([]);
    const [spanned] = drain(decoder, last.subarray(100));
    last.fill(0);
    expect(spanned!.payload).toEqual(pattern(300));
  });

  it('gives back what it was not asked for exactly as it came: at every offset, a packet in progress included', () => {
    for (let at = 0; at <= stream.length; at++) {
      const decoder = new PacketDecoder();
      const packets = drain(decoder, stream.subarray(0, at));
      const boundary = packets.length === 0 ? 0 : ends[packets.length - 1]!;
      expect(decoder.rest()).toEqual(stream.subarray(boundary, at));
    }
  });

  it('decodes nothing ahead: bytes after the last packet asked for stay raw (a TLS ClientHello after an SSLRequest)', () => {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
    const decoder = new PacketDecoder({ maxPacketLength: 1024 });
    decoder.push(Buffer.concat([encodePacket(1, Buffer.alloc(32)), hello]));
    expect(decoder.next()!.sequenceId).toBe(1);
    expect(decoder.rest()).toEqual(hello);
  });

  it('rejects a header over the limit before its payload arrives, wherever the header is cut', () => {
    const header = Buffer.from([0x01, 0x04, 0x00, 0x00]); // 1025 bytes
    for (let at = 0; at <= 4; at++) expectProtocolError(feed(new PacketDecoder({ maxPacketLength: 1024 }), splitAt(header, at)), NetErrorCode.PacketTooLarge);
    expect(decode([encodePacket(0, Buffer.alloc(1024))], { maxPacketLength: 1024 }).packets).toHaveLength(1);
  });

  it('refuses a chunk pushed before the last one was decoded', () => {
    const decoder = new PacketDecoder();
    decoder.push(stream);
    decoder.next();
    expect(() => decoder.push(stream)).toThrow(/before the last one was decoded/);
  });
});

describe('continuation packets', () => {
  it('encode an exact 2^24 - 1 payload as a full packet and a trailing empty one, and decode it whatever the chunking', () => {
    const payload = randomBytes(MAX_PHYSICAL_PAYLOAD);
    const bytes = encodePacket(5, payload);
    expect(bytes.length).toBe(MAX_PHYSICAL_PAYLOAD + 8);
    expect([bytes.readUIntLE(0, 3), bytes[3]]).toEqual([MAX_PHYSICAL_PAYLOAD, 5]);
    expect([bytes.readUIntLE(4 + MAX_PHYSICAL_PAYLOAD, 3), bytes[4 + MAX_PHYSICAL_PAYLOAD + 3]]).toEqual([0, 6]);
    expect(sequenceIdAfter(5, payload.length)).toBe(7);

    for (const chunks of [[bytes], chunked(bytes, 65536), [bytes.subarray(0, bytes.length - 2), bytes.subarray(-2)]]) {
      const decoder = new PacketDecoder();
      const packets = chunks.flatMap((chunk) => drain(decoder, chunk));
      expect(packets).toHaveLength(1);
      expect([packets[0]!.sequenceId, packets[0]!.lastSequenceId, packets[0]!.length]).toEqual([5, 6, MAX_PHYSICAL_PAYLOAD]);
      expect(packets[0]!.payload.equals(payload)).toBe(true);
      expect(decoder.rest()).toEqual(Buffer.alloc(0));
    }
  });

  it('reassemble 16 MiB + 1 bytes, whatever the chunking, sequence ids wrapping past 255', () => {
    const payload = randomBytes(16 * 1024 * 1024 + 1);
    const bytes = encodePacket(255, payload);
    expect(bytes.length).toBe(payload.length + 8);
    expect([bytes.readUIntLE(4 + MAX_PHYSICAL_PAYLOAD, 3), bytes[4 + MAX_PHYSICAL_PAYLOAD + 3]]).toEqual([2, 0]);
    const boundary = 4 + MAX_PHYSICAL_PAYLOAD;
    const splits = [0, 1, 3, 4, 5, boundary - 1, boundary, boundary + 1, boundary + 2, boundary + 3, boundary + 4, boundary + 5, bytes.length - 1];
    for (const at of splits) {
      const decoder = new PacketDecoder();
      const packets = splitAt(bytes, at).flatMap((chunk) => drain(decoder, chunk));
      expect(packets.map((p) => [p.sequenceId, p.lastSequenceId])).toEqual([[255, 0]]);
      expect(packets[0]!.payload.equals(payload)).toBe(true);
    }
    for (const [a, b] of [[1, boundary + 2], [boundary - 1, boundary + 6], [4, bytes.length - 1]] as const) {
      const decoder = new PacketDecoder();
      const packets = splitAt(bytes, a, b).flatMap((chunk) => drain(decoder, chunk));
      expect(packets[0]!.payload.equals(payload)).toBe(true);
    }
    const decoder = new PacketDecoder();
    const packets = chunked(bytes, 65536 + 3).flatMap((chunk) => drain(decoder, chunk));
    expect(packets[0]!.payload.equals(payload)).toBe(true);
    // A packet in progress, the first part whole, comes back as it was sent.
    const partial = new PacketDecoder();
    expect(drain(partial, bytes.subarray(0, -1))).toEqual([]);
    expect(partial.rest().equals(bytes.subarray(0, -1))).toBe(true);
    const tail = new PacketDecoder();
    expect(drain(tail, Buffer.concat([bytes, Buffer.from([9])])).map((p) => [p.sequenceId, p.lastSequenceId])).toEqual([[255, 0]]);
    expect(tail.rest()).toEqual(Buffer.from([9]));
  });

  it('keep a continued part that was a view, though the caller reuses its chunk', () => {
    const payload = randomBytes(MAX_PHYSICAL_PAYLOAD + 10);
    const bytes = encodePacket(0, payload);
    const reused = Buffer.from(bytes.subarray(0, 4 + MAX_PHYSICAL_PAYLOAD));
    const decoder = new PacketDecoder();
    expect(drain(decoder, reused)).toEqual([]);
    reused.fill(0);
    const [packet] = drain(decoder, bytes.subarray(4 + MAX_PHYSICAL_PAYLOAD));
    expect(packet!.payload.equals(payload)).toBe(true);
  });

  it('refuse a logical packet whose parts add up over the limit, whole or kept to its head', () => {
    const bytes = encodePacket(0, Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 11));
    const max = MAX_PHYSICAL_PAYLOAD + 10;
    expectProtocolError(feed(new PacketDecoder({ maxPacketLength: max }), [bytes]), NetErrorCode.PacketTooLarge);
    expectProtocolError(feed(new PacketDecoder({ maxPacketLength: max, headLength: 0 }), [bytes]), NetErrorCode.PacketTooLarge);
    expect(decode([bytes], { maxPacketLength: max + 1 }).packets).toHaveLength(1);
  });

  it('refuse a continuation whose sequence id does not follow, whole or kept to its head', () => {
    const bytes = encodePacket(3, Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 1));
    bytes[4 + MAX_PHYSICAL_PAYLOAD + 3] = 9;
    expectProtocolError(feed(new PacketDecoder(), [bytes]), NetErrorCode.PacketsOutOfOrder);
    expectProtocolError(feed(new PacketDecoder({ headLength: 4 }), chunked(bytes, 1 << 20)), NetErrorCode.PacketsOutOfOrder);
  });

  it('refuse a sequence id outside 0..255 when encoding', () => {
    expect(() => encodePacket(256, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => encodePacket(-1, Buffer.alloc(1))).toThrow(RangeError);
  });

  it('accept by default every packet a server can (max_allowed_packet up to 1 GiB), and not a byte more', () => {
    const header = (length: number, id: number) => Buffer.from([length & 0xff, (length >> 8) & 0xff, length >> 16, id]);
    const zeros = Buffer.alloc(MAX_PHYSICAL_PAYLOAD);
    // 64 full physical packets: 1 GiB - 64 bytes, skipped by length (only the 1-byte head is kept).
    const afterFullParts = (): PacketDecoder => {
      const decoder = new PacketDecoder({ headLength: 1 });
      for (let id = 0; id < 64; id++) {
        expect(drain(decoder, header(MAX_PHYSICAL_PAYLOAD, id))).toEqual([]);
        expect(drain(decoder, zeros)).toEqual([]);
      }
      return decoder;
    };
    expect(64 * MAX_PHYSICAL_PAYLOAD).toBe(MAX_ALLOWED_PACKET_LIMIT - 64);
    const fits = afterFullParts();
    expect(drain(fits, Buffer.concat([header(64, 64), Buffer.alloc(64)])).map((p) => [p.sequenceId, p.lastSequenceId, p.length])).toEqual([[0, 64, MAX_ALLOWED_PACKET_LIMIT]]);
    expectProtocolError(() => drain(afterFullParts(), header(65, 64)), NetErrorCode.PacketTooLarge);
  });
});

describe('PacketDecoder keeping heads (the command gate)', () => {
  const payloads = [Buffer.from('\x03select 1 from dual'), Buffer.alloc(0), pattern(40), Buffer.from([0x0e])];
  const stream = Buffer.concat(payloads.map((p, i) => encodePacket(i, p)));
  const ends = payloads.reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + 4 + p.length], []);
  const expected = { packets: payloads.map((p, i): Plain => [i, i, p.length, p.subarray(0, 8).toString('hex')]), ends };

  it('reports every packet, its end and its first bytes, wherever the stream is split, in two or three pieces', () => {
    expect(decode([stream], { headLength: 8 })).toEqual(expected);
    for (let at = 0; at <= stream.length; at++) expect(decode(splitAt(stream, at), { headLength: 8 })).toEqual(expected);
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b += 2) expect(decode(splitAt(stream, a, b), { headLength: 8 })).toEqual(expected);
    }
    expect(decode(chunked(stream, 1), { headLength: 8 })).toEqual(expected);
  });

  it('keeps no payload bytes when asked for none', () => {
    expect(decode([stream], { headLength: 0 }).packets.map((p) => p[3])).toEqual(['', '', '', '']);
  });

  it('holds nothing between packets, and a packet in progress until its last byte', () => {
    const decoder = new PacketDecoder({ headLength: 4 });
    expect(drain(decoder, stream.subarray(0, 2))).toEqual([]);
    expect(drain(decoder, stream.subarray(2, 10))).toEqual([]);
    expect(drain(decoder, stream.subarray(10, ends[0])).map(plain)).toEqual([[0, 0, payloads[0]!.length, payloads[0]!.subarray(0, 4).toString('hex')]]);
    expect(decoder.rest()).toEqual(Buffer.alloc(0));
  });

  it('skips 16 MiB + 1 bytes in small chunks, keeping only the head', () => {
    const payload = randomBytes(16 * 1024 * 1024 + 1);
    const bytes = Buffer.concat([encodePacket(0, payload), encodePacket(2, Buffer.from([0x01]))]);
    expect(decode(chunked(bytes, 65536 + 7), { headLength: 16 })).toEqual({
      packets: [
        [0, 1, payload.length, payload.subarray(0, 16).toString('hex')],
        [2, 2, 1, '01'],
      ],
      ends: [bytes.length - 5, bytes.length],
    });
  });

  it('reports an exact 2^24 - 1 payload once, at the end of its trailing empty packet', () => {
    const bytes = encodePacket(0, Buffer.alloc(MAX_PHYSICAL_PAYLOAD, 0x41));
    expect(decode([bytes.subarray(0, bytes.length - 4), bytes.subarray(-4)], { headLength: 2 })).toEqual({ packets: [[0, 1, MAX_PHYSICAL_PAYLOAD, '4141']], ends: [bytes.length] });
  });

  it('refuses a packet over its limit', () => {
    expectProtocolError(feed(new PacketDecoder({ headLength: 0, maxPacketLength: 10 }), [encodePacket(0, Buffer.alloc(11))]), NetErrorCode.PacketTooLarge);
  });

  it('cannot give back the bytes of a packet it cut', () => {
    const decoder = new PacketDecoder({ headLength: 2 });
    drain(decoder, encodePacket(0, pattern(40)).subarray(0, 20));
    expect(() => decoder.rest()).toThrow(/skipped bytes/);
  });
});
