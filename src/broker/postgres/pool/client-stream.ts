/**
 * The client's stream of a transaction-mode session, split into what the relay must look at and
 * what it only forwards. Every message comes out whole (a view into its chunk, or copied once when
 * it spans chunks) for the pin scanner, the statement mapper and Terminate — except CopyData,
 * which carries the bulk of a COPY FROM STDIN and is neither scanned nor rewritten: its bytes come
 * out as they arrive, views of the chunks, so a large one is never held whole. Lengths are
 * checked as FrameDecoder does. Pure: chunks in, pieces out.
 */
import { MAX_MESSAGE_LENGTH } from '../codec/frame-decoder.js';
import { describeCode, HEADER_LENGTH, type Frame } from '../codec/frames.js';
import { PgProtocolError } from '../codec/protocol-error.js';

const COPY_DATA = 0x64; // d

/**
 * A whole message (with `bytes`, its header and payload as received, when they lie in one chunk),
 * or bytes of a CopyData message (its header included) to forward as they are.
 */
export type ClientPiece = { frame: Frame; bytes?: Buffer; through?: undefined } | { frame?: undefined; through: Buffer };

export class ClientStream {
  /** A header cut at a chunk's end (allocated the first time one is: most clients never need it). */
  private header: Buffer | undefined;
  private headerFill = 0;
  /** A kept message spanning chunks: its type, its buffer and how full. */
  private code = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  /** CopyData bytes still to pass through. */
  private through = 0;

  /** The pieces of `chunk`, in order; a message cut at the chunk's end continues with the next. */
  push(chunk: Buffer): ClientPiece[] {
    const pieces: ClientPiece[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.through > 0) {
        const n = Math.min(this.through, chunk.length - offset);
        pieces.push({ through: chunk.subarray(offset, offset + n) });
        this.through -= n;
        offset += n;
        continue;
      }
      if (this.body !== undefined) {
        const n = chunk.copy(this.body, this.bodyFill, offset, offset + Math.min(this.body.length - this.bodyFill, chunk.length - offset));
        this.bodyFill += n;
        offset += n;
        if (this.bodyFill === this.body.length) {
          pieces.push({ frame: { code: this.code, length: this.body.length, payload: this.body } });
          this.body = undefined;
        }
        continue;
      }
      // A header: whole in the chunk, or completed from the bytes held.
      let code: number;
      let length: number;
      let headerStart = offset;
      if (this.headerFill === 0 && chunk.length - offset >= HEADER_LENGTH) {
        code = chunk[offset]!;
        length = chunk.readInt32BE(offset + 1);
        offset += HEADER_LENGTH;
      } else {
        this.header ??= Buffer.allocUnsafe(HEADER_LENGTH);
        const n = chunk.copy(this.header, this.headerFill, offset, Math.min(chunk.length, offset + HEADER_LENGTH - this.headerFill));
        this.headerFill += n;
        offset += n;
        if (this.headerFill < HEADER_LENGTH) break;
        this.headerFill = 0;
        headerStart = -1;
        code = this.header[0]!;
        length = this.header.readInt32BE(1);
      }
      if (length < 4 || length > MAX_MESSAGE_LENGTH) throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
      const payloadLength = length - 4;
      if (code === COPY_DATA) {
        // The header goes out first (as received, or rebuilt when it was split), then the payload as it comes.
        const n = Math.min(payloadLength, chunk.length - offset);
        if (headerStart >= 0) pieces.push({ through: chunk.subarray(headerStart, offset + n) });
        else {
          pieces.push({ through: Buffer.from(this.header!) });
          if (n > 0) pieces.push({ through: chunk.subarray(offset, offset + n) });
        }
        this.through = payloadLength - n;
        offset += n;
        continue;
      }
      if (chunk.length - offset >= payloadLength) {
        const frame = { code, length: payloadLength, payload: chunk.subarray(offset, offset + payloadLength) };
        pieces.push(headerStart >= 0 ? { frame, bytes: chunk.subarray(headerStart, offset + payloadLength) } : { frame });
        offset += payloadLength;
        continue;
      }
      this.code = code;
      this.body = Buffer.allocUnsafe(payloadLength);
      this.bodyFill = chunk.copy(this.body, 0, offset);
      offset = chunk.length;
    }
    return pieces;
  }
}
