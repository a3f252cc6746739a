/**
 * The relay of a pooled session: like relay(), bytes both ways with backpressure, but the server
 * connection outlives the client. Both streams go through the SessionTracker (the client's
 * Terminate is cut; ReadyForQuery and ParameterStatus are noted), and when the client goes the
 * server socket is left open, unpiped and paused, for the pool to reset or discard. With
 * `expiry` (disconnect_expired) the client is ended at the first ReadyForQuery 'I' with nothing
 * outstanding once its token has expired; the server connection goes back to the pool as usual.
 */
import type { Socket } from 'node:net';
import { errorMessage } from '../../../errors.js';
import { encodeErrorResponse } from '../codec/messages.js';
import type { PooledExpiry } from '../../expiry-watch.js';
import type { RelayTap } from '../../relay.js';
import type { ServerConnection } from './server-connection.js';
import type { SessionTracker } from './session-tracker.js';

export interface PooledRelayResult {
  error?: string;
  /** The server connection closed or failed, or where its stream stands is unknown: it cannot go back to the pool. */
  serverBroken: boolean;
}

export function pooledRelay(client: Socket, server: ServerConnection, tracker: SessionTracker, early: Buffer, tap?: RelayTap, expiry?: PooledExpiry): Promise<PooledRelayResult> {
  const upstream = server.socket;
  return new Promise((resolve) => {
    let done = false;
    const end = (result: PooledRelayResult, last?: Buffer): void => {
      if (done) return;
      done = true;
      upstream.off('data', fromServer);
      upstream.off('error', serverError);
      upstream.off('close', serverClosed);
      upstream.off('drain', resumeClient);
      client.off('drain', resumeServer);
      client.off('data', fromClient);
      upstream.pause();
      if (last) client.end(last);
      else client.destroy();
      resolve(result);
    };
    const cutIfExpired = (): void => {
      if (!done && expiry?.due && tracker.idleStatus() === 'I') end({ serverBroken: false }, expiry.cut());
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
      try {
        tracker.fromServer(chunk);
      } catch (error) {
        end({ error: `upstream broke the protocol: ${errorMessage(error)}`, serverBroken: true });
        return;
      }
      if (!client.write(chunk)) upstream.pause();
      cutIfExpired();
    };
    const filter = tap?.((message) => end({ error: message, serverBroken: false }));
    const fromClient = (chunk: Buffer): void => {
      const audited = filter ? filter(chunk) : chunk;
      if (done) return;
      const parts = Buffer.isBuffer(audited) ? [audited] : audited;
      let flowing = true;
      try {
        for (const part of parts) {
          const out = tracker.fromClient(part);
          if (out.length > 0) flowing = upstream.write(out);
        }
      } catch (error) {
        // What the server already has may end in half a message: the connection is not reused.
        end({ error: `client sent a malformed message: ${errorMessage(error)}`, serverBroken: true }, encodeErrorResponse({ severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${errorMessage(error)}` }));
        return;
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
      return;
    }
    upstream.setNoDelay(true);
    upstream.on('data', fromServer);
    upstream.on('drain', resumeClient);
    client.on('drain', resumeServer);
    client.on('data', fromClient);
    if (early.length > 0) fromClient(early);
    client.resume();
    upstream.resume();
  });
}
