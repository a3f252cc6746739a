/**
 * Finds the messages audit records (Query, Parse, Bind, Execute) in the client→server byte
 * stream without buffering anything else: other messages, COPY data above all, are skipped by
 * length. The stream itself is forwarded untouched by the caller. Pure.
 */
import { PgProtocolError } from './codec/protocol-error.js';
import { describeCode } from './codec/frames.js';

const AUDITED = new Set([0x51 /* Q */, 0x50 /* P */, 0x42 /* B */, 0x45 /* E */]);

export interface ScannedMessage {
  code: number;
  payload: Buffer;
}

export class QueryScanner {
  private header = Buffer.alloc(5);
  private headerFill = 0;
  private skip = 0;
  private collecting: { code: number; payload: Buffer; filled: number } | undefined;

  constructor(private readonly maxMessageLength: number) {}

  push(chunk: Buffer): ScannedMessage[] {
    const found: ScannedMessage[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      if (this.collecting) {
        const c = this.collecting;
        const n = Math.min(c.payload.length - c.filled, chunk.length - offset);
        chunk.copy(c.payload, c.filled, offset, offset + n);
        c.filled += n;
        offset += n;
        if (c.filled === c.payload.length) {
          found.push({ code: c.code, payload: c.payload });
          this.collecting = undefined;
        }
        continue;
      }
      const n = Math.min(5 - this.headerFill, chunk.length - offset);
      chunk.copy(this.header, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      if (this.headerFill < 5) continue;
      this.headerFill = 0;
      const code = this.header[0]!;
      const length = this.header.readInt32BE(1);
      if (length < 4 || length > this.maxMessageLength) {
        throw new PgProtocolError(`invalid message length ${length} for message type ${describeCode(code)}`);
      }
      const payloadLength = length - 4;
      if (AUDITED.has(code)) {
        if (payloadLength === 0) found.push({ code, payload: Buffer.alloc(0) });
        else this.collecting = { code, payload: Buffer.allocUnsafe(payloadLength), filled: 0 };
      } else {
        this.skip = payloadLength;
      }
    }
    return found;
  }
}
