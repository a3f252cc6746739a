/**
 * Generic server responses: OK, ERR, EOF, and COM_STMT_PREPARE_OK. The ERR encoder is how the
 * broker reports errors to clients. Protocol 4.1 only (the handshake refuses older peers).
 */
import { Capability, ServerStatus, hasCapability } from './constants.js';
import { MySqlProtocolError } from './protocol-error.js';
import { MySqlPayloadReader, PayloadWriter } from './values.js';

/** First byte of a server response. */
export enum ResponseHeader {
  Ok = 0x00,
  AuthMoreData = 0x01, // during authentication only
  LocalInfile = 0xfb, // LOAD DATA LOCAL INFILE request
  Eof = 0xfe, // also AuthSwitchRequest, and the OK ending a result set under CLIENT_DEPRECATE_EOF
  Err = 0xff,
}

/** An EOF packet is 0xfe with a payload shorter than this; longer ones are OK or a row. */
const EOF_PAYLOAD_LIMIT = 9;
const SQLSTATE_MARKER = 0x23; // '#'
const SQLSTATE_LENGTH = 5;

export interface OkPacket {
  affectedRows: bigint;
  lastInsertId: bigint;
  statusFlags: number;
  warnings: number;
  info: string;
  /** Session state change data (with SERVER_SESSION_STATE_CHANGED), kept raw. */
  sessionState: Buffer | undefined;
}

/** `header` may be 0xfe for the OK that ends a result set under CLIENT_DEPRECATE_EOF. */
export function encodeOk(ok: Partial<OkPacket>, capabilities: number, header: ResponseHeader.Ok | ResponseHeader.Eof = ResponseHeader.Ok): Buffer {
  const statusFlags = (ok.statusFlags ?? 0) | (ok.sessionState ? ServerStatus.SessionStateChanged : 0);
  const writer = new PayloadWriter()
    .u8(header)
    .lenenc(ok.affectedRows ?? 0n)
    .lenenc(ok.lastInsertId ?? 0n)
    .u16(statusFlags)
    .u16(ok.warnings ?? 0);
  const info = ok.info ?? '';
  if (!hasCapability(capabilities, Capability.SessionTrack)) return writer.string(info).finish();
  if (info !== '' || ok.sessionState) writer.lenencBytes(info);
  if (ok.sessionState) writer.lenencBytes(ok.sessionState);
  return writer.finish();
}

export function decodeOk(payload: Buffer, capabilities: number): OkPacket {
  const reader = new MySqlPayloadReader(payload, 'OK packet');
  const header = reader.u8();
  if (header !== ResponseHeader.Ok && header !== ResponseHeader.Eof) throw new MySqlProtocolError(`OK packet: bad header 0x${header.toString(16)}`);
  const affectedRows = reader.lenencBigInt();
  const lastInsertId = reader.lenencBigInt();
  const statusFlags = reader.u16();
  const warnings = reader.u16();
  let info = '';
  let sessionState: Buffer | undefined;
  if (!hasCapability(capabilities, Capability.SessionTrack)) {
    info = reader.restString();
  } else {
    if (reader.remaining > 0) info = reader.lenencString();
    if (statusFlags & ServerStatus.SessionStateChanged && reader.remaining > 0) sessionState = Buffer.from(reader.lenencBytes());
  }
  return { affectedRows, lastInsertId, statusFlags, warnings, info, sessionState };
}

export interface ErrPacket {
  code: number;
  /** Five characters, e.g. 28000; absent in errors sent before the client's capabilities are known. */
  sqlState: string | undefined;
  message: string;
}

export function encodeErr(err: ErrPacket): Buffer {
  const writer = new PayloadWriter().u8(ResponseHeader.Err).u16(err.code);
  if (err.sqlState !== undefined) {
    if (!/^[0-9A-Z]{5}$/.test(err.sqlState)) throw new RangeError(`bad SQLSTATE ${err.sqlState}`);
    writer.u8(SQLSTATE_MARKER).string(err.sqlState);
  }
  return writer.string(err.message).finish();
}

export function decodeErr(payload: Buffer): ErrPacket {
  const reader = new MySqlPayloadReader(payload, 'ERR packet');
  if (reader.u8() !== ResponseHeader.Err) throw new MySqlProtocolError('ERR packet: bad header');
  const code = reader.u16();
  let sqlState: string | undefined;
  if (reader.peek() === SQLSTATE_MARKER) {
    reader.skip(1);
    sqlState = reader.bytes(SQLSTATE_LENGTH).toString('latin1');
  }
  return { code, sqlState, message: reader.restString() };
}

export interface EofPacket {
  warnings: number;
  statusFlags: number;
}

export function isEofPacket(payload: Buffer): boolean {
  return payload[0] === ResponseHeader.Eof && payload.length < EOF_PAYLOAD_LIMIT;
}

export function encodeEof(eof: EofPacket): Buffer {
  return new PayloadWriter(5).u8(ResponseHeader.Eof).u16(eof.warnings).u16(eof.statusFlags).finish();
}

export function decodeEof(payload: Buffer): EofPacket {
  if (!isEofPacket(payload)) throw new MySqlProtocolError('not an EOF packet');
  const reader = new MySqlPayloadReader(payload, 'EOF packet', 1);
  return { warnings: reader.u16(), statusFlags: reader.u16() };
}

export interface StmtPrepareOk {
  statementId: number;
  columnCount: number;
  parameterCount: number;
  warnings: number;
}

export function encodeStmtPrepareOk(ok: StmtPrepareOk): Buffer {
  return new PayloadWriter(12)
    .u8(ResponseHeader.Ok)
    .u32(ok.statementId)
    .u16(ok.columnCount)
    .u16(ok.parameterCount)
    .u8(0)
    .u16(ok.warnings)
    .finish();
}

/** Any bytes after the warning count (MySQL 8's metadata_follows) are ignored. */
export function decodeStmtPrepareOk(payload: Buffer): StmtPrepareOk {
  const reader = new MySqlPayloadReader(payload, 'COM_STMT_PREPARE_OK');
  if (reader.u8() !== ResponseHeader.Ok) throw new MySqlProtocolError('COM_STMT_PREPARE_OK: bad header');
  const statementId = reader.u32();
  const columnCount = reader.u16();
  const parameterCount = reader.u16();
  // Very old servers stop here; the filler and warning count came with 4.1.
  const warnings = reader.remaining >= 3 ? (reader.skip(1), reader.u16()) : 0;
  return { statementId, columnCount, parameterCount, warnings };
}
