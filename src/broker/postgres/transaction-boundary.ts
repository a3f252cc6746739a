/**
 * When a PostgreSQL session is at rest, for `disconnect_expired`: the server's last message was
 * ReadyForQuery 'I' (idle, no transaction open) and the client has sent nothing since.
 */
import type { BoundaryTracker, Farewell } from '../expiry-watch.js';
import { EXPIRED_HINT, EXPIRED_MESSAGE } from '../expiry-watch.js';
import { encodeErrorResponse } from './codec/messages.js';

const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I'

/** `early`: client bytes read past the login, which the server has not answered yet. */
export function postgresBoundary(early: Buffer): BoundaryTracker {
  const scanner = new BoundaryScanner();
  // The login ended with ReadyForQuery 'I': at rest until the client speaks.
  let atRest = early.length === 0;
  return {
    fromServer(chunk) {
      const status = scanner.push(chunk);
      atRest = status === IDLE;
    },
    fromClient() {
      atRest = false;
    },
    get atRest() {
      return atRest;
    },
  };
}

/** A FATAL the client shows (57P01, as a server shutting a session down), then Terminate to the server. */
export const POSTGRES_FAREWELL: Farewell = {
  client: encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: `terminating connection: ${EXPIRED_MESSAGE}`, hint: EXPIRED_HINT }),
  server: Buffer.from([0x58, 0, 0, 0, 4]), // Terminate ('X')
};

/**
 * Finds message boundaries in the backend stream (type byte, 4-byte length, body) across chunks;
 * `push` returns the status byte of a ReadyForQuery that ends the chunk, else undefined (more is
 * coming, so the session is not at rest).
 */
export class BoundaryScanner {
  /** Bytes of the current message still to skip. */
  private remaining = 0;
  /** Header bytes seen of the next message (type + length), when it spans chunks. */
  private readonly header = Buffer.alloc(5);
  private headerLength = 0;
  private inReady = false;
  private readyStatus = 0;

  push(chunk: Buffer): number | undefined {
    let at = 0;
    let lastStatus: number | undefined;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        if (this.inReady) this.readyStatus = chunk[at]!;
        at += take;
        this.remaining -= take;
        lastStatus = this.remaining === 0 && this.inReady ? this.readyStatus : undefined;
        continue;
      }
      const take = Math.min(5 - this.headerLength, chunk.length - at);
      chunk.copy(this.header, this.headerLength, at, at + take);
      this.headerLength += take;
      at += take;
      lastStatus = undefined;
      if (this.headerLength < 5) break;
      this.headerLength = 0;
      this.inReady = this.header[0] === READY_FOR_QUERY;
      this.remaining = this.header.readUInt32BE(1) - 4;
    }
    return this.remaining === 0 && this.headerLength === 0 ? lastStatus : undefined;
  }
}
