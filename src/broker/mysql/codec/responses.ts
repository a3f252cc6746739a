/**
 * Generic server responses: OK and ERR. The ERR encoder is how the broker reports errors to
 * clients. Protocol 4.1 only (the handshake refuses older peers).
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
