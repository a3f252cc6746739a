/**
 * One pooled MySQL server connection and the few commands the pool sends on it itself (the
 * reset between clients), and noticing while it is idle that it broke.
 */
import type { TLSSocket } from 'node:tls';
import { WireReader } from '../../wire-reader.js';
import { PacketDecoder } from '../codec/packet-decoder.js';
import { encodePacket } from '../codec/packets.js';
import type { HandshakeV10 } from '../codec/handshake.js';
import type { UpstreamSession } from '../upstream.js';
import { watchBroken } from '../../pool/connection-watch.js';

/** Time allowed for a command the pool sends itself. */
const OWN_COMMAND_TIMEOUT_MS = 10_000;
/** The pool's own commands are answered with an OK or ERR. */
const MAX_OWN_ANSWER = 64 * 1024;

export interface MySqlServerConnection {
  readonly socket: TLSSocket;
  /** The server's greeting: its thread id (for KILL) and scramble (for COM_CHANGE_USER). */
  readonly greeting: HandshakeV10;
  /** The capabilities azdb logged in with. */
  readonly capabilities: number;
  /** Closed, errored, sent something while nobody asked, or changed to another user. */
  broken: boolean;
  /** Prepared statements on it, shared by the clients of its key (statement-mapper.ts); cleared by a reset. */
  readonly prepared: Map<string, number>;
}

/** Wraps a fresh login; `onBroken` runs once when the socket closes or errors. */
export function serverConnection(session: UpstreamSession, greeting: HandshakeV10, onBroken: (connection: MySqlServerConnection) => void): MySqlServerConnection {
  const connection: MySqlServerConnection = { socket: session.socket, greeting, capabilities: session.capabilities, broken: session.rest.length > 0, prepared: new Map() };
  return watchBroken(connection, onBroken);
}

/**
 * Sends one command (sequence id 0) and reads its one-packet answer (an OK or ERR payload).
 * Throws when the server does not answer in time, goes away, or says more; the caller then
 * discards the connection.
 */
export async function runOwnCommand(connection: MySqlServerConnection, payload: Buffer): Promise<Buffer> {
  const reader = new WireReader(connection.socket, new PacketDecoder({ maxPacketLength: MAX_OWN_ANSWER }));
  const deadline = { at: Date.now() + OWN_COMMAND_TIMEOUT_MS, what: 'the server to answer the pool' };
  try {
    connection.socket.write(encodePacket(0, payload));
    const packet = await reader.read((decoder) => decoder.next(), deadline);
    return Buffer.from(packet.payload);
  } finally {
    if (reader.detach().length > 0) connection.broken = true;
  }
}
