/**
 * The first exchange of a PostgreSQL client connection, shared by a session and a refusal at
 * the connection cap: SSLRequest answered 'S' (then TLS) where the listener has a certificate,
 * else 'N'; GSSENCRequest 'N'; until a StartupMessage or a CancelRequest arrives.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { WireReader } from '../wire-reader.js';
import { FrameDecoder } from './codec/frame-decoder.js';
import { PgProtocolError } from './codec/protocol-error.js';
import type { StartupPacket } from './codec/startup.js';

/** The longest message a client may send before relaying (SASL messages); startup packets have their own cap. */
const MAX_LOGIN_MESSAGE = 4096;

/** The client's side of the connection; upgraded in place when the client starts TLS. */
export interface ClientConnection {
  socket: Socket;
  reader: WireReader<FrameDecoder>;
  encrypted: boolean;
}

export function clientConnection(socket: Socket): ClientConnection {
  return { socket, reader: loginReader(socket), encrypted: false };
}

function loginReader(socket: Socket): WireReader<FrameDecoder> {
  return new WireReader(socket, new FrameDecoder({ maxLength: MAX_LOGIN_MESSAGE }));
}

export type FirstMessage = Extract<StartupPacket, { type: 'startup' } | { type: 'cancel' }>;

export async function awaitStartup(client: ClientConnection, clientTls: SecureContext | undefined, deadline: { at: number; what: string }): Promise<FirstMessage> {
  for (;;) {
    const packet = await client.reader.read((decoder) => decoder.nextStartupPacket(), deadline);
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
          client.reader = loginReader(tls);
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
