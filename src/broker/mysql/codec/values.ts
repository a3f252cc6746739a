/**
 * MySQL wire value encodings: little-endian fixed-length integers, length-encoded integers and
 * strings, NUL-terminated strings. A bounds-checked reader over one payload (every read past the
 * end is a MySqlProtocolError, never a RangeError) and a growable writer. Strings are UTF-8.
 */
import { MySqlProtocolError } from './protocol-error.js';

/** First byte of a length-encoded integer; below 0xfb the byte is the value itself. */
export enum LenencPrefix {
  Null = 0xfb, // NULL, only in text result rows
  Int2 = 0xfc, // a 2-byte integer follows
  Int3 = 0xfd, // a 3-byte integer follows
  Int8 = 0xfe, // an 8-byte integer follows
  // 0xff starts no integer: it marks an ERR packet.
}

const MAX_UINT64 = 2n ** 64n - 1n;
const MAX_SAFE_INTEGER = BigInt(Number.MAX_SAFE_INTEGER);

export class MySqlPayloadReader {
  private offset = 0;

  constructor(
    private readonly payload: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.payload.length - this.offset;
  }

  /** The next byte without consuming it, or undefined at the end. */
  peek(): number | undefined {
    return this.payload[this.offset];
  }

  u8(): number {
    this.need(1);
    return this.payload[this.offset++]!;
  }

  u16(): number {
    return this.uint(2);
  }

  u24(): number {
    return this.uint(3);
  }

  u32(): number {
    return this.uint(4);
  }

  u64(): bigint {
    this.need(8);
    const value = this.payload.readBigUInt64LE(this.offset);
    this.offset += 8;
    return value;
  }

  /** A length-encoded integer as a bigint (all 64 bits); NULL is refused. */
  lenencBigInt(): bigint {
    const value = this.lenencOrNullBigInt();
    if (value === null) throw new MySqlProtocolError(`${this.what}: unexpected NULL length-encoded integer`);
    return value;
  }

  /** A length-encoded integer as a number; values above 2^53 - 1 are refused. */
  lenenc(): number {
    const value = this.lenencOrNull();
    if (value === null) throw new MySqlProtocolError(`${this.what}: unexpected NULL length-encoded integer`);
    return value;
  }

  /** A length-encoded integer, or null for the 0xfb marker (as numbers: no BigInt but for 8 bytes). */
  lenencOrNull(): number | null {
    const first = this.u8();
    if (first < LenencPrefix.Null) return first;
    switch (first) {
      case LenencPrefix.Null:
        return null;
      case LenencPrefix.Int2:
        return this.u16();
      case LenencPrefix.Int3:
        return this.u24();
      case LenencPrefix.Int8: {
        const value = this.u64();
        if (value > MAX_SAFE_INTEGER) throw new MySqlProtocolError(`${this.what}: length-encoded integer ${value} is too large`);
        return Number(value);
      }
      default:
        throw new MySqlProtocolError(`${this.what}: 0x${first.toString(16)} does not start a length-encoded integer`);
    }
  }

  /** Bytes of a length-encoded length, as a view; longer than `max` is refused. */
  lenencBytes(max = Number.MAX_SAFE_INTEGER): Buffer {
    const length = this.lenenc();
    if (length > max) throw new MySqlProtocolError(`${this.what}: value of ${length} bytes exceeds the limit of ${max}`);
    return this.bytes(length);
  }

  /** A length-encoded string, decoded in place (no view of the bytes made first). */
  lenencString(max = Number.MAX_SAFE_INTEGER): string {
    const length = this.lenenc();
    if (length > max) throw new MySqlProtocolError(`${this.what}: value of ${length} bytes exceeds the limit of ${max}`);
    this.need(length);
    const text = this.payload.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return text;
  }

  /** Bytes up to a NUL (consumed, not returned), as a view. */
  nulBytes(max = Number.MAX_SAFE_INTEGER): Buffer {
    const end = this.payload.indexOf(0, this.offset);
    if (end < 0) throw new MySqlProtocolError(`${this.what}: string is not terminated`);
    if (end - this.offset > max) throw new MySqlProtocolError(`${this.what}: string exceeds the limit of ${max} bytes`);
    const view = this.payload.subarray(this.offset, end);
    this.offset = end + 1;
    return view;
  }

  nulString(max?: number): string {
    return this.nulBytes(max).toString('utf8');
  }

  /** A NUL-terminated string, or the rest of the payload when no NUL follows (some servers omit it). */
  nulStringOrRest(max = Number.MAX_SAFE_INTEGER): string {
    if (this.payload.indexOf(0, this.offset) >= 0) return this.nulString(max);
    if (this.remaining > max) throw new MySqlProtocolError(`${this.what}: string exceeds the limit of ${max} bytes`);
    return this.rest().toString('utf8');
  }

  /** `length` bytes as a view into the payload. */
  bytes(length: number): Buffer {
    if (!Number.isSafeInteger(length) || length < 0) throw new MySqlProtocolError(`${this.what}: bad length ${length}`);
    this.need(length);
    const view = this.payload.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  skip(length: number): void {
    this.bytes(length);
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  restString(): string {
    return this.rest().toString('utf8');
  }

  end(): void {
    if (this.remaining !== 0) throw new MySqlProtocolError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }

  private lenencOrNullBigInt(): bigint | null {
    const first = this.u8();
    if (first < LenencPrefix.Null) return BigInt(first);
    switch (first) {
      case LenencPrefix.Null:
        return null;
      case LenencPrefix.Int2:
        return BigInt(this.u16());
      case LenencPrefix.Int3:
        return BigInt(this.u24());
      case LenencPrefix.Int8:
        return this.u64();
      default:
        throw new MySqlProtocolError(`${this.what}: 0x${first.toString(16)} does not start a length-encoded integer`);
    }
  }

  private uint(size: 2 | 3 | 4): number {
    this.need(size);
    const value = this.payload.readUIntLE(this.offset, size);
    this.offset += size;
    return value;
  }

  private need(length: number): void {
    if (this.remaining < length) throw new MySqlProtocolError(`${this.what}: packet is truncated`);
  }
}

/** Bytes a length-encoded integer takes. */
export function lenencSize(value: number | bigint): number {
  const v = BigInt(value);
  if (v < 0n || v > MAX_UINT64) throw new RangeError(`${value} cannot be length-encoded`);
  if (v < BigInt(LenencPrefix.Null)) return 1;
  if (v < 0x1_0000n) return 3;
  if (v < 0x100_0000n) return 4;
  return 9;
}

/** Builds one payload; grows as needed. Encoders throw RangeError on values that do not fit. */
export class PayloadWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialSize = 64) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  u8(value: number): this {
    this.reserve(1).writeUInt8(value, this.length);
    this.length += 1;
    return this;
  }

  u16(value: number): this {
    return this.uint(value, 2);
  }

  u24(value: number): this {
    return this.uint(value, 3);
  }

  u32(value: number): this {
    return this.uint(value, 4);
  }

  u64(value: number | bigint): this {
    this.reserve(8).writeBigUInt64LE(BigInt(value), this.length);
    this.length += 8;
    return this;
  }

  lenenc(value: number | bigint): this {
    const v = BigInt(value);
    switch (lenencSize(v)) {
      case 1:
        return this.u8(Number(v));
      case 3:
        return this.u8(LenencPrefix.Int2).u16(Number(v));
      case 4:
        return this.u8(LenencPrefix.Int3).u24(Number(v));
      default:
        return this.u8(LenencPrefix.Int8).u64(v);
    }
  }

  bytes(data: Buffer): this {
    data.copy(this.reserve(data.length), this.length);
    this.length += data.length;
    return this;
  }

  /** A string without length or terminator (string<EOF>, or fixed length). */
  string(text: string): this {
    const size = Buffer.byteLength(text, 'utf8');
    this.reserve(size).write(text, this.length, 'utf8');
    this.length += size;
    return this;
  }

  lenencBytes(data: Buffer | string): this {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.lenenc(bytes.length).bytes(bytes);
  }

  /** A NUL-terminated string; refuses text that contains a NUL. */
  nulString(text: string): this {
    if (text.includes('\0')) throw new RangeError('a NUL-terminated string cannot contain NUL');
    return this.string(text).u8(0);
  }

  zeros(count: number): this {
    this.reserve(count).fill(0, this.length, this.length + count);
    this.length += count;
    return this;
  }

  /** The payload written so far. The writer must not be used afterwards. */
  finish(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  private uint(value: number, size: 2 | 3 | 4): this {
    this.reserve(size).writeUIntLE(value, this.length, size);
    this.length += size;
    return this;
  }

  private reserve(size: number): Buffer {
    if (this.length + size > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + size));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    return this.buffer;
  }
}
