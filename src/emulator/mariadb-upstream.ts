/**
 * The emulated MySQL front's side of the real MariaDB: open a connection and read its greeting
 * first (so the client's greeting can carry MariaDB's connection id, and `KILL QUERY <id>` works
 * end to end), then log in as the mapped account with its internal password, on the
 * capabilities the client negotiated with the front.
 */
import type { Socket } from 'node:net';
import { scrambleNativePassword, AuthPlugin } from '../broker/mysql/auth.js';
import { decodeAuthServerPacket, scrambleFromPluginData } from '../broker/mysql/codec/auth-messages.js';
import { Capability } from '../broker/mysql/codec/constants.js';
import { encodeChangeUser, type ChangeUserRequest } from '../broker/mysql/codec/commands.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, type HandshakeResponse41, type HandshakeV10 } from '../broker/mysql/codec/handshake.js';
import { PacketDecoder, type Packet } from '../broker/mysql/codec/packet-decoder.js';
import { encodePacket, nextSequenceId } from '../broker/mysql/codec/packets.js';
import { MySqlProtocolError } from '../broker/mysql/codec/protocol-error.js';
import { ResponseHeader } from '../broker/mysql/codec/responses.js';
import { HandshakeTimeoutError, WireReader } from '../broker/wire-reader.js';
import type { RealMariaDb } from './real-mariadb.js';

export interface Deadline {
  at: number;
  what: string;
}

export interface Upstream {
  socket: Socket;
  reader: WireReader<PacketDecoder>;
  greeting: HandshakeV10;
}

/** MariaDB answered with an ERR packet (too many connections, unknown database...); its payload. */
export class MariaDbRefused extends Error {
  constructor(readonly payload: Buffer) {
    super('MariaDB refused the connection');
  }
}

/** Capabilities that belong to the client's leg only: TLS is the front's business. */
const CLIENT_LEG_ONLY = Capability.Ssl | Capability.SslVerifyServerCert;
/** Cap on what MariaDB sends before the login ends (its greeting, OK, ERR, auth switch). */
const MAX_UPSTREAM_PACKET = 64 * 1024;

export async function openUpstream(realMariaDb: RealMariaDb, deadline: Deadline): Promise<Upstream> {
  const socket = realMariaDb.connectRaw();
  socket.on('error', () => {});
  socket.setNoDelay(true);
  try {
    await connected(socket, deadline);
    const reader = new WireReader(socket, new PacketDecoder({ maxPacketLength: MAX_UPSTREAM_PACKET }));
    const packet = await reader.read((decoder) => decoder.next(), deadline);
    if (packet.payload[0] === ResponseHeader.Err) throw new MariaDbRefused(Buffer.from(packet.payload));
    return { socket, reader, greeting: decodeHandshakeV10(packet.payload) };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

export interface UpstreamLogin {
  user: string;
  password: string;
  /** The client's HandshakeResponse41 to the front: its capabilities, database and attributes. */
  client: HandshakeResponse41;
}

/** Logs in; resolves with MariaDB's OK payload, throws MariaDbRefused with its ERR payload. */
export async function loginUpstream(upstream: Upstream, login: UpstreamLogin, deadline: Deadline): Promise<Buffer> {
  const { client } = login;
  const capabilities = upstreamCapabilities(client.capabilities);
  const response: HandshakeResponse41 = {
    capabilities,
    maxPacketSize: client.maxPacketSize,
    characterSet: client.characterSet,
    mariadbCapabilities: client.mariadbCapabilities,
    username: login.user,
    authResponse: scrambleNativePassword(login.password, upstream.greeting.authPluginData),
    database: client.database,
    authPluginName: AuthPlugin.NativePassword,
    connectAttributes: client.connectAttributes,
  };
  upstream.socket.write(encodePacket(1, encodeHandshakeResponse41(response)));
  return authenticate(upstream, login.password, 1, capabilities, deadline);
}

/** The capabilities the front logs in to MariaDB with, given the client's. */
export function upstreamCapabilities(client: number): number {
  return ((client & ~CLIENT_LEG_ONLY) | Capability.PluginAuth) >>> 0;
}

/**
 * COM_CHANGE_USER on a joined session (MariaDB's bytes not piped meanwhile): to `user`'s account
 * with its internal password, as MySQL's own client answers with the connection's first scramble.
 */
export async function changeUpstreamUser(upstream: Upstream, change: ChangeUserRequest, password: string, capabilities: number, deadline: Deadline): Promise<Buffer> {
  const request = { ...change, authResponse: scrambleNativePassword(password, upstream.greeting.authPluginData), authPluginName: AuthPlugin.NativePassword };
  upstream.socket.write(encodePacket(0, encodeChangeUser(request, capabilities)));
  return authenticate(upstream, password, 0, capabilities, deadline);
}

/** MariaDB's answers after a login packet numbered `sequenceId`: its OK payload, or MariaDbRefused. */
async function authenticate(upstream: Upstream, password: string, sequenceId: number, capabilities: number, deadline: Deadline): Promise<Buffer> {
  for (;;) {
    const packet: Packet = await upstream.reader.read((decoder) => decoder.next(), deadline);
    if (packet.sequenceId !== nextSequenceId(sequenceId)) throw new MySqlProtocolError(`MariaDB answered out of order (sequence id ${packet.sequenceId})`);
    const answer = decodeAuthServerPacket(packet.payload, capabilities);
    switch (answer.type) {
      case 'ok':
        return Buffer.from(packet.payload);
      case 'err':
        throw new MariaDbRefused(Buffer.from(packet.payload));
      case 'auth-switch':
        if (answer.request.pluginName !== AuthPlugin.NativePassword) {
          throw new MySqlProtocolError(`MariaDB asked for ${answer.request.pluginName}; the emulator's accounts use ${AuthPlugin.NativePassword}`);
        }
        sequenceId = nextSequenceId(packet.lastSequenceId);
        upstream.socket.write(encodePacket(sequenceId, scrambleNativePassword(password, scrambleFromPluginData(answer.request.pluginData))));
        break;
      case 'auth-more-data':
        throw new MySqlProtocolError('MariaDB sent unexpected authentication data');
    }
  }
}

function connected(socket: Socket, deadline: Deadline): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new HandshakeTimeoutError(`timed out waiting for ${deadline.what}`)), Math.max(0, deadline.at - Date.now()));
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.off('connect', done);
      reject(error);
    };
    const done = (): void => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve();
    };
    socket.once('connect', done);
    socket.once('error', fail);
  });
}
