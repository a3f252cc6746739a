/**
 * The connection phase before authentication: the server's HandshakeV10, the client's
 * SSLRequest and HandshakeResponse41 (protocol 4.1 only; older clients and servers are
 * refused). Payloads in, typed values out; encoders return payloads for `encodePacket`.
 */
import { Capability, hasCapability } from './constants.js';
import { MySqlProtocolError } from './protocol-error.js';
import { MySqlPayloadReader, PayloadWriter } from './values.js';

export const PROTOCOL_VERSION = 10;
/** Length of the scramble (auth-plugin-data) the broker sends and the password plugins use. */
export const SCRAMBLE_LENGTH = 20;
const SCRAMBLE_PART1_LENGTH = 8;
/** The handshake's auth-plugin-data part 2 is at least this long, its terminator included. */
const MIN_SCRAMBLE_PART2_LENGTH = 13;
/** Reserved bytes in HandshakeV10; MariaDB puts its extended capabilities in the last 4. */
const HANDSHAKE_RESERVED_LENGTH = 10;
/** Filler in HandshakeResponse41; MariaDB puts the client's extended capabilities in the last 4. */
const RESPONSE_FILLER_LENGTH = 23;
const MARIADB_CAPABILITIES_LENGTH = 4;
/** An SSLRequest is a HandshakeResponse41 cut after its filler. */
export const SSL_REQUEST_LENGTH = 4 + 4 + 1 + RESPONSE_FILLER_LENGTH;

/** Cap on user, database, plugin and server version names (MySQL's own are far shorter). */
export const MAX_NAME_LENGTH = 1024;
/** Cap on an auth response; an Entra token sent as a clear password fits easily. */
export const MAX_AUTH_RESPONSE_LENGTH = 64 * 1024;
/** MySQL refuses connection attributes beyond 64 KiB in all. */
export const MAX_CONNECT_ATTRS_LENGTH = 64 * 1024;
export const MAX_CONNECT_ATTRS = 256;

export interface HandshakeV10 {
  serverVersion: string;
  connectionId: number;
  /** The scramble: auth-plugin-data parts 1 and 2, without part 2's terminator. */
  authPluginData: Buffer;
  /** Lower 32 capability bits. */
  capabilities: number;
  characterSet: number;
  statusFlags: number;
  /** Empty when the server does not set CLIENT_PLUGIN_AUTH. */
  authPluginName: string;
  /** MariaDB's extended capabilities; 0 unless CLIENT_MYSQL (LongPassword) is unset. */
  mariadbCapabilities: number;
}

/** A server's first packet. The broker sends a 20-byte scramble, as MySQL and MariaDB do. */
export function encodeHandshakeV10(handshake: HandshakeV10): Buffer {
  const { authPluginData: scramble, capabilities } = handshake;
  if (scramble.length !== SCRAMBLE_LENGTH) throw new RangeError(`the scramble must be ${SCRAMBLE_LENGTH} bytes`);
  const isMariaDb = !hasCapability(capabilities, Capability.LongPassword);
  const writer = new PayloadWriter(128)
    .u8(PROTOCOL_VERSION)
    .nulString(handshake.serverVersion)
    .u32(handshake.connectionId)
    .bytes(scramble.subarray(0, SCRAMBLE_PART1_LENGTH))
    .u8(0)
    .u16(capabilities & 0xffff)
    .u8(handshake.characterSet)
    .u16(handshake.statusFlags)
    .u16(capabilities >>> 16)
    .u8(hasCapability(capabilities, Capability.PluginAuth) ? SCRAMBLE_LENGTH + 1 : 0)
    .zeros(HANDSHAKE_RESERVED_LENGTH - MARIADB_CAPABILITIES_LENGTH)
    .u32(isMariaDb ? handshake.mariadbCapabilities : 0)
    .bytes(scramble.subarray(SCRAMBLE_PART1_LENGTH))
    .u8(0);
  if (hasCapability(capabilities, Capability.PluginAuth)) writer.nulString(handshake.authPluginName);
  return writer.finish();
}

/** Callers check for an ERR packet (0xff, e.g. "host is blocked") before calling this. */
export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const reader = new MySqlPayloadReader(payload, 'HandshakeV10');
  const version = reader.u8();
  if (version !== PROTOCOL_VERSION) throw new MySqlProtocolError(`unsupported protocol version ${version}`);
  const serverVersion = reader.nulString(MAX_NAME_LENGTH);
  const connectionId = reader.u32();
  const part1 = reader.bytes(SCRAMBLE_PART1_LENGTH);
  reader.skip(1);
  const lower = reader.u16();
  if (reader.remaining === 0) throw new MySqlProtocolError('HandshakeV10: the server does not speak protocol 4.1');
  const characterSet = reader.u8();
  const statusFlags = reader.u16();
  const capabilities = (lower | (reader.u16() << 16)) >>> 0;
  if (!hasCapability(capabilities, Capability.Protocol41) || !hasCapability(capabilities, Capability.SecureConnection)) {
    throw new MySqlProtocolError('HandshakeV10: the server does not speak protocol 4.1');
  }
  const authPluginDataLength = reader.u8();
  const reserved = reader.bytes(HANDSHAKE_RESERVED_LENGTH);
  const mariadbCapabilities = hasCapability(capabilities, Capability.LongPassword)
    ? 0
    : reserved.readUInt32LE(HANDSHAKE_RESERVED_LENGTH - MARIADB_CAPABILITIES_LENGTH);
  const part2Length = Math.max(MIN_SCRAMBLE_PART2_LENGTH, authPluginDataLength - SCRAMBLE_PART1_LENGTH);
  // Like libmysqlclient, the last byte of part 2 is its terminator, whatever its value.
  const part2 = reader.bytes(part2Length).subarray(0, part2Length - 1);
  const authPluginName = hasCapability(capabilities, Capability.PluginAuth) ? reader.nulStringOrRest(MAX_NAME_LENGTH) : '';
  return {
    serverVersion,
    connectionId,
    authPluginData: Buffer.concat([part1, part2]),
    capabilities,
    characterSet,
    statusFlags,
    authPluginName,
    mariadbCapabilities,
  };
}

export interface SslRequest {
  /** Lower 32 capability bits; CLIENT_SSL set. */
  capabilities: number;
  maxPacketSize: number;
  characterSet: number;
  /** MariaDB's extended capabilities; read and written only when CLIENT_MYSQL is unset. */
  mariadbCapabilities: number;
}

export interface HandshakeResponse41 extends SslRequest {
  username: string;
  authResponse: Buffer;
  /** Present when CLIENT_CONNECT_WITH_DB is set and the packet carries it. */
  database: string | undefined;
  /** Present when CLIENT_PLUGIN_AUTH is set and the packet carries it. */
  authPluginName: string | undefined;
  /** Present when CLIENT_CONNECT_ATTRS is set and the packet carries them. */
  connectAttributes: Record<string, string> | undefined;
}

export type ClientHandshake = ({ type: 'ssl-request' } & SslRequest) | ({ type: 'response' } & HandshakeResponse41);

function writeResponseHeader(writer: PayloadWriter, request: SslRequest): PayloadWriter {
  const isMariaDb = !hasCapability(request.capabilities, Capability.LongPassword);
  return writer
    .u32(request.capabilities >>> 0)
    .u32(request.maxPacketSize)
    .u8(request.characterSet)
    .zeros(RESPONSE_FILLER_LENGTH - MARIADB_CAPABILITIES_LENGTH)
    .u32(isMariaDb ? request.mariadbCapabilities : 0);
}

export function encodeSslRequest(request: SslRequest): Buffer {
  return writeResponseHeader(new PayloadWriter(SSL_REQUEST_LENGTH), { ...request, capabilities: request.capabilities | Capability.Ssl }).finish();
}

/** Writes the optional fields that the response's capabilities call for. */
export function encodeHandshakeResponse41(response: HandshakeResponse41): Buffer {
  const caps = response.capabilities;
  const writer = writeResponseHeader(new PayloadWriter(128), response).nulString(response.username);
  writeAuthResponse(writer, response.authResponse, caps);
  if (hasCapability(caps, Capability.ConnectWithDb)) writer.nulString(response.database ?? '');
  if (hasCapability(caps, Capability.PluginAuth)) writer.nulString(response.authPluginName ?? '');
  if (hasCapability(caps, Capability.ConnectAttrs)) writeConnectAttributes(writer, response.connectAttributes ?? {});
  return writer.finish();
}

/**
 * An SSLRequest (exactly 32 bytes with CLIENT_SSL) or a HandshakeResponse41. As servers do,
 * fields after the auth response may be missing at the end of the packet, and bytes after the
 * last known field are ignored.
 */
export function decodeClientHandshake(payload: Buffer): ClientHandshake {
  const reader = new MySqlPayloadReader(payload, 'HandshakeResponse41');
  const capabilities = reader.u32() >>> 0;
  if (!hasCapability(capabilities, Capability.Protocol41)) throw new MySqlProtocolError('HandshakeResponse41: the client does not speak protocol 4.1');
  const maxPacketSize = reader.u32();
  const characterSet = reader.u8();
  const filler = reader.bytes(RESPONSE_FILLER_LENGTH);
  const mariadbCapabilities = hasCapability(capabilities, Capability.LongPassword)
    ? 0
    : filler.readUInt32LE(RESPONSE_FILLER_LENGTH - MARIADB_CAPABILITIES_LENGTH);
  const header = { capabilities, maxPacketSize, characterSet, mariadbCapabilities };
  if (reader.remaining === 0) {
    if (!hasCapability(capabilities, Capability.Ssl)) throw new MySqlProtocolError('HandshakeResponse41: packet is truncated');
    return { type: 'ssl-request', ...header };
  }
  const username = reader.nulString(MAX_NAME_LENGTH);
  const authResponse = Buffer.from(readAuthResponse(reader, capabilities));
  const database = hasCapability(capabilities, Capability.ConnectWithDb) && reader.remaining > 0 ? reader.nulString(MAX_NAME_LENGTH) : undefined;
  const authPluginName = hasCapability(capabilities, Capability.PluginAuth) && reader.remaining > 0 ? reader.nulStringOrRest(MAX_NAME_LENGTH) : undefined;
  const connectAttributes = hasCapability(capabilities, Capability.ConnectAttrs) && reader.remaining > 0 ? readConnectAttributes(reader) : undefined;
  return { type: 'response', ...header, username, authResponse, database, authPluginName, connectAttributes };
}

/** The auth response as the capabilities frame it: lenenc, 1-byte length, or NUL-terminated. */
function readAuthResponse(reader: MySqlPayloadReader, capabilities: number): Buffer {
  if (hasCapability(capabilities, Capability.PluginAuthLenencClientData)) return reader.lenencBytes(MAX_AUTH_RESPONSE_LENGTH);
  if (hasCapability(capabilities, Capability.SecureConnection)) return reader.bytes(reader.u8());
  return reader.nulBytes(MAX_AUTH_RESPONSE_LENGTH);
}

function writeAuthResponse(writer: PayloadWriter, authResponse: Buffer, capabilities: number): void {
  if (hasCapability(capabilities, Capability.PluginAuthLenencClientData)) {
    writer.lenencBytes(authResponse);
  } else if (hasCapability(capabilities, Capability.SecureConnection)) {
    if (authResponse.length > 0xff) throw new RangeError('auth response longer than 255 bytes needs CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA');
    writer.u8(authResponse.length).bytes(authResponse);
  } else {
    if (authResponse.includes(0)) throw new RangeError('a NUL-terminated auth response cannot contain NUL');
    writer.bytes(authResponse).u8(0);
  }
}

/** Connection attributes: a lenenc total length, then lenenc key and value strings. */
export function readConnectAttributes(reader: MySqlPayloadReader): Record<string, string> {
  const block = new MySqlPayloadReader(reader.lenencBytes(MAX_CONNECT_ATTRS_LENGTH), 'connection attributes');
  const attributes: Record<string, string> = Object.create(null);
  for (let count = 0; block.remaining > 0; count++) {
    if (count === MAX_CONNECT_ATTRS) throw new MySqlProtocolError(`more than ${MAX_CONNECT_ATTRS} connection attributes`);
    const key = block.lenencString();
    attributes[key] = block.lenencString();
  }
  return attributes;
}

export function writeConnectAttributes(writer: PayloadWriter, attributes: Record<string, string>): void {
  const block = new PayloadWriter();
  for (const [key, value] of Object.entries(attributes)) block.lenencBytes(key).lenencBytes(value);
  writer.lenencBytes(block.finish());
}
