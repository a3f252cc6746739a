/**
 * The broker as a client of an Azure MySQL server, in two steps. `connectUpstream`: TCP and the
 * server's HandshakeV10 (read before the local client is greeted, so azdb can show it the
 * server's version and connection id). `loginUpstream`: SSLRequest (TLS required: a server that
 * does not offer it is refused before any password exists on the wire), verified TLS,
 * HandshakeResponse41 as the mapped user, then the server's auth requests answered with the
 * Entra token. Returns the TLS socket positioned after the server's OK.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { UpstreamError, connectTimeout, openTcp, startTls } from '../upstream-connect.js';
import type { UpstreamTarget } from '../target.js';
import { CachingSha2Status, decodeAuthServerPacket } from './codec/auth-messages.js';
import { AuthPlugin, encodeClearPassword, scrambleCachingSha2Password, scrambleNativePassword } from './auth.js';
import { scrambleFromPluginData } from './codec/auth-messages.js';
import { Capability, hasCapability } from './codec/constants.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, encodeSslRequest, type HandshakeV10 } from './codec/handshake.js';
import { PacketLeg } from './packet-leg.js';
import { ResponseHeader, decodeErr, type ErrPacket } from './codec/responses.js';
import { encodeChangeUser } from './codec/commands.js';

export interface UpstreamConnection {
  tcp: Socket;
  leg: PacketLeg;
  greeting: HandshakeV10;
}

export interface UpstreamLogin {
  user: string;
  /** '' for none. */
  database: string;
  /** The capabilities the client and azdb agreed on; auth-only flags are azdb's business. */
  capabilities: number;
  /** MariaDB's extended capabilities the client and azdb agreed on. */
  mariadbCapabilities: number;
  maxPacketSize: number;
  characterSet: number;
  connectAttributes: Record<string, string> | undefined;
}

export interface UpstreamSession {
  socket: TLSSocket;
  /** The server's OK payload, for the client. */
  ok: Buffer;
  /** Bytes the server sent after its OK (normally none). */
  rest: Buffer;
  /** The capabilities azdb logged in with: they shape a later COM_CHANGE_USER. */
  capabilities: number;
}

/** The server answered with an ERR packet: its code, SQLSTATE and message reach the client. */
export class MySqlUpstreamRefused extends Error {
  constructor(readonly err: ErrPacket) {
    super(err.message);
    this.name = 'MySqlUpstreamRefused';
  }
}

/** Login packets are small; a server's greeting or auth request beyond this is broken. */
const MAX_UPSTREAM_LOGIN_PACKET = 256 * 1024;
/** Auth switches and AuthMoreData a login may take before azdb gives up on the server. */
const MAX_AUTH_ROUNDS = 4;
/** Capabilities that only shape the login; azdb sets them upstream as it needs. */
const LOGIN_CAPABILITIES =
  Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.PluginAuthLenencClientData | Capability.ConnectWithDb | Capability.ConnectAttrs;

export async function connectUpstream(target: UpstreamTarget, signal?: AbortSignal): Promise<UpstreamConnection> {
  const tcp = await openTcp(target, signal);
  const leg = new PacketLeg(tcp, { at: Date.now() + connectTimeout(target), what: `the greeting of ${target.name}` }, MAX_UPSTREAM_LOGIN_PACKET);
  try {
    const payload = await leg.receive();
    // "Too many connections", "Host is blocked": servers send an ERR instead of a greeting.
    if (payload[0] === ResponseHeader.Err) throw new MySqlUpstreamRefused(decodeErr(payload));
    return { tcp, leg, greeting: decodeHandshakeV10(payload) };
  } catch (error) {
    leg.reader.detach();
    tcp.destroy();
    throw error;
  }
}

export async function loginUpstream(connection: UpstreamConnection, target: UpstreamTarget, login: UpstreamLogin, token: string): Promise<UpstreamSession> {
  const { tcp, leg, greeting } = connection;
  try {
    if (!hasCapability(greeting.capabilities, Capability.Ssl)) {
      throw new UpstreamError(
        `${target.name} at ${target.host}:${target.port} does not offer TLS (no CLIENT_SSL in its greeting); azdb never sends a token without TLS`,
        'tls',
        'Azure Database for MySQL always offers TLS: check that the host and port point at the Azure server, not at a plain MySQL',
      );
    }
    const offered = greeting.capabilities;
    let capabilities = (login.capabilities & ~LOGIN_CAPABILITIES) | Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.Ssl;
    capabilities |= offered & Capability.PluginAuthLenencClientData;
    if (login.database !== '') capabilities |= Capability.ConnectWithDb;
    if (login.connectAttributes) capabilities |= offered & Capability.ConnectAttrs;
    capabilities = (capabilities & (offered | Capability.Ssl)) >>> 0;
    const mariadbCapabilities = (login.mariadbCapabilities & greeting.mariadbCapabilities) >>> 0;
    const header = { capabilities, maxPacketSize: login.maxPacketSize, characterSet: login.characterSet, mariadbCapabilities };
    leg.send(encodeSslRequest(header));
    const early = leg.reader.detach();
    if (early.length > 0) throw new UpstreamError(`${target.name} sent data before the TLS handshake`, 'protocol');
    const socket = await startTls(tcp, target);
    leg.switchTo(socket);

    let plugin = greeting.authPluginName || AuthPlugin.NativePassword;
    let answer = answerFor(plugin, greeting.authPluginData, token);
    if (answer === undefined) {
      // A plugin azdb does not speak: offer mysql_native_password, as clients offer their default.
      plugin = AuthPlugin.NativePassword;
      answer = answerFor(plugin, greeting.authPluginData, token)!;
    }
    leg.send(
      encodeHandshakeResponse41({
        ...header,
        username: login.user,
        authResponse: answer,
        database: login.database,
        authPluginName: plugin,
        connectAttributes: login.connectAttributes,
      }),
    );
    const ok = await finishAuthentication(leg, target, plugin, token, capabilities);
    return { socket, ok, rest: leg.reader.detach(), capabilities };
  } catch (error) {
    leg.reader.detach();
    leg.socket.destroy();
    tcp.destroy();
    throw error;
  }
}

interface UpstreamChange {
  /** The mapped user (`user@server` on single servers). */
  user: string;
  database: string;
  characterSet: number | undefined;
  connectAttributes: Record<string, string> | undefined;
}

/**
 * COM_CHANGE_USER on a relayed session (upstream → client piping stopped meanwhile), as the mapped
 * user with the token. The request carries the token scrambled for mysql_native_password with the
 * greeting's scramble (a clear token does not fit the request's 1-byte length); a server that
 * wants mysql_clear_password, as Azure does, switches to it. Resolves with the server's OK payload
 * and the bytes it sent after; throws MySqlUpstreamRefused with its ERR (the server then closes).
 */
export async function changeUserUpstream(
  socket: TLSSocket,
  greeting: HandshakeV10,
  target: UpstreamTarget,
  change: UpstreamChange,
  token: string,
  capabilities: number,
): Promise<{ ok: Buffer; rest: Buffer }> {
  const leg = new PacketLeg(socket, { at: Date.now() + connectTimeout(target), what: `${target.name} to change the user` }, MAX_UPSTREAM_LOGIN_PACKET);
  let ok: Buffer;
  try {
    const request = { ...change, authResponse: scrambleNativePassword(token, greeting.authPluginData), authPluginName: AuthPlugin.NativePassword };
    leg.send(encodeChangeUser(request, capabilities));
    ok = await finishAuthentication(leg, target, AuthPlugin.NativePassword, token, capabilities);
  } catch (error) {
    leg.reader.detach();
    throw error;
  }
  return { ok, rest: leg.reader.detach() };
}

/**
 * Answers the server's auth requests after a login or COM_CHANGE_USER that named `plugin`: auth
 * switches and caching_sha2_password's full authentication get the token (inside TLS). Resolves
 * with the server's OK payload; throws MySqlUpstreamRefused with its ERR.
 */
async function finishAuthentication(leg: PacketLeg, target: UpstreamTarget, plugin: string, token: string, capabilities: number): Promise<Buffer> {
  for (let round = 0; round <= MAX_AUTH_ROUNDS; round++) {
    const payload = await leg.receive();
    const packet = decodeAuthServerPacket(payload, capabilities);
    switch (packet.type) {
      case 'ok':
        return Buffer.from(payload);
      case 'err':
        throw new MySqlUpstreamRefused(packet.err);
      case 'auth-switch': {
        plugin = packet.request.pluginName;
        const switched = answerFor(plugin, scrambleFromPluginData(packet.request.pluginData), token);
        if (switched === undefined) {
          throw new UpstreamError(
            `${target.name} asked for the authentication plugin "${plugin}", which azdb does not answer (it answers mysql_clear_password, mysql_native_password and caching_sha2_password); the token was not sent`,
            'auth',
            'Azure Database for MySQL asks for mysql_clear_password with Entra ID authentication: check that Entra authentication is enabled on the server',
          );
        }
        leg.send(switched);
        break;
      }
      case 'auth-more-data':
        if (plugin !== AuthPlugin.CachingSha2Password) throw new UpstreamError(`${target.name} sent AuthMoreData for ${plugin}`, 'protocol');
        if (packet.data[0] === CachingSha2Status.PerformFullAuthentication) leg.send(encodeClearPassword(token));
        else if (packet.data[0] !== CachingSha2Status.FastAuthSuccess) throw new UpstreamError(`${target.name} sent unexpected caching_sha2_password data`, 'protocol');
        break;
    }
  }
  throw new UpstreamError(`${target.name} did not finish the login after ${MAX_AUTH_ROUNDS} authentication rounds`, 'protocol');
}

/** The token as `plugin` wants it (only ever sent over TLS), or undefined for plugins azdb does not answer. */
function answerFor(plugin: string, scramble: Buffer, token: string): Buffer | undefined {
  switch (plugin) {
    case AuthPlugin.ClearPassword:
      return encodeClearPassword(token);
    case AuthPlugin.NativePassword:
      return scrambleNativePassword(token, scramble);
    case AuthPlugin.CachingSha2Password:
      return scrambleCachingSha2Password(token, scramble);
    default:
      return undefined;
  }
}
