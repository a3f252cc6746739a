/**
 * `disconnect_expired`: once the person's token has expired, the session ends at its next
 * transaction boundary — the server has answered everything the client sent and no transaction
 * is open — with a notice the client shows, as a server ends an idle session. A session inside a
 * transaction, or with a command in flight, is never cut.
 *
 * Unpooled, it only watches: each protocol's {@link BoundaryTracker} scans both streams on the
 * side (no copy, nothing on the relay's path) and says when the session is at rest. A pooled
 * relay follows the boundaries itself and asks {@link pooledExpiry} at them.
 */
import type { Socket } from 'node:net';

export const EXPIRED_MESSAGE = 'the Entra token this session signed in with has expired; sign in again with a new token';
export const EXPIRED_HINT = 'Get a new token (az account get-access-token --resource-type oss-rdbms) and connect again.';

/** Follows a protocol's messages to know when the session is at a transaction boundary. */
export interface BoundaryTracker {
  fromServer(chunk: Buffer): void;
  fromClient(chunk: Buffer): void;
  /** Everything sent has been answered, and no transaction is open. */
  readonly atRest: boolean;
}

/** What each side is sent at the cut: the client a notice, the server a goodbye (Terminate, COM_QUIT). */
export interface Farewell {
  client: Buffer;
  server: Buffer;
}

export interface ExpiryWatch {
  /** The session was ended because its token expired. */
  readonly fired: boolean;
  stop(): void;
}

/** setTimeout takes at most 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When the person's token expires: `expired` from then on, and `onExpired` called once then. */
export interface ExpiryClock {
  readonly expired: boolean;
  stop(): void;
}

export function expiryClock(expiresAt: number, onExpired: () => void, now: () => number = Date.now): ExpiryClock {
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = expiresAt - now();
    if (left > MAX_TIMER_MS) {
      timer = setTimeout(arm, MAX_TIMER_MS).unref();
      return;
    }
    timer = setTimeout(() => {
      expired = true;
      onExpired();
    }, Math.max(0, left)).unref();
  };
  arm();
  return {
    get expired() {
      return expired;
    },
    stop: () => clearTimeout(timer),
  };
}

/** Start it after the relay's pipes, so each server chunk has reached the client before it is looked at. */
export function watchExpiry(client: Socket, server: Socket, expiresAt: number, tracker: BoundaryTracker, farewell: Farewell, onCut: () => void, now: () => number = Date.now): ExpiryWatch {
  let fired = false;

  const cut = (): void => {
    if (fired || client.destroyed) return;
    fired = true;
    stop();
    server.unpipe(client);
    client.end(farewell.client);
    server.end(farewell.server);
    onCut();
  };
  const fromServer = (chunk: Buffer): void => {
    tracker.fromServer(chunk);
    if (clock.expired && tracker.atRest) cut();
  };
  const fromClient = (chunk: Buffer): void => tracker.fromClient(chunk);
  const clock = expiryClock(
    expiresAt,
    () => {
      if (tracker.atRest) cut();
    },
    now,
  );
  function stop(): void {
    clock.stop();
    server.off('data', fromServer);
    client.off('data', fromClient);
  }

  server.on('data', fromServer);
  client.on('data', fromClient);
  return {
    get fired() {
      return fired;
    },
    stop,
  };
}

/**
 * `disconnect_expired` on a pooled relay, which follows its own transaction boundaries (the
 * SessionTracker, the ExchangeTracker): the relay asks `due` where it knows the session is at
 * rest — and `whenExpired` calls it back once the token expires, for a session already at rest
 * then — and ends the client with `cut()`'s farewell. The server connection is the pool's: it
 * goes back as after any session, nothing is sent to it.
 */
export interface PooledExpiry {
  /** The token has expired: a session at rest is to be cut. */
  readonly due: boolean;
  /** The session was cut. */
  readonly fired: boolean;
  /** `check` runs when the token expires (the relay's own "cut now if at rest"). */
  whenExpired(check: () => void): void;
  /** Marks the session cut; returns what the client is sent last. */
  cut(): Buffer;
  stop(): void;
}

export function pooledExpiry(expiresAt: number, farewell: Buffer, onCut: () => void, now: () => number = Date.now): PooledExpiry {
  let check: (() => void) | undefined;
  let fired = false;
  const clock = expiryClock(expiresAt, () => check?.(), now);
  return {
    get due() {
      return clock.expired && !fired;
    },
    get fired() {
      return fired;
    },
    whenExpired(next) {
      check = next;
    },
    cut() {
      fired = true;
      clock.stop();
      onCut();
      return farewell;
    },
    stop: () => clock.stop(),
  };
}
