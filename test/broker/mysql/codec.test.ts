/** MySQL wire values: length-encoded integers and strings, the bounds-checked payload reader and the writer. */
import { describe, expect, it } from 'vitest';
import { MySqlPayloadReader, PayloadWriter, lenencSize } from '../../../src/broker/mysql/codec/values.js';
import { MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';

function expectProtocolError(fn: () => unknown): void {
  expect(fn).toThrow(MySqlProtocolError);
}

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
