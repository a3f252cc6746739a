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
import { FrameDecoder, type FrameView } from '../codec/frame-decoder.js';
import { HEADER_LENGTH } from '../codec/frames.js';
import { joinBytes } from './join-bytes.js';
import { SERVER_HEAD_LENGTH } from './session-tracker.js';

/**
 * Enough of each message for the codes, an ErrorResponse's severity and, as the relay's
 * SessionTracker reads the messages framed here, a ParameterStatus.
 */
const HEAD_LENGTH = SERVER_HEAD_LENGTH;
const ERROR_RESPONSE = 0x45; // E
const NOTHING: Buffer = Buffer.alloc(0);

export class ReplyFilter {
  private readonly decoder: FrameDecoder;
  /** Stream offsets: bytes pushed, bytes of whole messages framed, bytes passed on or dropped. */
  private pushed = 0;
  private framed = 0;
  private settled = 0;
  /** Bytes pushed but not yet settled (a header cut at a chunk's end). */
  private held: Buffer = NOTHING;
  /** The server sent a FATAL (or PANIC) error: it ends the connection itself. */
  fatal = false;

  /**
   * `pass` says for each whole message whether it goes on to the client, or the message to send
   * instead; with `keep`, it is asked only about messages of those types (and an ErrorResponse),
   * the others pass unread, without a Frame made for each DataRow. The message it is shown is
   * the decoder's reusable view: valid only during the call.
   */
  constructor(
    private readonly pass: (message: FrameView) => boolean | Buffer,
    keep?: ReadonlySet<number>,
  ) {
    this.decoder = new FrameDecoder({ headLength: HEAD_LENGTH, ...(keep ? { keep: keep.has(ERROR_RESPONSE) ? keep : new Set([...keep, ERROR_RESPONSE]) } : {}) });
  }

  /** Bytes of whole messages framed so far (kept or not): with `pushed`, whether the stream stands at a message boundary. */
  get framedBytes(): number {
    return this.framed;
  }

  /**
   * The bytes of `chunk` (and of what was held) to send on, in one buffer (empty when there are
   * none): `chunk` itself when nothing is dropped or held, as most chunks are.
   */
  push(chunk: Buffer): Buffer {
    const start = this.pushed - this.held.length;
    this.pushed += chunk.length;
    /** Made at the first message dropped or replaced: [start, end, instead?] in the stream. */
    let cuts: Array<[number, number, Buffer?]> | undefined;
    this.decoder.push(chunk);
    for (let message = this.decoder.nextView(); message; message = this.decoder.nextView()) {
      this.framed = this.decoder.framedBytes;
      const at = this.framed - HEADER_LENGTH - message.length;
      if (message.code === ERROR_RESPONSE && isFatal(message.payload)) this.fatal = true;
      const verdict = this.pass(message);
      if (verdict === false) (cuts ??= []).push([at, this.framed]);
      // Replaced only when none of it was passed on yet and all of it is here; else it goes as it came.
      else if (verdict !== true && at >= this.settled && message.end - message.start === message.length && this.framed <= this.pushed) (cuts ??= []).push([at, this.framed, verdict]);
    }
    this.framed = this.decoder.framedBytes;
    // A message whose header is complete can be passed on in parts: only header-only ones are dropped.
    const until = this.pushed - this.framed < HEADER_LENGTH ? this.framed : this.pushed;
    if (cuts === undefined && this.held.length === 0 && until === this.pushed) {
      this.settled = this.pushed;
      return chunk;
    }
    const bytes = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const out: Buffer[] = [];
    let from = this.settled;
    for (const [cutStart, cutEnd, instead] of cuts ?? []) {
      if (cutStart > from) out.push(bytes.subarray(from - start, cutStart - start));
      if (instead) out.push(instead);
      from = cutEnd;
    }
    if (until > from) out.push(bytes.subarray(from - start, until - start));
    this.settled = Math.max(from, until);
    this.held = this.settled - start < bytes.length ? Buffer.from(bytes.subarray(this.settled - start)) : NOTHING;
    return out.length === 0 ? NOTHING : out.length === 1 ? out[0]! : joinBytes(out);
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
