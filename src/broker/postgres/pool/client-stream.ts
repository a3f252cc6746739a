/**
 * The client's stream of a transaction-mode session, split into what the relay must look at and
 * what it only forwards. Messages come out whole, as runs of consecutive whole messages with
 * their headers: the chunk itself when it holds nothing else (the common case: one Query per
 * chunk), else a view of the run, or a buffer of its own for a message that spans chunks — for
 * the pin scanner, the statement mapper and Terminate. CopyData, which carries the bulk of a COPY
 * FROM STDIN and is neither scanned nor rewritten, comes out as its bytes arrive (views of the
 * chunks), so a large one is never held whole. Terminate comes out on its own (TERMINATE). Lengths
 * are checked as FrameDecoder does. Pure: chunks in, pieces out, nothing allocated per message
 * for a chunk of whole messages.
 */
import { MAX_MESSAGE_LENGTH } from '../codec/frame-decoder.js';
import { describeCode, HEADER_LENGTH } from '../codec/frames.js';
import { PgProtocolError } from '../codec/protocol-error.js';

const COPY_DATA = 0x64; // d
const TERMINATE_CODE = 0x58; // X
const EMPTY: Buffer = Buffer.alloc(0);

/** The client's Terminate: its session ends there (what follows it is never read). */
export const TERMINATE = Symbol('Terminate');

/** Bytes of a CopyData message (its header included) to forward as they are. */
export interface ThroughPiece {
  through: Buffer;
}

/**
 * Whole messages, headers included, one after another (none of them CopyData or Terminate), or
 * CopyData bytes.
 */
export type ClientPiece = Buffer | ThroughPiece;

export class ClientStream {
  /** The chunk being split and how far. */
  private input: Buffer = EMPTY;
  private offset = 0;
  /** A header cut at a chunk's end (allocated the first time one is: most clients never need it). */
  private header: Buffer | undefined;
  private headerFill = 0;
  /** A message spanning chunks: its buffer (header included) and how full. */
  private body: Buffer | undefined;
  private bodyFill = 0;
  /** CopyData bytes still to pass through. */
  private through = 0;

  /** Hands over the next chunk; call once `next` returned undefined. A message cut at its end continues with the next. */
  push(chunk: Buffer): void {
    this.input = chunk;
    this.offset = 0;
  }

  /** The next piece of what was pushed, in order, or undefined when it needs more bytes. */
  next(): ClientPiece | typeof TERMINATE | undefined {
    const input = this.input;
    const start = this.offset;
    if (start >= input.length) return this.drained();
    if (this.through > 0) {
      const n = Math.min(this.through, input.length - start);
      this.through -= n;
      this.offset = start + n;
      return { through: n === input.length ? input : input.subarray(start, start + n) };
    }
    if (this.body !== undefined) {
      const body = this.body;
      const n = input.copy(body, this.bodyFill, start, start + Math.min(body.length - this.bodyFill, input.length - start));
      this.bodyFill += n;
      this.offset = start + n;
      if (this.bodyFill < body.length) return this.drained();
      this.body = undefined;
      return body[0] === TERMINATE_CODE ? TERMINATE : body;
    }
    if (this.headerFill > 0) return this.afterCutHeader();
    // A run of whole messages, each header checked.
    let offset = start;
    while (input.length - offset >= HEADER_LENGTH) {
      const code = input[offset]!;
      const length = input.readInt32BE(offset + 1);
      checkLength(code, length);
      if (code === COPY_DATA || code === TERMINATE_CODE || input.length - offset - 1 < length) break;
      offset += 1 + length;
    }
    if (offset > start) {
      this.offset = offset;
      return start === 0 && offset === input.length ? input : input.subarray(start, offset);
    }
    if (input.length - offset < HEADER_LENGTH) {
      this.header ??= Buffer.allocUnsafe(HEADER_LENGTH);
      this.headerFill = input.copy(this.header, 0, offset);
      return this.drained();
    }
    const code = input[offset]!;
    const length = input.readInt32BE(offset + 1);
    if (code === COPY_DATA) {
      // The header goes out with what of the payload is here, the rest as it comes.
      const n = Math.min(length - 4, input.length - offset - HEADER_LENGTH);
      this.through = length - 4 - n;
      this.offset = offset + HEADER_LENGTH + n;
      return { through: input.subarray(offset, this.offset) };
    }
    if (code === TERMINATE_CODE && input.length - offset - 1 >= length) {
      this.offset = offset + 1 + length;
      return TERMINATE;
    }
    this.body = Buffer.allocUnsafe(1 + length);
    this.bodyFill = input.copy(this.body, 0, offset);
    return this.drained();
  }

  /** Every byte pushed is taken: the chunk is let go (an idle client would hold its last one). */
  private drained(): undefined {
    this.input = EMPTY;
    this.offset = 0;
    return undefined;
  }

  /** Completes a header cut at the last chunk's end, then goes on with its message. */
  private afterCutHeader(): ClientPiece | typeof TERMINATE | undefined {
    const input = this.input;
    const header = this.header!;
    const n = input.copy(header, this.headerFill, this.offset, Math.min(input.length, this.offset + HEADER_LENGTH - this.headerFill));
    this.headerFill += n;
    this.offset += n;
    if (this.headerFill < HEADER_LENGTH) return this.drained();
    this.headerFill = 0;
    const code = header[0]!;
    const length = header.readInt32BE(1);
    checkLength(code, length);
    if (code === COPY_DATA) {
      // The header rebuilt, then the payload as it comes.
      this.through = length - 4;
      return { through: Buffer.from(header) };
    }
    this.body = Buffer.allocUnsafe(1 + length);
    header.copy(this.body);
    this.bodyFill = HEADER_LENGTH;
    if (this.bodyFill === this.body.length) {
      const body = this.body;
      this.body = undefined;
      return code === TERMINATE_CODE ? TERMINATE : body;
    }
    return this.next();
  }
}

function checkLength(code: number, length: number): void {
  if (length < 4 || length > MAX_MESSAGE_LENGTH) throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
}
