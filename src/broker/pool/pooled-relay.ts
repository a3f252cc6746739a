/**
 * The relay of a session-mode pooled session, for either protocol: bytes both ways with
 * backpressure, but the server connection outlives the client. Client bytes pass the session's
 * tap (audit and the like) and then the protocol's stream tracker (which cuts the client's
 * Terminate / COM_QUIT); server bytes pass the tracker on their way to the client. When the client
 * goes, the server socket is left open, unlistened and paused, for the pool to reset or discard.
 * With `expiry` (disconnect_expired) the client is ended once the tracker says the session is at
 * rest after its token expired; the server connection goes back to the pool as usual.
 */
import type { Socket } from 'node:net';
import { errorMessage } from '../../errors.js';
import type { PooledExpiry } from '../expiry-watch.js';
import { clientHold, type RelayHold, type RelayTap } from '../relay.js';

/** What the relay needs of a protocol's tracker of both streams. */
export interface StreamTracker {
  /** The client's bytes to forward (cut before its goodbye); throws on bytes that cannot be framed. */
  fromClient(chunk: Buffer): Buffer;
  fromServer(chunk: Buffer): void;
  /** The client said goodbye. */
  readonly terminated: boolean;
}

export interface PooledRelayOptions {
  early: Buffer;
  tap?: RelayTap;
  /** Under `broker.audit.on_failure: block`: the client is not read while the audit waits (see relay()). */
  hold?: RelayHold;
  expiry?: PooledExpiry;
  /** Every request answered, outside a transaction: where an expired session may be cut. */
  atRest(): boolean;
  /**
   * What the client is sent last when the tracker cannot frame its bytes; without it (a tracker
   * that never throws) the client is closed without a farewell.
   */
  malformed?(message: string): Buffer;
}

export interface PooledRelayResult {
  error?: string;
  /** The server connection closed or failed, or where its stream stands is unknown: it cannot go back to the pool. */
  serverBroken: boolean;
}

export interface PooledRelay {
  /** Resolves when the client's session ends. */
  readonly done: Promise<PooledRelayResult>;
  /** Stops passing server bytes to the client (a MySQL COM_CHANGE_USER reads them itself); returns how to go on. */
  hold(): () => void;
}

export function pooledRelay(client: Socket, server: { readonly socket: Socket; readonly broken: boolean }, tracker: StreamTracker, o: PooledRelayOptions): PooledRelay {
  const upstream = server.socket;
  let finished = false;
  let held = false;
  let resolveDone!: (result: PooledRelayResult) => void;
  const done = new Promise<PooledRelayResult>((resolve) => (resolveDone = resolve));
  const end = (result: PooledRelayResult, last?: Buffer): void => {
    if (finished) return;
    finished = true;
    upstream.off('data', fromServer);
    upstream.off('error', serverError);
    upstream.off('close', serverClosed);
    upstream.off('drain', resumeClient);
    client.off('drain', resumeServer);
    client.off('data', fromClient);
    upstream.pause();
    if (last) client.end(last);
    else client.destroy();
    resolveDone(result);
  };
  const cutIfExpired = (): void => {
    if (!finished && !held && o.expiry?.due && o.atRest()) end({ serverBroken: false }, o.expiry.cut());
  };
  o.expiry?.whenExpired(cutIfExpired);
  const serverError = (e: Error): void => end({ error: `upstream: ${e.message}`, serverBroken: true });
  const serverClosed = (): void => end({ serverBroken: true });
  const audit = clientHold(client, o.hold, () => !finished && !upstream.writableNeedDrain);
  const resumeClient = (): void => {
    if (!audit.held) client.resume();
  };
  const resumeServer = (): void => {
    upstream.resume();
  };
  const fromServer = (chunk: Buffer): void => {
    try {
      tracker.fromServer(chunk);
    } catch (error) {
      end({ error: `upstream broke the protocol: ${errorMessage(error)}`, serverBroken: true });
      return;
    }
    if (!client.write(chunk)) upstream.pause();
    cutIfExpired();
  };
  const filter = o.tap?.((message) => end({ error: message, serverBroken: false }));
  const fromClient = (chunk: Buffer): void => {
    const passed = filter ? filter(chunk) : chunk;
    if (finished) return;
    let flowing = true;
    try {
      for (const part of Buffer.isBuffer(passed) ? [passed] : passed) {
        const out = tracker.fromClient(part);
        if (out.length > 0) flowing = upstream.write(out);
      }
    } catch (error) {
      // What the server already has may end in half a message: the connection is not reused.
      end({ error: `client sent a malformed message: ${errorMessage(error)}`, serverBroken: true }, o.malformed?.(errorMessage(error)));
      return;
    }
    if (tracker.terminated) end({ serverBroken: false });
    else if (!flowing) client.pause();
    if (filter && !finished) audit.after();
  };
  client.on('error', (e) => end({ error: `client: ${e.message}`, serverBroken: false }));
  client.on('close', () => end({ serverBroken: false }));
  client.on('end', () => end({ serverBroken: false }));
  upstream.on('error', serverError);
  upstream.on('close', serverClosed);
  if (client.destroyed || upstream.destroyed || server.broken) {
    end({ serverBroken: upstream.destroyed || server.broken });
  } else {
    upstream.setNoDelay(true);
    upstream.on('data', fromServer);
    upstream.on('drain', resumeClient);
    client.on('drain', resumeServer);
    client.on('data', fromClient);
    if (o.early.length > 0) fromClient(o.early);
    if (!audit.held && !upstream.writableNeedDrain) client.resume();
    upstream.resume();
  }
  return {
    done,
    hold: () => {
      held = true;
      upstream.off('data', fromServer);
      return () => {
        held = false;
        if (finished) return;
        upstream.on('data', fromServer);
        upstream.resume();
      };
    },
  };
}
