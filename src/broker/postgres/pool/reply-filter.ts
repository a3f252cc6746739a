/**
 * The server→client stream of a transaction-mode relay with the replies azdb asked for itself
 * taken out (the ParseComplete of an injected Parse, the CloseComplete of an evicted statement),
 * or, for a short message that lies whole in what was pushed, replaced (an error naming azdb's
 * statement instead of the client's).
 * Those are header-only messages (5 bytes), so the filter frames the stream on the side with
 * message heads only and passes the chunks through as they are — no copy — unless one of them
 * holds a message to drop; the bytes of a header cut off at the end of a chunk wait for the next
 * one, so that a dropped message is never half sent. Pure: bytes in, bytes out.
 */
import { FrameDecoder } from '../codec/frame-decoder.js';
import { HEADER_LENGTH, type Frame } from '../codec/frames.js';
import { SERVER_HEAD_LENGTH } from './session-tracker.js';

/**
 * Enough of each message for the codes, an ErrorResponse's severity and, as the relay's
 * SessionTracker reads the messages framed here, a ParameterStatus.
 */
const HEAD_LENGTH = SERVER_HEAD_LENGTH;
const ERROR_RESPONSE = 0x45; // E

export class ReplyFilter {
  private readonly decoder: FrameDecoder;
  /** Stream offsets: bytes pushed, bytes of whole messages framed, bytes passed on or dropped. */
  private pushed = 0;
  private framed = 0;
  private settled = 0;
  /** Bytes pushed but not yet settled (a header cut at a chunk's end). */
  private held: Buffer = Buffer.alloc(0);
  /** The server sent a FATAL (or PANIC) error: it ends the connection itself. */
  fatal = false;

  /**
   * `pass` says for each whole message whether it goes on to the client, or the message to send
   * instead; with `keep`, it is asked only about messages of those types (and an ErrorResponse),
   * the others pass unread, without a Frame made for each DataRow.
   */
  constructor(
    private readonly pass: (frame: Frame) => boolean | Buffer,
    keep?: ReadonlySet<number>,
  ) {
    this.decoder = new FrameDecoder({ headLength: HEAD_LENGTH, ...(keep ? { keep: keep.has(ERROR_RESPONSE) ? keep : new Set([...keep, ERROR_RESPONSE]) } : {}) });
  }

  /** Bytes of whole messages framed so far (kept or not): with `pushed`, whether the stream stands at a message boundary. */
  get framedBytes(): number {
    return this.framed;
  }

  /** The bytes of `chunk` (and of what was held) to send on, in order. */
  push(chunk: Buffer): Buffer[] {
    const start = this.pushed - this.held.length;
    this.pushed += chunk.length;
    const cuts: Array<[number, number, Buffer?]> = [];
    this.decoder.push(chunk);
    for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
      this.framed = this.decoder.framedBytes;
      const at = this.framed - HEADER_LENGTH - frame.length;
      if (frame.code === ERROR_RESPONSE && isFatal(frame.payload)) this.fatal = true;
      const verdict = this.pass(frame);
      if (verdict === false) cuts.push([at, this.framed]);
      // Replaced only when none of it was passed on yet and all of it is here; else it goes as it came.
      else if (verdict !== true && at >= this.settled && frame.payload.length === frame.length && this.framed <= this.pushed) cuts.push([at, this.framed, verdict]);
    }
    this.framed = this.decoder.framedBytes;
    // A message whose header is complete can be passed on in parts: only header-only ones are dropped.
    const until = this.pushed - this.framed < HEADER_LENGTH ? this.framed : this.pushed;
    if (cuts.length === 0 && this.held.length === 0 && until === this.pushed) {
      this.settled = this.pushed;
      return chunk.length > 0 ? [chunk] : [];
    }
    const bytes = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const out: Buffer[] = [];
    let from = this.settled;
    for (const [cutStart, cutEnd, instead] of cuts) {
      if (cutStart > from) out.push(bytes.subarray(from - start, cutStart - start));
      if (instead) out.push(instead);
      from = cutEnd;
    }
    if (until > from) out.push(bytes.subarray(from - start, until - start));
    this.settled = Math.max(from, until);
    this.held = Buffer.from(bytes.subarray(this.settled - start));
    return out;
  }
}

/** Severity of an ErrorResponse from its fields (S localized, V not), as far as the head goes. */
function isFatal(payload: Buffer): boolean {
  let offset = 0;
  while (offset < payload.length && payload[offset] !== 0) {
    const type = payload[offset]!;
    const end = payload.indexOf(0, offset + 1);
    if (end < 0) return false;
    const value = payload.toString('utf8', offset + 1, end);
    if ((type === 0x53 /* S */ || type === 0x56) /* V */ && (value === 'FATAL' || value === 'PANIC')) return true;
    offset = end + 1;
  }
  return false;
}
