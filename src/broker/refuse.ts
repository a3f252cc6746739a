/**
 * Turning a client away when the broker is at its connection cap, the way the real servers do,
 * so drivers report (and retry on) the error they know:
 * - PostgreSQL: the startup exchange (SSLRequest answered, TLS where the listener has it), then
 *   ErrorResponse FATAL 53300 "sorry, too many clients already". A CancelRequest arriving at the
 *   cap is still forwarded: Ctrl+C must work most when the broker is busy.
 * - MySQL: ERR 1040 "Too many connections" (SQLSTATE 08004) in place of the greeting.
 */
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { CancelRegistry } from './cancel-registry.js';
import { encodePacket } from './mysql/codec/packets.js';
import { encodeErr } from './mysql/codec/responses.js';
import { encodeErrorResponse } from './postgres/codec/messages.js';
import { awaitStartup, clientConnection } from './postgres/startup-phase.js';
import { hangUp } from './relay.js';

/** A refused client gets this long to send its startup packet. */
const REFUSAL_DEADLINE_MS = 10_000;

export const TOO_MANY_CONNECTIONS = { postgres: '53300', mysql: 1040 } as const;

export type RefusalOutcome = 'refused' | 'cancel' | 'closed';

export interface RefusalOptions {
  /** What the cap is, for the message. */
  limit: number;
  clientTls?: SecureContext;
  cancels?: CancelRegistry;
  deadlineMs?: number;
}

export async function refusePostgres(clientSocket: Socket, options: RefusalOptions): Promise<RefusalOutcome> {
  const client = clientConnection(clientSocket);
  const deadline = { at: Date.now() + (options.deadlineMs ?? REFUSAL_DEADLINE_MS), what: 'the startup packet' };
  try {
    const first = await awaitStartup(client, options.clientTls, deadline);
    if (first.type === 'cancel') {
      await options.cancels?.cancel(first.processId, first.secretKey).catch(() => false);
      client.socket.end();
      return 'cancel';
    }
    client.reader.detach();
    await hangUp(
      client.socket,
      encodeErrorResponse({
        severity: 'FATAL',
        code: TOO_MANY_CONNECTIONS.postgres,
        message: 'sorry, too many clients already',
        hint: `This azdb broker serves at most ${options.limit} concurrent sessions (--max-connections); retry later or add a replica.`,
      }),
    );
    return 'refused';
  } catch {
    return 'closed';
  } finally {
    client.socket.destroy();
    clientSocket.destroy();
  }
}

export async function refuseMySql(socket: Socket, options: RefusalOptions): Promise<RefusalOutcome> {
  try {
    const err = encodeErr({
      code: TOO_MANY_CONNECTIONS.mysql,
      sqlState: '08004',
      message: `Too many connections: this azdb broker serves at most ${options.limit} concurrent sessions (--max-connections); retry later or add a replica`,
    });
    await hangUp(socket, encodePacket(0, err));
    return 'refused';
  } finally {
    socket.destroy();
  }
}
