import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MAX_PHYSICAL_PAYLOAD,
  PacketDecoder,
  encodePacket,
  physicalPacketCount,
  readPacket,
  readPacketHeader,
  sequenceIdAfter,
  type Packet,
} from '../../../src/broker/mysql/codec/packets.js';
import { PacketScanner, type ScannedPacket } from '../../../src/broker/mysql/scanner.js';
import { MySqlPayloadReader, PayloadWriter, lenencSize } from '../../../src/broker/mysql/codec/values.js';
import { NetErrorCode, MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';

type Plain = [sequenceId: number, lastSequenceId: number, payload: string];
const plain = (p: Packet): Plain => [p.sequenceId, p.lastSequenceId, p.payload.toString('hex')];

/** Feeds `chunks` to a fresh decoder; returns every packet (copied) and what stayed buffered. */
function decodeChunks(chunks: Buffer[], max?: number): { packets: Plain[]; buffered: number } {
  const decoder = new PacketDecoder(max);
  const packets: Plain[] = [];
  for (const chunk of chunks) for (const p of decoder.push(chunk)) packets.push(plain(p));
  return { packets, buffered: decoder.bufferedLength };
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
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

const pattern = (length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff));

describe('PacketDecoder', () => {
  const stream = Buffer.concat([
    encodePacket(0, Buffer.from('\x03select 1')),
    encodePacket(1, Buffer.alloc(0)),
    encodePacket(255, Buffer.from([1, 2, 3])),
    encodePacket(0, pattern(300)),
  ]);
  const expected: Plain[] = [
    [0, 0, Buffer.from('\x03select 1').toString('hex')],
    [1, 1, ''],
    [255, 255, '010203'],
    [0, 0, pattern(300).toString('hex')],
  ];

  it('frames a stream of packets, empty and sequence id 255 included', () => {
    expect(decodeChunks([stream])).toEqual({ packets: expected, buffered: 0 });
  });

  it('yields the same packets whichever byte the stream is split at', () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(decodeChunks([stream.subarray(0, at), stream.subarray(at)])).toEqual({ packets: expected, buffered: 0 });
    }
  });

  it('yields the same packets split at any two offsets (headers cut into three pieces)', () => {
    const small = stream.subarray(0, 4 + 9 + 4 + 4 + 3);
    const want = decodeChunks([small]).packets;
    expect(want).toHaveLength(3);
    for (let a = 0; a <= small.length; a++) {
      for (let b = a; b <= small.length; b++) {
        expect(decodeChunks([small.subarray(0, a), small.subarray(a, b), small.subarray(b)]).packets).toEqual(want);
      }
    }
  });

  it('yields the same packets fed one byte at a time', () => {
    expect(decodeChunks(chunked(stream, 1))).toEqual({ packets: expected, buffered: 0 });
  });

  it('returns views into the chunk for packets within it, and counts what it holds', () => {
    const decoder = new PacketDecoder();
    const [first] = decoder.push(stream.subarray(0, 20));
    expect(first!.payload.buffer).toBe(stream.buffer);
    expect(decoder.bufferedLength).toBe(20 - 13 - 4); // the empty packet completed; 3 bytes of the next header
    decoder.push(stream.subarray(20, 30));
    expect(decoder.bufferedLength).toBe(2); // the 3-byte packet completed; 2 payload bytes of the last
  });

  it('rejects a header over the limit before its payload arrives', () => {
    const header = Buffer.from([0x01, 0x04, 0x00, 0x00]); // 1025 bytes
    expectProtocolError(() => new PacketDecoder(1024).push(header), NetErrorCode.PacketTooLarge);
    expectProtocolError(() => readPacket(header, 1024), NetErrorCode.PacketTooLarge);
    expect(decodeChunks([encodePacket(0, Buffer.alloc(1024))], 1024).packets).toHaveLength(1);
  });
});

describe('continuation packets', () => {
  it('encode an exact 2^24 - 1 payload as a full packet and a trailing empty one', () => {
    const payload = randomBytes(MAX_PHYSICAL_PAYLOAD);
    const bytes = encodePacket(5, payload);
    expect(bytes.length).toBe(MAX_PHYSICAL_PAYLOAD + 8);
    expect(readPacketHeader(bytes)).toEqual({ payloadLength: MAX_PHYSICAL_PAYLOAD, sequenceId: 5 });
    expect(readPacketHeader(bytes, 4 + MAX_PHYSICAL_PAYLOAD)).toEqual({ payloadLength: 0, sequenceId: 6 });
    expect(physicalPacketCount(payload.length)).toBe(2);
    expect(sequenceIdAfter(5, payload.length)).toBe(7);

    for (const chunks of [[bytes], chunked(bytes, 65536), [bytes.subarray(0, bytes.length - 2), bytes.subarray(-2)]]) {
      const decoder = new PacketDecoder();
      const packets = chunks.flatMap((chunk) => decoder.push(chunk));
      expect(packets).toHaveLength(1);
      expect(packets[0]!.sequenceId).toBe(5);
      expect(packets[0]!.lastSequenceId).toBe(6);
      expect(packets[0]!.payload.equals(payload)).toBe(true);
      expect(decoder.bufferedLength).toBe(0);
    }
  });

  it('reassemble 16 MiB + 1 bytes, whatever the chunking, sequence ids wrapping past 255', () => {
    const payload = randomBytes(16 * 1024 * 1024 + 1);
    const bytes = encodePacket(255, payload);
    expect(bytes.length).toBe(payload.length + 8);
    expect(readPacketHeader(bytes, 4 + MAX_PHYSICAL_PAYLOAD)).toEqual({ payloadLength: 2, sequenceId: 0 });
    const boundary = 4 + MAX_PHYSICAL_PAYLOAD;
    const splits = [0, 1, 3, 4, 5, boundary - 1, boundary, boundary + 1, boundary + 2, boundary + 3, boundary + 4, boundary + 5, bytes.length - 1];
    for (const at of splits) {
      const decoder = new PacketDecoder();
      const packets = [...decoder.push(bytes.subarray(0, at)), ...decoder.push(bytes.subarray(at))];
      expect(packets.map((p) => [p.sequenceId, p.lastSequenceId])).toEqual([[255, 0]]);
      expect(packets[0]!.payload.equals(payload)).toBe(true);
    }
    const decoder = new PacketDecoder();
    const packets = chunked(bytes, 65536 + 3).flatMap((chunk) => decoder.push(chunk));
    expect(packets[0]!.payload.equals(payload)).toBe(true);
    const read = readPacket(Buffer.concat([bytes, Buffer.from([9])]))!;
    expect([read.value.sequenceId, read.value.lastSequenceId, read.rest]).toEqual([255, 0, Buffer.from([9])]);
    expect(read.value.payload.equals(payload)).toBe(true);
    expect(readPacket(bytes.subarray(0, -1))).toBeUndefined();
  });

  it('keep a continued part that was a view, though the caller reuses its chunk', () => {
    const payload = randomBytes(MAX_PHYSICAL_PAYLOAD + 10);
    const bytes = encodePacket(0, payload);
    const reused = Buffer.from(bytes.subarray(0, 4 + MAX_PHYSICAL_PAYLOAD));
    const decoder = new PacketDecoder();
    expect(decoder.push(reused)).toEqual([]);
    reused.fill(0);
    const [packet] = decoder.push(bytes.subarray(4 + MAX_PHYSICAL_PAYLOAD));
    expect(packet!.payload.equals(payload)).toBe(true);
  });

  it('refuse a logical packet whose parts add up over the limit', () => {
    const bytes = encodePacket(0, Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 11));
    const max = MAX_PHYSICAL_PAYLOAD + 10;
    expectProtocolError(() => new PacketDecoder(max).push(bytes), NetErrorCode.PacketTooLarge);
    expectProtocolError(() => readPacket(bytes, max), NetErrorCode.PacketTooLarge);
    expectProtocolError(() => new PacketScanner(0, max).push(bytes), NetErrorCode.PacketTooLarge);
    expect(decodeChunks([bytes], max + 1).packets).toHaveLength(1);
  });

  it('refuse a continuation whose sequence id does not follow', () => {
    const bytes = encodePacket(3, Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 1));
    bytes[4 + MAX_PHYSICAL_PAYLOAD + 3] = 9;
    expectProtocolError(() => new PacketDecoder().push(bytes), NetErrorCode.PacketsOutOfOrder);
    expectProtocolError(() => readPacket(bytes), NetErrorCode.PacketsOutOfOrder);
    expectProtocolError(() => new PacketScanner().push(bytes), NetErrorCode.PacketsOutOfOrder);
  });

  it('refuse a sequence id outside 0..255 when encoding', () => {
    expect(() => encodePacket(256, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => encodePacket(-1, Buffer.alloc(1))).toThrow(RangeError);
  });
});

describe('readPacket', () => {
  it('waits for every byte, then returns the packet and the rest', () => {
    const bytes = encodePacket(2, Buffer.from('hello'));
    for (let at = 0; at < bytes.length; at++) expect(readPacket(bytes.subarray(0, at))).toBeUndefined();
    const read = readPacket(Buffer.concat([bytes, Buffer.from('tail')]))!;
    expect(plain(read.value)).toEqual([2, 2, Buffer.from('hello').toString('hex')]);
    expect(read.rest.toString()).toBe('tail');
  });
});

describe('PacketScanner', () => {
  const payloads = [Buffer.from('\x03select 1 from dual'), Buffer.alloc(0), pattern(40), Buffer.from([0x0e])];
  const stream = Buffer.concat(payloads.map((p, i) => encodePacket(i, p)));
  const ends = payloads.reduce<number[]>((acc, p) => [...acc, (acc.at(-1) ?? 0) + 4 + p.length], []);

  /** Scans `chunks`; returns each packet with its end as an offset into the whole stream. */
  function scan(chunks: Buffer[], headLength: number): Array<Omit<ScannedPacket, 'head'> & { head: string }> {
    const scanner = new PacketScanner(headLength);
    const out: Array<Omit<ScannedPacket, 'head'> & { head: string }> = [];
    let base = 0;
    for (const chunk of chunks) {
      for (const p of scanner.push(chunk)) out.push({ ...p, head: p.head.toString('hex'), end: base + p.end });
      base += chunk.length;
    }
    expect(scanner.inPacket).toBe(false);
    return out;
  }

  const expected = payloads.map((p, i) => ({ sequenceId: i, lastSequenceId: i, length: p.length, head: p.subarray(0, 8).toString('hex'), end: ends[i]! }));

  it('reports every packet, its end and its first bytes, wherever the stream is split', () => {
    expect(scan([stream], 8)).toEqual(expected);
    for (let at = 0; at <= stream.length; at++) expect(scan([stream.subarray(0, at), stream.subarray(at)], 8)).toEqual(expected);
    expect(scan(chunked(stream, 1), 8)).toEqual(expected);
  });

  it('keeps no payload bytes when asked for none', () => {
    expect(scan([stream], 0).map((p) => p.head)).toEqual(['', '', '', '']);
  });

  it('is mid-packet while a header or payload is incomplete', () => {
    const scanner = new PacketScanner(4);
    scanner.push(stream.subarray(0, 2));
    expect(scanner.inPacket).toBe(true);
    scanner.push(stream.subarray(2, 10));
    expect(scanner.inPacket).toBe(true);
    scanner.push(stream.subarray(10, ends[0]));
    expect(scanner.inPacket).toBe(false);
  });

  it('skips 16 MiB + 1 bytes in small chunks, keeping only the head', () => {
    const payload = randomBytes(16 * 1024 * 1024 + 1);
    const bytes = Buffer.concat([encodePacket(0, payload), encodePacket(2, Buffer.from([0x01]))]);
    const found = scan(chunked(bytes, 65536 + 7), 16);
    expect(found).toEqual([
      { sequenceId: 0, lastSequenceId: 1, length: payload.length, head: payload.subarray(0, 16).toString('hex'), end: bytes.length - 5 },
      { sequenceId: 2, lastSequenceId: 2, length: 1, head: '01', end: bytes.length },
    ]);
  });

  it('reports an exact 2^24 - 1 payload once, at the end of its trailing empty packet', () => {
    const bytes = encodePacket(0, Buffer.alloc(MAX_PHYSICAL_PAYLOAD, 0x41));
    const found = scan([bytes.subarray(0, bytes.length - 4), bytes.subarray(-4)], 2);
    expect(found).toEqual([{ sequenceId: 0, lastSequenceId: 1, length: MAX_PHYSICAL_PAYLOAD, head: '4141', end: bytes.length }]);
  });

  it('refuses a packet over its limit', () => {
    expectProtocolError(() => new PacketScanner(0, 10).push(encodePacket(0, Buffer.alloc(11))), NetErrorCode.PacketTooLarge);
  });
});

describe('length-encoded integers', () => {
  it.each([
    [0, '00'],
    [250, 'fa'],
    [251, 'fcfb00'],
    [0xffff, 'fcffff'],
    [0x10000, 'fd000001'],
    [0xffffff, 'fdffffff'],
    [0x1000000, 'fe0000000100000000'],
    [Number.MAX_SAFE_INTEGER, 'feffffffffffff1f00'],
  ])('%d ⇄ %s', (value, hex) => {
    const bytes = new PayloadWriter(1).lenenc(value).finish();
    expect(bytes.toString('hex')).toBe(hex);
    expect(lenencSize(value)).toBe(bytes.length);
    const reader = new MySqlPayloadReader(bytes, 'test');
    expect(reader.lenenc()).toBe(value);
    reader.end();
  });

  it('reads 0xfb as NULL, and refuses it where a number is needed', () => {
    expect(new MySqlPayloadReader(Buffer.from([0xfb]), 'test').lenencOrNull()).toBeNull();
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from([0xfb]), 'test').lenenc());
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from([0xfb]), 'test').lenencBigInt());
    expect(new PayloadWriter().lenencNull().finish()).toEqual(Buffer.from([0xfb]));
  });

  it('reads 8-byte values above 2^53 - 1 only as bigint', () => {
    const big = new PayloadWriter().lenenc(2n ** 64n - 1n).finish();
    expect(big.toString('hex')).toBe('feffffffffffffffff');
    expect(new MySqlPayloadReader(big, 'test').lenencBigInt()).toBe(2n ** 64n - 1n);
    expectProtocolError(() => new MySqlPayloadReader(big, 'test').lenenc());
    const justOver = new PayloadWriter().lenenc(2n ** 53n).finish();
    expectProtocolError(() => new MySqlPayloadReader(justOver, 'test').lenencOrNull());
  });

  it.each([['ff'], ['fc01'], ['fd0102'], ['fe01020304050607'], ['']])('refuse %s', (hex) => {
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from(hex, 'hex'), 'test').lenenc());
  });

  it('refuse to encode negative or over 64-bit values', () => {
    expect(() => new PayloadWriter().lenenc(-1)).toThrow(RangeError);
    expect(() => new PayloadWriter().lenenc(2n ** 64n)).toThrow(RangeError);
  });
});

describe('MySqlPayloadReader and PayloadWriter', () => {
  const bytes = new PayloadWriter(1)
    .u8(0xab)
    .u16(0x1234)
    .u24(0x123456)
    .u32(0xdeadbeef)
    .u64(2n ** 63n)
    .nulString('héllo')
    .lenencBytes('x'.repeat(300))
    .string('rest')
    .finish();

  it('round-trip every type, growing from one byte', () => {
    const reader = new MySqlPayloadReader(bytes, 'test');
    expect([reader.u8(), reader.u16(), reader.u24(), reader.u32(), reader.u64()]).toEqual([0xab, 0x1234, 0x123456, 0xdeadbeef, 2n ** 63n]);
    expect(reader.nulString()).toBe('héllo');
    expect(reader.lenencString()).toBe('x'.repeat(300));
    expect(reader.restString()).toBe('rest');
    reader.end();
  });

  it('never reads past the end: every prefix fails with MySqlProtocolError', () => {
    for (let at = 0; at < bytes.length - 4; at++) {
      const reader = new MySqlPayloadReader(bytes.subarray(0, at), 'test');
      expectProtocolError(() => {
        reader.u8(), reader.u16(), reader.u24(), reader.u32(), reader.u64(), reader.nulString(), reader.lenencString();
      });
    }
  });

  it('enforce limits on string lengths', () => {
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('abc\0'), 'test').nulString(2));
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('abc'), 'test').nulString());
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('\x03abc'), 'test').lenencString(2));
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('\x05abc'), 'test').lenencString());
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('abc'), 'test').nulStringOrRest(2));
    expect(new MySqlPayloadReader(Buffer.from('abc'), 'test').nulStringOrRest()).toBe('abc');
    expect(new MySqlPayloadReader(Buffer.from('ab\0c'), 'test').nulStringOrRest()).toBe('ab');
    expectProtocolError(() => new MySqlPayloadReader(Buffer.from('ab'), 'test').end());
  });

  it('refuse to write a NUL-terminated string holding a NUL', () => {
    expect(() => new PayloadWriter().nulString('a\0b')).toThrow(RangeError);
  });
});
