/**
 * Turning a client away when the broker is at its connection cap, the way the real servers do,
 * so drivers report (and retry on) the error they know:
 * - PostgreSQL: the startup exchange (SSLRequest answered, TLS where the listener has it), then
 *   ErrorResponse FATAL 53300 "sorry, too many clients already". A CancelRequest arriving at the
 *   cap is still forwarded: Ctrl+C must work most when the broker is busy.
 * - MySQL: ERR 1040 "Too many connections" (SQLSTATE 08004) in place of the greeting.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { CancelRegistry } from './cancel-registry.js';
import { encodePacket } from './mysql/packets.js';
import { encodeErr } from './mysql/responses.js';
import { encodeErrorResponse } from './postgres/messages.js';
import { readStartupPacket } from './postgres/startup.js';
import { hangUp } from './relay.js';
import { WireReader } from './wire-reader.js';

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
  let socket: Socket = clientSocket;
  let reader = new WireReader(clientSocket);
  let encrypted = false;
  const deadline = { at: Date.now() + (options.deadlineMs ?? REFUSAL_DEADLINE_MS), what: 'the startup packet' };
  try {
    for (;;) {
      const packet = await reader.read(readStartupPacket, deadline);
      switch (packet.type) {
        case 'ssl-request':
          if (options.clientTls && !encrypted) {
            if (reader.detach().length > 0) return 'closed';
            clientSocket.write('S');
            socket = new TLSSocket(clientSocket, { isServer: true, secureContext: options.clientTls });
            socket.on('error', () => clientSocket.destroy());
            reader = new WireReader(socket);
            encrypted = true;
          } else {
            socket.write('N');
          }
          break;
        case 'gssenc-request':
          socket.write('N');
          break;
        case 'cancel':
          await options.cancels?.cancel(packet.processId, packet.secretKey).catch(() => false);
          socket.end();
          return 'cancel';
        case 'startup':
          reader.detach();
          await hangUp(
            socket,
            encodeErrorResponse({
              severity: 'FATAL',
              code: TOO_MANY_CONNECTIONS.postgres,
              message: 'sorry, too many clients already',
              hint: `This azdb broker serves at most ${options.limit} concurrent sessions (--max-connections); retry later or add a replica.`,
            }),
          );
          return 'refused';
      }
    }
  } catch {
    return 'closed';
  } finally {
    socket.destroy();
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
