/**
 * The first exchange of a PostgreSQL client connection, shared by a session and a refusal at
 * the connection cap: SSLRequest answered 'S' (then TLS) where the listener has a certificate,
 * else 'N'; GSSENCRequest 'N'; until a StartupMessage or a CancelRequest arrives.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { WireReader } from '../wire-reader.js';
import { PgProtocolError } from './codec/protocol-error.js';
import { readStartupPacket, type StartupPacket } from './codec/startup.js';

/** The client's side of the connection; upgraded in place when the client starts TLS. */
export interface ClientConnection {
  socket: Socket;
  reader: WireReader;
  encrypted: boolean;
}

export function clientConnection(socket: Socket): ClientConnection {
  return { socket, reader: new WireReader(socket), encrypted: false };
}

export type FirstMessage = Extract<StartupPacket, { type: 'startup' } | { type: 'cancel' }>;

export async function awaitStartup(client: ClientConnection, clientTls: SecureContext | undefined, deadline: { at: number; what: string }): Promise<FirstMessage> {
  for (;;) {
    const packet = await client.reader.read(readStartupPacket, deadline);
    switch (packet.type) {
      case 'ssl-request':
        if (clientTls && !client.encrypted) {
          // Bytes sent before the TLS handshake were not encrypted and may have been injected
          // by a man in the middle; PostgreSQL refuses them too (CVE-2021-23214).
          if (client.reader.detach().length > 0) throw new PgProtocolError('received unencrypted data after SSL request');
          const raw = client.socket;
          raw.write('S');
          const tls = new TLSSocket(raw, { isServer: true, secureContext: clientTls });
          tls.on('error', () => raw.destroy());
          client.socket = tls;
          client.reader = new WireReader(tls);
          client.encrypted = true;
        } else {
          client.socket.write('N');
        }
        break;
      case 'gssenc-request':
        client.socket.write('N');
        break;
      case 'cancel':
      case 'startup':
        return packet;
    }
  }
}
