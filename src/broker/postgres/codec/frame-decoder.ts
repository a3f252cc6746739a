/**
 * The one streaming decoder of the PostgreSQL protocol, for every phase and both directions: the
 * handshake reads its packets through it, the relay's audit frames the client's stream with it.
 * It is fed chunks as they arrive (`push`) and asked for one unit at a time; a message that lies
 * within a chunk comes out as a view into it, and only a message that spans chunks is copied,
 * once, into a buffer of its known size. Lengths are checked as soon as a header is complete.
 *
 * The protocol frames its stream three ways, and which one comes next is the caller's knowledge,
 * so it asks for it: the untyped packets a connection opens with (`nextStartupPacket`), the
 * one-byte answer to SSLRequest (`nextByte`), typed messages (`next`). Nothing is decoded before
 * it is asked for, so `rest` returns the bytes after the last unit exactly as they came (the TLS
 * handshake, or the first bytes to relay).
 *
 * For the relay, messages whose type is not in `keep` are skipped by length (never buffered, not
 * capped: the server judges them) and not returned, and kept ones are cut to `headLength`.
 * Pure: no sockets. After a PgProtocolError the decoder is spent.
 */
import { describeCode, HEADER_LENGTH, type Frame } from './frames.js';
import { PgProtocolError, PgStartupRefusal } from './protocol-error.js';
import { decodeStartupPacket, INVALID_STARTUP_LENGTH, MAX_STARTUP_LENGTH, type StartupPacket } from './startup.js';

/**
 * The longest message a PostgreSQL server reads, its length field included (PQ_LARGE_MESSAGE_LIMIT,
 * MaxAllocSize - 1, for Query, Parse, Bind and CopyData; other types have lower limits).
 */
export const MAX_MESSAGE_LENGTH = 0x3fff_fffe;

export interface FrameDecoderOptions {
  /** The longest kept message, length field included; a longer one is a PgProtocolError. @default MAX_MESSAGE_LENGTH */
  maxLength?: number;
  /** Types of the messages `next` returns; others are skipped. @default every type */
  keep?: ReadonlySet<number>;
  /** Payload bytes kept of each message; a longer one comes out cut (`payload` shorter than `length`). @default all */
  headLength?: number;
}

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * A message as `nextView` finds it, in an object the decoder reuses (valid until its next call):
 * its payload (a view) is made only when read, so that a caller who needs the type, or one byte,
 * allocates nothing per message.
 */
export class FrameView implements Frame {
  code = 0;
  length = 0;
  /** The bytes holding the kept payload, from `start` to `end`. */
  source: Buffer = EMPTY;
  start = 0;
  end = 0;

  get payload(): Buffer {
    return this.source.subarray(this.start, this.end);
  }

  /** The payload's byte at `index`, undefined past what was kept. */
  byte(index: number): number | undefined {
    return index < this.end - this.start ? this.source[this.start + index] : undefined;
  }
}
/** An untyped startup packet's header: the int32 length alone. */
const STARTUP_HEADER_LENGTH = 4;
/** What a header is being read for, or what the message in progress is. */
type Framing = typeof HEADER_LENGTH | typeof STARTUP_HEADER_LENGTH;

export class FrameDecoder {
  private readonly maxLength: number;
  private readonly keep: ReadonlySet<number> | undefined;
  private readonly headLength: number;

  /** The chunk being decoded and how far. */
  private input: Buffer = EMPTY;
  private offset = 0;
  /**
   * A header split across chunks; made when one is. Not from Node's shared buffer pool: a decoder
   * lives as long as its session, and a small slice would keep a whole 8 KiB pool slab alive.
   */
  private header: Buffer | undefined;
  private headerFill = 0;
  /** The framing of a header or message in progress; 0 at a message boundary. */
  private framing: Framing | 0 = 0;
  /** A message spanning chunks: its type, payload length, kept bytes so far, bytes still to come. */
  private spanning = false;
  private code = 0;
  private length = 0;
  private kept = false;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private remaining = 0;
  /** Bytes of the whole messages decoded so far, skipped ones included: where the last one ended in the stream. */
  framedBytes = 0;
  private readonly view = new FrameView();

  constructor(options: FrameDecoderOptions = {}) {
    this.maxLength = options.maxLength ?? MAX_MESSAGE_LENGTH;
    this.keep = options.keep;
    this.headLength = options.headLength ?? Infinity;
  }

  /** Hands over the next chunk; call once `next` (or the other readers) returned undefined. */
  push(chunk: Buffer): void {
    if (this.offset < this.input.length) throw new Error('FrameDecoder: a chunk was pushed before the last one was decoded');
    this.input = chunk;
    this.offset = 0;
    // The view's bytes of the last message (a spanning one's own buffer) are not kept past it.
    this.view.source = EMPTY;
  }

  /** The next whole typed message (of a kept type), or undefined when more bytes are needed. */
  next(): Frame | undefined {
    const view = this.decode(HEADER_LENGTH);
    return view && { code: view.code, length: view.length, payload: view.payload };
  }

  /** As `next`, in the decoder's one FrameView (see there): valid until the decoder is called again. */
  nextView(): FrameView | undefined {
    return this.decode(HEADER_LENGTH);
  }

  /** The next SSLRequest, GSSENCRequest, CancelRequest or StartupMessage, or undefined when more bytes are needed. */
  nextStartupPacket(): StartupPacket | undefined {
    const frame = this.decode(STARTUP_HEADER_LENGTH);
    return frame && decodeStartupPacket(frame.payload);
  }

  /** The next single byte (a server's 'S' or 'N' answer to SSLRequest), or undefined when none is there. */
  nextByte(): number | undefined {
    if (this.framing !== 0) throw new Error('FrameDecoder: a byte was asked for in the middle of a message');
    return this.offset < this.input.length ? this.input[this.offset++] : undefined;
  }

  /**
   * The bytes pushed and not yet returned, as they came (a message in progress included); the
   * decoder is empty afterwards. Not possible while a message is being skipped or cut.
   */
  rest(): Buffer {
    const tail = this.input.subarray(this.offset);
    let head = EMPTY;
    if (this.spanning) {
      if (this.body === undefined ? this.length > 0 : this.body.length < this.length) {
        throw new Error('FrameDecoder: the bytes of a skipped or cut message are gone');
      }
      head = Buffer.allocUnsafe(this.framing + this.bodyFill);
      if (this.framing === HEADER_LENGTH) head[0] = this.code;
      head.writeInt32BE(this.length + 4, this.framing - 4);
      this.body?.copy(head, this.framing, 0, this.bodyFill);
    } else if (this.headerFill > 0) {
      head = Buffer.from(this.header!.subarray(0, this.headerFill));
    }
    this.input = EMPTY;
    this.offset = 0;
    this.headerFill = 0;
    this.framing = 0;
    this.spanning = false;
    this.body = undefined;
    return head.length === 0 ? tail : Buffer.concat([head, tail]);
  }

  private decode(framing: Framing): FrameView | undefined {
    if (this.framing !== 0 && this.framing !== framing) throw new Error('FrameDecoder: a message was asked for in another framing than the one in progress');
    const input = this.input;
    for (;;) {
      if (!this.spanning) {
        let code = 0;
        let length: number;
        if (this.headerFill === 0 && input.length - this.offset >= framing) {
          if (framing === HEADER_LENGTH) code = input[this.offset]!;
          length = input.readInt32BE(this.offset + framing - 4);
          this.offset += framing;
        } else {
          this.framing = framing;
          const header = (this.header ??= Buffer.alloc(HEADER_LENGTH));
          const n = input.copy(header, this.headerFill, this.offset, Math.min(input.length, this.offset + framing - this.headerFill));
          this.headerFill += n;
          this.offset += n;
          if (this.headerFill < framing) return undefined;
          this.headerFill = 0;
          if (framing === HEADER_LENGTH) code = header[0]!;
          length = header.readInt32BE(framing - 4);
        }
        const kept = framing === STARTUP_HEADER_LENGTH || this.keep === undefined || this.keep.has(code);
        this.check(framing, code, length, kept);
        const payloadLength = length - 4;
        const limit = framing === STARTUP_HEADER_LENGTH ? Infinity : this.headLength;
        const keepLength = !kept ? 0 : payloadLength <= limit ? payloadLength : limit;
        if (input.length - this.offset >= payloadLength) {
          // Whole within the chunk: a view, nothing copied.
          const start = this.offset;
          this.offset += payloadLength;
          this.framing = 0;
          this.framedBytes += framing + payloadLength;
          if (kept) return this.found(code, payloadLength, input, start, start + keepLength);
          continue;
        }
        this.framing = framing;
        this.spanning = true;
        this.code = code;
        this.length = payloadLength;
        this.kept = kept;
        this.body = keepLength > 0 ? Buffer.allocUnsafe(keepLength) : undefined;
        this.bodyFill = 0;
        this.remaining = payloadLength;
      }
      const n = Math.min(this.remaining, input.length - this.offset);
      const body = this.body;
      if (body !== undefined && this.bodyFill < body.length) {
        this.bodyFill += input.copy(body, this.bodyFill, this.offset, this.offset + Math.min(n, body.length - this.bodyFill));
      }
      this.offset += n;
      this.remaining -= n;
      if (this.remaining > 0) return undefined;
      this.spanning = false;
      this.framedBytes += this.framing + this.length;
      this.framing = 0;
      this.body = undefined;
      if (this.kept) return this.found(this.code, this.length, body ?? EMPTY, 0, body?.length ?? 0);
    }
  }

  private found(code: number, length: number, source: Buffer, start: number, end: number): FrameView {
    const view = this.view;
    view.code = code;
    view.length = length;
    view.source = source;
    view.start = start;
    view.end = end;
    return view;
  }

  private check(framing: Framing, code: number, length: number, kept: boolean): void {
    if (framing === STARTUP_HEADER_LENGTH) {
      // The length, and a protocol code or request code after it.
      if (length < 8 || length - 4 > MAX_STARTUP_LENGTH) throw new PgStartupRefusal(`${INVALID_STARTUP_LENGTH} (${length})`);
    } else if (length < 4 || (kept && length > this.maxLength)) {
      throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
    }
  }
}
