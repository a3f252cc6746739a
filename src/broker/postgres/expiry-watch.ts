/**
 * `disconnect_expired`: once the person's token has expired, the session ends at its next
 * transaction boundary — a ReadyForQuery 'I' (idle, no transaction open) with nothing sent by the
 * client since — with a FATAL 57P01-style notice the client shows, as PostgreSQL ends an idle
 * session (idle_session_timeout). A session inside a transaction is never cut mid-way.
 *
 * It only watches: the server→client bytes are scanned for message boundaries on the side (no
 * copy, no framing on the relay's path), and the client's bytes are only noted.
 */
import type { Socket } from 'node:net';
import { encodeErrorResponse } from './codec/messages.js';

export const EXPIRED_MESSAGE = 'the Entra token this session signed in with has expired; sign in again with a new token';

/** PostgreSQL's Terminate message ('X'), so the server ends its backend at once. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I'
/** setTimeout takes at most 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ExpiryWatch {
  /** The session was ended because its token expired. */
  readonly fired: boolean;
  stop(): void;
}

export function watchExpiry(client: Socket, server: Socket, expiresAt: number, onCut: () => void, now: () => number = Date.now): ExpiryWatch {
  const scanner = new BoundaryScanner();
  // The login ended with ReadyForQuery 'I': the session is at rest until the client speaks.
  let idle = true;
  let expired = false;
  let fired = false;
  let timer: NodeJS.Timeout | undefined;

  const cut = (): void => {
    if (fired || client.destroyed) return;
    fired = true;
    stop();
    server.unpipe(client);
    client.end(encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: `terminating connection: ${EXPIRED_MESSAGE}`, hint: 'Get a new token (az account get-access-token --resource-type oss-rdbms) and connect again.' }));
    server.end(TERMINATE);
    onCut();
  };
  const fromServer = (chunk: Buffer): void => {
    const status = scanner.push(chunk);
    if (status === undefined) return;
    idle = status === IDLE;
    if (idle && expired) cut();
  };
  const fromClient = (): void => {
    idle = false;
  };
  const arm = (): void => {
    const left = expiresAt - now();
    if (left > MAX_TIMER_MS) {
      timer = setTimeout(arm, MAX_TIMER_MS).unref();
      return;
    }
    timer = setTimeout(() => {
      expired = true;
      if (idle) cut();
    }, Math.max(0, left)).unref();
  };
  function stop(): void {
    clearTimeout(timer);
    server.off('data', fromServer);
    client.off('data', fromClient);
  }

  server.on('data', fromServer);
  client.on('data', fromClient);
  arm();
  return {
    get fired() {
      return fired;
    },
    stop,
  };
}

/**
 * Finds message boundaries in the backend stream (type byte, 4-byte length, body) across chunks;
 * `push` returns the status byte of the last ReadyForQuery that ends the chunk, if the chunk ends
 * right after one, else undefined (more is coming, so the session is not at rest).
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
        if (this.inReady && take > 0) this.readyStatus = chunk[at]!;
        at += take;
        this.remaining -= take;
        if (this.remaining === 0 && this.inReady) lastStatus = this.readyStatus;
        else lastStatus = undefined;
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
    return at === chunk.length && this.remaining === 0 && this.headerLength === 0 ? lastStatus : undefined;
  }
}
