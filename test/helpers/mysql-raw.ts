/**
 * A raw MySQL client for tests that need exact bytes: packets as the broker sends them, and
 * login responses built by hand (any plugin, any capabilities).
 */
import { connect, type Socket } from 'node:net';
import { scrambleCachingSha2Password, scrambleNativePassword } from '../../src/broker/mysql/auth.js';
import { Capability } from '../../src/broker/mysql/codec/constants.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, type HandshakeV10 } from '../../src/broker/mysql/codec/handshake.js';
import { PacketDecoder, type Packet } from '../../src/broker/mysql/codec/packet-decoder.js';
import { encodePacket } from '../../src/broker/mysql/codec/packets.js';
import { drain } from './decoders.js';
import { decodeErr, type ErrPacket } from '../../src/broker/mysql/codec/responses.js';
import type { Tunnel } from '../../src/broker/tunnel.js';

export const CLIENT_CAPABILITIES =
  Capability.LongPassword |
  Capability.LongFlag |
  Capability.ConnectWithDb |
  Capability.Protocol41 |
  Capability.Transactions |
  Capability.SecureConnection |
  Capability.MultiResults |
  Capability.PluginAuth |
  Capability.PluginAuthLenencClientData |
  Capability.ConnectAttrs |
  Capability.DeprecateEof;

export class RawMySql {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new PacketDecoder({ maxPacketLength: 128 * 1024 * 1024 });
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const p of drain(this.decoder, chunk)) this.packets.push({ ...p, payload: Buffer.from(p.payload) });
      } catch (error) {
        this.failure = error as Error;
      }
      this.notify();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.notify();
        resolve();
      }),
    );
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawMySql> {
    const socket = connect(port, host);
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawMySql(socket);
  }

  /** The next packet, or undefined when the connection closed first. */
  async next(timeoutMs = 10_000): Promise<Packet | undefined> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      const packet = this.packets.shift();
      if (packet) return packet;
      if (this.ended) return undefined;
      const left = until - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a packet');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async greeting(): Promise<HandshakeV10> {
    const packet = await this.next();
    if (!packet) throw new Error('closed before the greeting');
    return decodeHandshakeV10(packet.payload);
  }

  send(sequenceId: number, payload: Buffer): void {
    this.socket.write(encodePacket(sequenceId, payload));
  }

  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

export function isErr(packet: Packet | undefined): packet is Packet {
  return packet?.payload[0] === 0xff;
}

export function errOf(packet: Packet | undefined): ErrPacket {
  if (!isErr(packet)) throw new Error(`expected an ERR packet, got ${packet ? `0x${packet.payload[0]?.toString(16)}` : 'a close'}`);
  return decodeErr(packet.payload);
}

export interface LoginOptions {
  user: string;
  password: string;
  plugin?: string;
  database?: string;
  capabilities?: number;
}

/** A HandshakeResponse41 answering `greeting` with `plugin`'s scramble of the password. */
export function loginResponse(greeting: HandshakeV10, options: LoginOptions): Buffer {
  const plugin = options.plugin ?? 'mysql_native_password';
  const scramble = greeting.authPluginData;
  const authResponse =
    plugin === 'caching_sha2_password'
      ? scrambleCachingSha2Password(options.password, scramble)
      : plugin === 'mysql_native_password'
        ? scrambleNativePassword(options.password, scramble)
        : Buffer.from('something-else');
  return encodeHandshakeResponse41({
    capabilities: options.capabilities ?? CLIENT_CAPABILITIES,
    maxPacketSize: 16 * 1024 * 1024,
    characterSet: 45,
    mariadbCapabilities: 0,
    username: options.user,
    authResponse,
    database: options.database,
    authPluginName: plugin,
    connectAttributes: { _client_name: 'azdb-test', program_name: 'raw' },
  });
}

/** Logs a raw client in through a tunnel with its password (native scramble); throws unless the server answers OK. */
export async function rawLogin(t: Pick<Tunnel, 'port' | 'host' | 'user' | 'password' | 'database'>, database = t.database): Promise<RawMySql> {
  const raw = await RawMySql.connect(t.port, t.host);
  const greeting = await raw.greeting();
  raw.send(1, loginResponse(greeting, { user: t.user, password: t.password, database }));
  const ok = await raw.next(30_000);
  if (ok?.payload[0] !== 0) {
    raw.close();
    throw new Error(`login failed: ${ok ? decodeErr(ok.payload).message : 'closed'}`);
  }
  return raw;
}
