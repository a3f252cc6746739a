/**
 * Client commands after authentication: the command bytes, and the decoders the relay's audit
 * needs (query text, never parameter values). `capabilities` is what both sides negotiated.
 */
import { Capability, FieldType, hasCapability } from './constants.js';
import { MAX_NAME_LENGTH, readConnectAttributes, writeConnectAttributes } from './handshake.js';
import { MySqlProtocolError } from './protocol-error.js';
import { MySqlPayloadReader, PayloadWriter } from './values.js';

/** Command bytes (enum_server_command; the last two are MariaDB's). */
export enum Command {
  Sleep = 0x00,
  Quit = 0x01,
  InitDb = 0x02,
  Query = 0x03,
  FieldList = 0x04,
  CreateDb = 0x05,
  DropDb = 0x06,
  Refresh = 0x07,
  Shutdown = 0x08,
  Statistics = 0x09,
  ProcessInfo = 0x0a,
  Connect = 0x0b,
  ProcessKill = 0x0c,
  Debug = 0x0d,
  Ping = 0x0e,
  Time = 0x0f,
  DelayedInsert = 0x10,
  ChangeUser = 0x11,
  BinlogDump = 0x12,
  TableDump = 0x13,
  ConnectOut = 0x14,
  RegisterSlave = 0x15,
  StmtPrepare = 0x16,
  StmtExecute = 0x17,
  StmtSendLongData = 0x18,
  StmtClose = 0x19,
  StmtReset = 0x1a,
  SetOption = 0x1b,
  StmtFetch = 0x1c,
  Daemon = 0x1d,
  BinlogDumpGtid = 0x1e,
  ResetConnection = 0x1f,
  Clone = 0x20,
  SubscribeGroupReplicationStream = 0x21,
  StmtBulkExecute = 0xfa, // MariaDB
  Multi = 0xfe, // MariaDB, deprecated
}

/** Names as servers print them, e.g. COM_STMT_PREPARE. */
const COMMAND_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Command)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([key, code]) => [code, `COM_${key.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase()}`]),
);

/** Cap on query attributes in one COM_QUERY (MySQL's client sends at most 32). */
const MAX_QUERY_ATTRIBUTES = 0xffff;
const UNSIGNED_FLAG_BYTE = 1; // the second byte of a parameter type: 0x80 = unsigned

function commandReader(payload: Buffer, command: Command): MySqlPayloadReader {
  const name = COMMAND_NAMES.get(command)!;
  const reader = new MySqlPayloadReader(payload, name);
  if (reader.u8() !== command) throw new MySqlProtocolError(`${name}: bad command byte`);
  return reader;
}

/** The query text and how many query attributes came with it; attribute values are skipped. */
export function decodeQuery(payload: Buffer, capabilities: number): { sql: string; attributeCount: number } {
  const reader = commandReader(payload, Command.Query);
  let attributeCount = 0;
  if (hasCapability(capabilities, Capability.QueryAttributes)) {
    attributeCount = reader.lenenc();
    if (attributeCount > MAX_QUERY_ATTRIBUTES) throw new MySqlProtocolError(`COM_QUERY: ${attributeCount} query attributes`);
    reader.lenenc(); // parameter_set_count, always 1
    if (attributeCount > 0) skipQueryAttributes(reader, attributeCount);
  }
  return { sql: reader.restString(), attributeCount };
}

/**
 * Skips COM_QUERY's attribute block: NULL bitmap, new-params-bind flag (always 1: there is no
 * earlier execute to take types from), type and name of each, then the non-NULL binary values.
 */
function skipQueryAttributes(reader: MySqlPayloadReader, count: number): void {
  const nullBitmap = reader.bytes((count + 7) >>> 3);
  const bindFlag = reader.u8();
  if (bindFlag !== 1) throw new MySqlProtocolError(`COM_QUERY: bad new-params-bind flag ${bindFlag}`);
  const types: number[] = [];
  for (let i = 0; i < count; i++) {
    types.push(reader.u8());
    reader.skip(UNSIGNED_FLAG_BYTE);
    reader.lenencBytes(MAX_NAME_LENGTH);
  }
  for (let i = 0; i < count; i++) {
    if ((nullBitmap[i >>> 3]! >>> (i & 7)) & 1) continue;
    skipBinaryValue(reader, types[i]!);
  }
}

/** Skips one value in the binary protocol by its type; unknown types are length-encoded, as the server reads them. */
function skipBinaryValue(reader: MySqlPayloadReader, type: number): void {
  switch (type) {
    case FieldType.Null:
      return;
    case FieldType.Tiny:
      return reader.skip(1);
    case FieldType.Short:
    case FieldType.Year:
      return reader.skip(2);
    case FieldType.Long:
    case FieldType.Int24:
    case FieldType.Float:
      return reader.skip(4);
    case FieldType.LongLong:
    case FieldType.Double:
      return reader.skip(8);
    case FieldType.Date:
    case FieldType.DateTime:
    case FieldType.Timestamp:
    case FieldType.Time:
      return reader.skip(reader.u8());
    default:
      reader.lenencBytes();
  }
}

export function decodeStmtPrepare(payload: Buffer): string {
  return commandReader(payload, Command.StmtPrepare).restString();
}

/** COM_CHANGE_USER: a new login on the same connection, framed like a short HandshakeResponse41. */
export interface ChangeUserRequest {
  user: string;
  /** 1-byte length with CLIENT_SECURE_CONNECTION (never length-encoded here), else NUL-terminated. */
  authResponse: Buffer;
  database: string;
  /** The collation id; absent in packets of old clients. */
  characterSet: number | undefined;
  /** Present when CLIENT_PLUGIN_AUTH is set and the packet carries it. */
  authPluginName: string | undefined;
  /** Present when CLIENT_CONNECT_ATTRS is set and the packet carries them. */
  connectAttributes: Record<string, string> | undefined;
}

export function decodeChangeUser(payload: Buffer, capabilities: number): ChangeUserRequest {
  const reader = commandReader(payload, Command.ChangeUser);
  const user = reader.nulString(MAX_NAME_LENGTH);
  const authResponse = Buffer.from(hasCapability(capabilities, Capability.SecureConnection) ? reader.bytes(reader.u8()) : reader.nulBytes(MAX_NAME_LENGTH));
  const database = reader.nulString(MAX_NAME_LENGTH);
  const characterSet = reader.remaining >= 2 ? reader.u16() : undefined;
  const authPluginName = hasCapability(capabilities, Capability.PluginAuth) && reader.remaining > 0 ? reader.nulStringOrRest(MAX_NAME_LENGTH) : undefined;
  const connectAttributes = hasCapability(capabilities, Capability.ConnectAttrs) && reader.remaining > 0 ? readConnectAttributes(reader) : undefined;
  return { user, authResponse, database, characterSet, authPluginName, connectAttributes };
}

export function encodeChangeUser(request: ChangeUserRequest, capabilities: number): Buffer {
  const writer = new PayloadWriter(128).u8(Command.ChangeUser).nulString(request.user);
  if (hasCapability(capabilities, Capability.SecureConnection)) {
    if (request.authResponse.length > 0xff) throw new RangeError('a COM_CHANGE_USER auth response is at most 255 bytes');
    writer.u8(request.authResponse.length).bytes(request.authResponse);
  } else {
    writer.bytes(request.authResponse).u8(0);
  }
  writer.nulString(request.database);
  if (request.characterSet === undefined) return writer.finish();
  writer.u16(request.characterSet);
  if (hasCapability(capabilities, Capability.PluginAuth)) writer.nulString(request.authPluginName ?? '');
  // MariaDB refuses a COM_CHANGE_USER without the attribute block when the flag is set ("Unknown command").
  if (hasCapability(capabilities, Capability.ConnectAttrs)) writeConnectAttributes(writer, request.connectAttributes ?? {});
  return writer.finish();
}
