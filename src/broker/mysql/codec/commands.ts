/**
 * Client commands after authentication: the command bytes, and the decoders the relay's audit
 * needs (query text, never parameter values). `capabilities` is what both sides negotiated.
 */
import { Capability, FieldType, hasCapability } from './constants.js';
import { MAX_NAME_LENGTH } from './handshake.js';
import { MySqlProtocolError } from './protocol-error.js';
import { MySqlPayloadReader } from './values.js';

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
