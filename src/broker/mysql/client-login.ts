/**
 * The broker as the server its local clients see: azdb's own HandshakeV10 (its own scramble and
 * connection id, the upstream server's version, charset and status as last learned), an optional TLS upgrade,
 * and the tunnel's password checked with mysql_native_password or caching_sha2_password's fast
 * path; clients that offer another plugin are switched to mysql_native_password.
 */
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import { CachingSha2Status, decodeAuthSwitchResponse, encodeAuthMoreData, encodeAuthSwitchRequest } from './codec/auth-messages.js';
import { AuthPlugin, verifyCachingSha2Password, verifyNativePassword } from './auth.js';
import { Capability, MariaDbCapability, hasCapability } from './codec/constants.js';
import { decodeClientHandshake, encodeHandshakeV10, type HandshakeResponse41, type HandshakeV10 } from './codec/handshake.js';
import type { PacketLeg } from './packet-leg.js';
import { MySqlProtocolError } from './codec/protocol-error.js';
import { tlsNotOffered, wrongTunnelPassword } from './session-errors.js';

/**
 * What azdb offers its clients where the upstream server offers it too: everything that only
 * shapes commands and results, which azdb relays as they come. Held back: CLIENT_COMPRESS and
 * CLIENT_ZSTD_COMPRESSION_ALGORITHM (the command gate frames plain packets; see the README),
 * CLIENT_SSL (the local TLS is azdb's own, added below), CLIENT_SSL_VERIFY_SERVER_CERT and
 * CLIENT_REMEMBER_OPTIONS (client-side only), CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS and
 * MULTI_FACTOR_AUTHENTICATION (the upstream login is azdb's, with a token that cannot expire into
 * a sandbox nor take a second factor), and bit 29 (MySQL's CLIENT_CAPABILITY_EXTENSION, MariaDB's
 * obsolete progress flag).
 */
const OFFERED =
  Capability.LongPassword |
  Capability.LongFlag |
  Capability.FoundRows |
  Capability.ConnectWithDb |
  Capability.NoSchema |
  Capability.Odbc |
  Capability.LocalFiles |
  Capability.IgnoreSpace |
  Capability.Protocol41 |
  Capability.Interactive |
  Capability.IgnoreSigpipe |
  Capability.Transactions |
  Capability.SecureConnection |
  Capability.MultiStatements |
  Capability.MultiResults |
  Capability.PsMultiResults |
  Capability.PluginAuth |
  Capability.ConnectAttrs |
  Capability.PluginAuthLenencClientData |
  Capability.SessionTrack |
  Capability.DeprecateEof |
  Capability.OptionalResultsetMetadata |
  Capability.QueryAttributes;

/**
 * MariaDB's extended capabilities azdb relays: they change result sets and bulk executes, which
 * pass through as they come. Held back: MARIADB_CLIENT_COM_MULTI, whose packets carry several
 * commands in one, so the command gate could not see a COM_CHANGE_USER inside (nor audit).
 */
const MARIADB_OFFERED =
  MariaDbCapability.Progress |
  MariaDbCapability.StmtBulkOperations |
  MariaDbCapability.ExtendedMetadata |
  MariaDbCapability.CacheMetadata |
  MariaDbCapability.BulkUnitResults;

/** The capabilities of azdb's greeting: the upstream's within OFFERED, and TLS where the listener has it. */
export function greetingCapabilities(upstream: number, tls: boolean): number {
  return ((upstream & OFFERED) | Capability.PluginAuth | (tls ? Capability.Ssl : 0)) >>> 0;
}

/** MariaDB's extended capabilities of azdb's greeting: the upstream's that azdb relays. */
export function greetingMariaDbCapabilities(upstream: number): number {
  return (upstream & MARIADB_OFFERED) >>> 0;
}

/** Flags azdb sets on the upstream login itself, whatever the client agreed (see upstream.ts). */
const AZDB_LOGIN_FLAGS =
  Capability.Ssl | Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.PluginAuthLenencClientData | Capability.ConnectWithDb | Capability.ConnectAttrs;

/**
 * What the client agreed on (from an earlier greeting's facts) that this server's greeting no
 * longer offers, named; undefined when it offers all. Such a flag changes how commands or results
 * are framed, so the session cannot be relayed.
 */
export function capabilitiesLacking(server: Pick<HandshakeV10, 'capabilities' | 'mariadbCapabilities'>, capabilities: number, mariadbCapabilities: number): string | undefined {
  const missing = (capabilities & ~AZDB_LOGIN_FLAGS & ~server.capabilities) >>> 0;
  const mariadbMissing = (mariadbCapabilities & ~server.mariadbCapabilities) >>> 0;
  const names = [...flagNames(missing, Capability), ...flagNames(mariadbMissing, MariaDbCapability)];
  return names.length > 0 ? names.join(', ') : undefined;
}

function flagNames(bits: number, names: Record<number, string>): string[] {
  const found: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const flag = 2 ** bit;
    if ((bits & flag) >>> 0 === flag) found.push(names[flag] ?? `bit ${bit}`);
  }
  return found;
}

/** azdb's greeting: the server's facts, azdb's own connection id, scramble and capabilities. */
export function encodeGreeting(upstream: Omit<HandshakeV10, 'authPluginData'>, scramble: Buffer, capabilities: number, mariadbCapabilities: number): Buffer {
  return encodeHandshakeV10({
    serverVersion: upstream.serverVersion,
    connectionId: upstream.connectionId,
    authPluginData: scramble,
    capabilities,
    characterSet: upstream.characterSet,
    statusFlags: upstream.statusFlags,
    authPluginName: AuthPlugin.NativePassword,
    mariadbCapabilities,
  });
}

/** The client's HandshakeResponse41, after a TLS upgrade when it asks for one and the listener has TLS. */
export async function receiveLogin(leg: PacketLeg, clientTls: SecureContext | undefined): Promise<HandshakeResponse41> {
  const first = decodeClientHandshake(await leg.receive());
  if (first.type === 'response') return first;
  if (!clientTls) throw tlsNotOffered();
  const raw = leg.socket as Socket;
  // The TLS ClientHello often arrives with the SSLRequest: TLSSocket reads a socket's unshifted bytes.
  const early = leg.reader.detach();
  if (early.length > 0) raw.unshift(early);
  const secure = new TLSSocket(raw, { isServer: true, secureContext: clientTls });
  secure.on('error', () => raw.destroy());
  leg.switchTo(secure);
  const second = decodeClientHandshake(await leg.receive());
  if (second.type !== 'response') throw new MySqlProtocolError('a second SSLRequest');
  return second;
}

/** What a login or a COM_CHANGE_USER brings to prove the tunnel password. */
export type PasswordProof = Pick<HandshakeResponse41, 'capabilities' | 'authPluginName' | 'authResponse' | 'username'>;

/** Checks the tunnel password; throws a MySqlClientError (1045) when it is wrong. */
export async function authenticateClient(leg: PacketLeg, response: PasswordProof, scramble: Buffer, password: string, host: string): Promise<void> {
  const canSwitch = hasCapability(response.capabilities, Capability.PluginAuth);
  const plugin = (canSwitch && response.authPluginName) || AuthPlugin.NativePassword;
  let answer = response.authResponse;
  let ok: boolean;
  switch (plugin) {
    case AuthPlugin.NativePassword:
      ok = verifyNativePassword(password, scramble, answer);
      break;
    case AuthPlugin.CachingSha2Password:
      ok = verifyCachingSha2Password(password, scramble, answer);
      if (ok) leg.send(encodeAuthMoreData(Buffer.from([CachingSha2Status.FastAuthSuccess])));
      break;
    default:
      leg.send(encodeAuthSwitchRequest({ pluginName: AuthPlugin.NativePassword, pluginData: Buffer.concat([scramble, Buffer.from([0])]) }));
      answer = decodeAuthSwitchResponse(await leg.receive());
      ok = verifyNativePassword(password, scramble, answer);
  }
  if (!ok) throw wrongTunnelPassword(response.username, host, answer.length > 0);
}
