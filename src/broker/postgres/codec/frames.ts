/**
 * Regular PostgreSQL messages: `byte code` + `int32 length` (counting itself) + payload. The
 * frame type, an encoder, and a bounds-checked reader over one payload. Decoding a stream into
 * frames is FrameDecoder's job. Pure: no sockets.
 */
import { PgProtocolError } from './protocol-error.js';

/** A typed message's header: the type byte and the int32 length (which counts itself, not the type). */
export const HEADER_LENGTH = 5;

/** One typed message as FrameDecoder returns it. */
export interface Frame {
  /** The message type byte, e.g. 0x51 'Q'. */
  code: number;
  /** The whole payload's length: the length field less its own 4 bytes. */
  length: number;
  /**
   * The payload without type and length, or only its first bytes when the decoder keeps heads
   * (then shorter than `length`). A view into the chunk it arrived in, unless it spanned chunks.
   */
  payload: Buffer;
}

export function describeCode(code: number): string {
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16)}`;
}

/** Builds one message: code, back-filled length, payload parts. */
export function encodeMessage(code: number, ...parts: Buffer[]): Buffer {
  let payloadLength = 0;
  for (const part of parts) payloadLength += part.length;
  const message = Buffer.allocUnsafe(HEADER_LENGTH + payloadLength);
  message[0] = code;
  message.writeInt32BE(4 + payloadLength, 1);
  let offset = HEADER_LENGTH;
  for (const part of parts) {
    part.copy(message, offset);
    offset += part.length;
  }
  return message;
}

export function cstring(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

export function int32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(value, 0);
  return b;
}

/** Reads NUL-terminated strings and integers from a payload, with bounds checks. */
export class PgPayloadReader {
  private offset = 0;

  constructor(
    private readonly payload: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.payload.length - this.offset;
  }

  cstring(): string {
    const end = this.payload.indexOf(0, this.offset);
    if (end < 0) throw new PgProtocolError(`${this.what}: string is not terminated`);
    const text = this.payload.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }

  /** A NUL-terminated string, or the rest of the payload when it ends first (a message's head). */
  cstringOrRest(): string {
    return this.payload.indexOf(0, this.offset) >= 0 ? this.cstring() : this.rest().toString('utf8');
  }

  int32(): number {
    this.need(4);
    const value = this.payload.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A 16-bit count: PostgreSQL reads them unsigned (pq_getmsgint), up to 65 535 parameters. */
  uint16(): number {
    this.need(2);
    const value = this.payload.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  byte(): number {
    this.need(1);
    return this.payload[this.offset++]!;
  }

  bytes(length: number): Buffer {
    if (length < 0) throw new PgProtocolError(`${this.what}: negative length ${length}`);
    this.need(length);
    const view = this.payload.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  end(): void {
    if (this.remaining !== 0) throw new PgProtocolError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }

  private need(length: number): void {
    if (this.remaining < length) throw new PgProtocolError(`${this.what}: message is truncated`);
  }
}
