/**
 * When an unpooled PostgreSQL session is at rest, for `disconnect_expired`: what the pooled relays
 * hand a connection back on (SessionTracker idleStatus() 'I') — every query the client sent has
 * had its ReadyForQuery, the last one says idle, no transaction open, nothing half-sent.
 */
import type { BoundaryTracker, Farewell } from '../expiry-watch.js';
import { EXPIRED_HINT, EXPIRED_MESSAGE } from '../expiry-watch.js';
import { encodeErrorResponse } from './codec/messages.js';
import { SessionTracker } from './pool/session-tracker.js';

/** `early`: client bytes read past the login, which the server has not answered yet. */
export function postgresBoundary(early: Buffer): BoundaryTracker {
  const tracker = new SessionTracker(new Map());
  // Bytes the tracker cannot frame: the session is never at rest again (the server ends it).
  let lost = false;
  const follow = (push: () => void): void => {
    if (lost) return;
    try {
      push();
    } catch {
      lost = true;
    }
  };
  if (early.length > 0) follow(() => tracker.fromClient(early));
  return {
    fromServer: (chunk) => follow(() => tracker.fromServer(chunk)),
    fromClient: (chunk) => follow(() => tracker.fromClient(chunk)),
    get atRest() {
      return !lost && tracker.idleStatus() === 'I';
    },
  };
}

/** A FATAL the client shows (57P01, as a server shutting a session down), then Terminate to the server. */
export const POSTGRES_FAREWELL: Farewell = {
  client: encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: `terminating connection: ${EXPIRED_MESSAGE}`, hint: EXPIRED_HINT }),
  server: Buffer.from([0x58, 0, 0, 0, 4]), // Terminate ('X')
};
