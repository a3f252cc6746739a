/**
 * Framing of regular PostgreSQL messages: `byte code` + `int32 length` (including itself) +
 * payload. Frames are views into the incoming chunk; bytes are copied only when a message spans
 * chunks. Pure: no sockets.
 */
import { PgProtocolError } from './protocol-error.js';

const HEADER_LENGTH = 5;
/** Default cap on one message; PostgreSQL's own limit for most messages is 1 GB. */
export const DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024;

export interface Frame {
  /** The message type byte, e.g. 0x51 'Q'. */
  code: number;
  /** The payload without code and length; a view, valid until the next `push`. */
  payload: Buffer;
}

export class FrameDecoder {
  private pending: Buffer | undefined;

  constructor(private readonly maxMessageLength = DEFAULT_MAX_MESSAGE_LENGTH) {}

  /** Bytes buffered that do not yet make a whole message. */
  get bufferedLength(): number {
    return this.pending?.length ?? 0;
  }

  /** Feeds a chunk; returns the whole messages it completes, in order. */
  push(chunk: Buffer): Frame[] {
    const buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    const frames: Frame[] = [];
    let offset = 0;
    while (buffer.length - offset >= HEADER_LENGTH) {
      const code = buffer[offset]!;
      const length = buffer.readInt32BE(offset + 1);
      if (length < 4 || length > this.maxMessageLength) {
        throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
      }
      const end = offset + 1 + length;
      if (end > buffer.length) break;
      frames.push({ code, payload: buffer.subarray(offset + HEADER_LENGTH, end) });
      offset = end;
    }
    if (offset < buffer.length) {
      // Only the incomplete tail is kept; a fresh copy so the caller's chunk can be reused.
      this.pending = Buffer.from(buffer.subarray(offset));
    }
    return frames;
  }
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

  int32(): number {
    this.need(4);
    const value = this.payload.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int16(): number {
    this.need(2);
    const value = this.payload.readInt16BE(this.offset);
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

/** Frames exactly one message from the front of `buffer`, or undefined when it is incomplete. */
export function readFrame(buffer: Buffer, maxMessageLength = DEFAULT_MAX_MESSAGE_LENGTH): { value: Frame; rest: Buffer } | undefined {
  if (buffer.length < HEADER_LENGTH) return undefined;
  const code = buffer[0]!;
  const length = buffer.readInt32BE(1);
  if (length < 4 || length > maxMessageLength) {
    throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
  }
  const end = 1 + length;
  if (buffer.length < end) return undefined;
  return { value: { code, payload: buffer.subarray(HEADER_LENGTH, end) }, rest: buffer.subarray(end) };
}
