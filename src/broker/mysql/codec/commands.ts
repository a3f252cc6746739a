/**
 * Client commands after authentication: the command byte, the decoders audit and the session
 * need (query text, never parameter values), and encoders for what the broker itself sends.
 * `capabilities` is what both sides negotiated.
 */
import { Capability, FieldType, hasCapability } from './constants.js';
import { MAX_NAME_LENGTH, readAuthResponse, readConnectAttributes, writeAuthResponse, writeConnectAttributes } from './handshake.js';
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

/** enum_cursor_type flag: COM_STMT_EXECUTE carries its own parameter count (MySQL 8 query attributes). */
const PARAMETER_COUNT_AVAILABLE = 0x08;
/** Prepared statement parameter counts are 16-bit in COM_STMT_PREPARE_OK. */
export const MAX_STATEMENT_PARAMETERS = 0xffff;
/** Cap on query attributes in one COM_QUERY (MySQL's client sends at most 32). */
export const MAX_QUERY_ATTRIBUTES = 0xffff;
const UNSIGNED_FLAG_BYTE = 1; // the second byte of a parameter type: 0x80 = unsigned

export interface CommandInfo {
  code: number;
  /** Undefined for a byte that names no known command. */
  command: Command | undefined;
  /** e.g. COM_QUERY; COM_UNKNOWN_0x42 for unknown bytes. */
  name: string;
}

/** The command a client packet (sequence id 0) carries; only its first byte is read. */
export function classifyCommand(payload: Buffer): CommandInfo {
  if (payload.length === 0) throw new MySqlProtocolError('empty command packet');
  const code = payload[0]!;
  const name = COMMAND_NAMES.get(code);
  return name === undefined
    ? { code, command: undefined, name: `COM_UNKNOWN_0x${code.toString(16).padStart(2, '0')}` }
    : { code, command: code as Command, name };
}

function commandReader(payload: Buffer, command: Command): MySqlPayloadReader {
  const name = COMMAND_NAMES.get(command)!;
  const reader = new MySqlPayloadReader(payload, name);
  if (reader.u8() !== command) throw new MySqlProtocolError(`${name}: bad command byte`);
  return reader;
}

export function encodeQuit(): Buffer {
  return Buffer.from([Command.Quit]);
}

export function encodePing(): Buffer {
  return Buffer.from([Command.Ping]);
}

export function encodeInitDb(database: string): Buffer {
  return new PayloadWriter().u8(Command.InitDb).string(database).finish();
}

export function decodeInitDb(payload: Buffer): string {
  const reader = commandReader(payload, Command.InitDb);
  if (reader.remaining > MAX_NAME_LENGTH) throw new MySqlProtocolError('COM_INIT_DB: database name is too long');
  return reader.restString();
}

/** A COM_QUERY without query attributes (an empty attribute set under CLIENT_QUERY_ATTRIBUTES). */
export function encodeQuery(sql: string, capabilities: number): Buffer {
  const writer = new PayloadWriter(Buffer.byteLength(sql) + 3).u8(Command.Query);
  if (hasCapability(capabilities, Capability.QueryAttributes)) writer.lenenc(0).lenenc(1);
  return writer.string(sql).finish();
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

export function encodeStmtPrepare(sql: string): Buffer {
  return new PayloadWriter(Buffer.byteLength(sql) + 1).u8(Command.StmtPrepare).string(sql).finish();
}

export function decodeStmtPrepare(payload: Buffer): string {
  return commandReader(payload, Command.StmtPrepare).restString();
}

export interface StmtExecute {
  statementId: number;
  /** enum_cursor_type bits (MariaDB adds more). */
  flags: number;
  iterationCount: number;
  /** Parameters sent: the prepared count, or the packet's own count under query attributes. */
  parameterCount: number;
}

/**
 * The statement and parameter count of a COM_STMT_EXECUTE. The packet does not carry the count
 * (except under query attributes); pass the one COM_STMT_PREPARE_OK gave. Parameter values are
 * never read: without types (a re-execute may omit them) they cannot even be skipped.
 */
export function decodeStmtExecute(payload: Buffer, preparedParameterCount: number, capabilities: number): StmtExecute {
  const reader = commandReader(payload, Command.StmtExecute);
  const statementId = reader.u32();
  const flags = reader.u8();
  const iterationCount = reader.u32();
  let parameterCount = preparedParameterCount;
  const queryAttributes = hasCapability(capabilities, Capability.QueryAttributes);
  if (parameterCount > 0 || (queryAttributes && flags & PARAMETER_COUNT_AVAILABLE)) {
    if (queryAttributes) parameterCount = reader.lenenc();
    if (parameterCount > MAX_STATEMENT_PARAMETERS) throw new MySqlProtocolError(`COM_STMT_EXECUTE: ${parameterCount} parameters`);
    if (parameterCount > 0) {
      reader.skip((parameterCount + 7) >>> 3); // NULL bitmap
      const bindFlag = reader.u8();
      if (bindFlag > 1) throw new MySqlProtocolError(`COM_STMT_EXECUTE: bad new-params-bind flag ${bindFlag}`);
    }
  }
  return { statementId, flags, iterationCount, parameterCount };
}

export function encodeStmtClose(statementId: number): Buffer {
  return new PayloadWriter(5).u8(Command.StmtClose).u32(statementId).finish();
}

export function decodeStmtClose(payload: Buffer): number {
  return decodeStatementId(payload, Command.StmtClose);
}

export function encodeStmtReset(statementId: number): Buffer {
  return new PayloadWriter(5).u8(Command.StmtReset).u32(statementId).finish();
}

export function decodeStmtReset(payload: Buffer): number {
  return decodeStatementId(payload, Command.StmtReset);
}

function decodeStatementId(payload: Buffer, command: Command): number {
  const reader = commandReader(payload, command);
  const statementId = reader.u32();
  reader.end();
  return statementId;
}

export interface ChangeUser {
  username: string;
  authResponse: Buffer;
  database: string;
  /** Absent in packets from clients that stop after the database. */
  characterSet: number | undefined;
  authPluginName: string | undefined;
  connectAttributes: Record<string, string> | undefined;
}

export function encodeChangeUser(change: ChangeUser, capabilities: number): Buffer {
  const writer = new PayloadWriter().u8(Command.ChangeUser).nulString(change.username);
  // COM_CHANGE_USER has no lenenc auth response: 1-byte length under SECURE_CONNECTION.
  writeAuthResponse(writer, change.authResponse, capabilities & ~Capability.PluginAuthLenencClientData);
  writer.nulString(change.database);
  if (change.characterSet === undefined) return writer.finish();
  writer.u16(change.characterSet);
  if (hasCapability(capabilities, Capability.PluginAuth)) writer.nulString(change.authPluginName ?? '');
  if (hasCapability(capabilities, Capability.ConnectAttrs)) writeConnectAttributes(writer, change.connectAttributes ?? {});
  return writer.finish();
}

export function decodeChangeUser(payload: Buffer, capabilities: number): ChangeUser {
  const reader = commandReader(payload, Command.ChangeUser);
  const username = reader.nulString(MAX_NAME_LENGTH);
  const authResponse = Buffer.from(readAuthResponse(reader, capabilities & ~Capability.PluginAuthLenencClientData));
  const database = reader.nulString(MAX_NAME_LENGTH);
  const characterSet = reader.remaining > 0 ? reader.u16() : undefined;
  const authPluginName = hasCapability(capabilities, Capability.PluginAuth) && reader.remaining > 0 ? reader.nulStringOrRest(MAX_NAME_LENGTH) : undefined;
  const connectAttributes = hasCapability(capabilities, Capability.ConnectAttrs) && reader.remaining > 0 ? readConnectAttributes(reader) : undefined;
  return { username, authResponse, database, characterSet, authPluginName, connectAttributes };
}
