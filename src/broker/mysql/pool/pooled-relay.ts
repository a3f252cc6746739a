/**
 * The relay of a pooled MySQL session: bytes both ways with backpressure, but the server
 * connection outlives the client. Client bytes pass the session's tap (the command gate: audit,
 * KILL translation, COM_CHANGE_USER) and then the ExchangeTracker (which cuts COM_QUIT); server
 * bytes pass the tracker on their way to the client. When the client goes, the server socket is
 * left open, unlistened and paused, for the pool to reset or discard. With `expiry`
 * (disconnect_expired) the client is ended once every command is answered outside a transaction
 * after its token expired; the server connection goes back to the pool as usual.
 */
import type { Socket } from 'node:net';
import type { PooledExpiry } from '../../expiry-watch.js';
import type { RelayTap } from '../../relay.js';
import type { ExchangeTracker } from './exchange-tracker.js';
import type { MySqlServerConnection } from './server-connection.js';

export interface PooledRelayResult {
  error?: string;
  /** The server connection closed or failed: it cannot go back to the pool. */
  serverBroken: boolean;
}

export interface PooledRelay {
  /** Resolves when the client's session ends. */
  readonly done: Promise<PooledRelayResult>;
  /** Stops passing server bytes to the client (a COM_CHANGE_USER reads them itself); returns how to go on. */
  hold(): () => void;
}

export function pooledRelay(client: Socket, server: MySqlServerConnection, tracker: ExchangeTracker, early: Buffer, tap?: RelayTap, expiry?: PooledExpiry): PooledRelay {
  const upstream = server.socket;
  let finished = false;
  /** A COM_CHANGE_USER reads the server's bytes itself. */
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
    if (!finished && !held && expiry?.due && tracker.idle && !tracker.inTransaction) end({ serverBroken: false }, expiry.cut());
  };
  expiry?.whenExpired(cutIfExpired);
  const serverError = (e: Error): void => end({ error: `upstream: ${e.message}`, serverBroken: true });
  const serverClosed = (): void => end({ serverBroken: true });
  const resumeClient = (): void => {
    client.resume();
  };
  const resumeServer = (): void => {
    upstream.resume();
  };
  const fromServer = (chunk: Buffer): void => {
    tracker.fromServer(chunk);
    if (!client.write(chunk)) upstream.pause();
    cutIfExpired();
  };
  const filter = tap?.((message) => end({ error: message, serverBroken: false }));
  const fromClient = (chunk: Buffer): void => {
    const passed = filter ? filter(chunk) : chunk;
    if (finished) return;
    const parts = Buffer.isBuffer(passed) ? [passed] : passed;
    let flowing = true;
    for (const part of parts) {
      const out = tracker.fromClient(part);
      if (out.length > 0) flowing = upstream.write(out);
    }
    if (tracker.terminated) end({ serverBroken: false });
    else if (!flowing) client.pause();
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
    if (early.length > 0) fromClient(early);
    client.resume();
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
