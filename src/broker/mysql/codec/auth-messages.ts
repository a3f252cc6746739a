/**
 * Packets of the authentication exchange after HandshakeResponse41: AuthSwitchRequest and its
 * raw response, AuthMoreData (caching_sha2_password's fast-auth result and public key), and a
 * classifier for whatever the server sends next.
 */
import { MAX_AUTH_RESPONSE_LENGTH, MAX_NAME_LENGTH } from './handshake.js';
import { MySqlProtocolError } from './protocol-error.js';
import { ResponseHeader, decodeErr, decodeOk, type ErrPacket, type OkPacket } from './responses.js';
import { MySqlPayloadReader, PayloadWriter } from './values.js';

/** The one-byte AuthMoreData bodies of caching_sha2_password. */
export enum CachingSha2Status {
  RequestPublicKey = 0x02, // client → server: send me your RSA public key
  FastAuthSuccess = 0x03, // server → client: the cached hash matched; OK follows
  PerformFullAuthentication = 0x04, // server → client: send the password (over TLS) or RSA-encrypt it
}

/** What a bare 0xfe asks for: the pre-4.1 password hash, which nothing here supports. */
export const OLD_AUTH_SWITCH_PLUGIN = 'mysql_old_password';

export interface AuthSwitchRequest {
  pluginName: string;
  /** Raw plugin data; MySQL and MariaDB send the 20-byte scramble plus a NUL. */
  pluginData: Buffer;
}

export function encodeAuthSwitchRequest(request: AuthSwitchRequest): Buffer {
  return new PayloadWriter(request.pluginData.length + 32).u8(ResponseHeader.Eof).nulString(request.pluginName).bytes(request.pluginData).finish();
}

export function decodeAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const reader = new MySqlPayloadReader(payload, 'AuthSwitchRequest');
  if (reader.u8() !== ResponseHeader.Eof) throw new MySqlProtocolError('AuthSwitchRequest: bad header');
  if (reader.remaining === 0) return { pluginName: OLD_AUTH_SWITCH_PLUGIN, pluginData: Buffer.alloc(0) };
  const pluginName = reader.nulString(MAX_NAME_LENGTH);
  if (reader.remaining > MAX_AUTH_RESPONSE_LENGTH) throw new MySqlProtocolError('AuthSwitchRequest: plugin data is too long');
  return { pluginName, pluginData: Buffer.from(reader.rest()) };
}

/** `data` without one trailing NUL (clear passwords and scrambles carry one; some clients omit it). */
export function withoutTrailingNul(data: Buffer): Buffer {
  return data.length > 0 && data[data.length - 1] === 0 ? data.subarray(0, -1) : data;
}

/** The scramble in an AuthSwitchRequest's plugin data: without the trailing NUL servers add. */
export function scrambleFromPluginData(pluginData: Buffer): Buffer {
  return withoutTrailingNul(pluginData);
}

/** AuthSwitchResponse is the plugin's bytes, nothing else. */
export function decodeAuthSwitchResponse(payload: Buffer): Buffer {
  if (payload.length > MAX_AUTH_RESPONSE_LENGTH) throw new MySqlProtocolError('AuthSwitchResponse is too long');
  return Buffer.from(payload);
}

export function encodeAuthMoreData(data: Buffer): Buffer {
  return new PayloadWriter(data.length + 1).u8(ResponseHeader.AuthMoreData).bytes(data).finish();
}

export function decodeAuthMoreData(payload: Buffer): Buffer {
  const reader = new MySqlPayloadReader(payload, 'AuthMoreData');
  if (reader.u8() !== ResponseHeader.AuthMoreData) throw new MySqlProtocolError('AuthMoreData: bad header');
  if (reader.remaining > MAX_AUTH_RESPONSE_LENGTH) throw new MySqlProtocolError('AuthMoreData is too long');
  return Buffer.from(reader.rest());
}

export type AuthServerPacket =
  | { type: 'ok'; ok: OkPacket }
  | { type: 'err'; err: ErrPacket }
  | { type: 'auth-switch'; request: AuthSwitchRequest }
  | { type: 'auth-more-data'; data: Buffer };

/** A server packet during authentication, told apart by its first byte (0xfe is never EOF here). */
export function decodeAuthServerPacket(payload: Buffer, capabilities: number): AuthServerPacket {
  switch (payload[0]) {
    case ResponseHeader.Ok:
      return { type: 'ok', ok: decodeOk(payload, capabilities) };
    case ResponseHeader.Err:
      return { type: 'err', err: decodeErr(payload) };
    case ResponseHeader.Eof:
      return { type: 'auth-switch', request: decodeAuthSwitchRequest(payload) };
    case ResponseHeader.AuthMoreData:
      return { type: 'auth-more-data', data: decodeAuthMoreData(payload) };
    default:
      throw new MySqlProtocolError(payload.length === 0 ? 'empty packet during authentication' : `unexpected packet 0x${payload[0]!.toString(16)} during authentication`);
  }
}
