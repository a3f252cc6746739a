/**
 * The first exchange of a PostgreSQL client connection, shared by a session and a refusal at
 * the connection cap: SSLRequest answered 'S' (then TLS) where the listener has a certificate,
 * else 'N'; GSSENCRequest 'N'; until a StartupMessage or a CancelRequest arrives.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { WireReader } from '../wire-reader.js';
import { FrameDecoder } from './codec/frame-decoder.js';
import { PgStartupRefusal } from './codec/protocol-error.js';
import { GSSENC_REQUEST_CODE, SSL_REQUEST_CODE, unsupportedProtocol, type StartupPacket } from './codec/startup.js';

/** The longest message a client may send before relaying (SASL messages); startup packets have their own cap. */
const MAX_LOGIN_MESSAGE = 4096;
/**
 * Where the password is an Entra token (`client_auth: entra`): a person's token with its groups
 * claim runs to several KiB; PostgreSQL takes up to 64 KiB (PG_MAX_AUTH_TOKEN_LENGTH).
 */
export const MAX_TOKEN_LOGIN_MESSAGE = 64 * 1024;

/** The client's side of the connection; upgraded in place when the client starts TLS. */
export interface ClientConnection {
  socket: Socket;
  reader: WireReader<FrameDecoder>;
  encrypted: boolean;
  /** The longest message read before relaying. */
  maxLoginMessage: number;
}

export function clientConnection(socket: Socket, maxLoginMessage = MAX_LOGIN_MESSAGE): ClientConnection {
  return { socket, reader: loginReader(socket, maxLoginMessage), encrypted: false, maxLoginMessage };
}

function loginReader(socket: Socket, maxLength: number): WireReader<FrameDecoder> {
  return new WireReader(socket, new FrameDecoder({ maxLength }));
}

export type FirstMessage = Extract<StartupPacket, { type: 'startup' } | { type: 'cancel' }>;

/**
 * Answers SSLRequest and GSSENCRequest until a StartupMessage or a CancelRequest arrives, in
 * PostgreSQL's order (ProcessStartupPacket): one SSLRequest, and a GSSENCRequest only while the
 * connection is not encrypted; a repeated request is taken for a protocol version and refused.
 */
export async function awaitStartup(client: ClientConnection, clientTls: SecureContext | undefined, deadline: { at: number; what: string }): Promise<FirstMessage> {
  let sslDone = false;
  let gssDone = false;
  for (;;) {
    const packet = await client.reader.read((decoder) => decoder.nextStartupPacket(), deadline);
    switch (packet.type) {
      case 'ssl-request': {
        if (sslDone) throw unsupportedProtocol(SSL_REQUEST_CODE);
        sslDone = true;
        const early = client.reader.detach();
        if (clientTls) {
          const raw = client.socket;
          raw.write('S');
          const tls = new TLSSocket(raw, { isServer: true, secureContext: clientTls });
          tls.on('error', () => raw.destroy());
          client.socket = tls;
          client.encrypted = true;
          gssDone = true;
        } else {
          client.socket.write('N');
        }
        client.reader = loginReader(client.socket, client.maxLoginMessage);
        if (early.length > 0) throw unencryptedData('SSL request');
        break;
      }
      case 'gssenc-request': {
        if (gssDone) throw unsupportedProtocol(GSSENC_REQUEST_CODE);
        gssDone = true;
        const early = client.reader.detach();
        client.socket.write('N');
        client.reader = loginReader(client.socket, client.maxLoginMessage);
        if (early.length > 0) throw unencryptedData('GSSAPI encryption request');
        break;
      }
      case 'cancel':
      case 'startup':
        return packet;
    }
  }
}

/**
 * Bytes sent behind an encryption request, before its answer, were not encrypted and may have
 * been injected by a man in the middle; PostgreSQL refuses them (CVE-2021-23214), after its answer.
 */
function unencryptedData(request: string): PgStartupRefusal {
  return new PgStartupRefusal(`received unencrypted data after ${request}`, {
    code: '08P01',
    protocol2: false,
    detail: 'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
  });
}

