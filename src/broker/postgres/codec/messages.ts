/**
 * Typed PostgreSQL messages the broker and the emulator speak: authentication, errors, session
 * setup, and the query messages audit reads. Pure encoders and decoders over frames.
 */
import { cstring, encodeMessage, int32, PgPayloadReader } from './frames.js';
import { PgProtocolError } from './protocol-error.js';

export enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  ParameterStatus = 0x53, // S
  ReadyForQuery = 0x5a, // Z
  NegotiateProtocolVersion = 0x76, // v
}

export enum FrontendCode {
  Password = 0x70, // p (PasswordMessage, SASLInitialResponse, SASLResponse)
  Query = 0x51, // Q
  Parse = 0x50, // P
  Bind = 0x42, // B
  Execute = 0x45, // E
  Terminate = 0x58, // X
}

enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

const MAX_SASL_MECHANISMS = 16;

// ---- Authentication ------------------------------------------------------------------------

export type AuthenticationRequest =
  | { type: 'ok' }
  | { type: 'cleartext' }
  | { type: 'md5'; salt: Buffer }
  | { type: 'sasl'; mechanisms: string[] }
  | { type: 'sasl-continue'; data: Buffer }
  | { type: 'sasl-final'; data: Buffer }
  | { type: 'unsupported'; code: number };

export function decodeAuthentication(payload: Buffer): AuthenticationRequest {
  const reader = new PgPayloadReader(payload, 'Authentication');
  const code = reader.int32();
  switch (code) {
    case AuthCode.Ok:
      return { type: 'ok' };
    case AuthCode.CleartextPassword:
      return { type: 'cleartext' };
    case AuthCode.MD5Password:
      return { type: 'md5', salt: Buffer.from(reader.bytes(4)) };
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const name = reader.cstring();
        if (name === '') break;
        if (mechanisms.push(name) > MAX_SASL_MECHANISMS) throw new PgProtocolError('too many SASL mechanisms');
      }
      return { type: 'sasl', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { type: 'sasl-continue', data: Buffer.from(reader.rest()) };
    case AuthCode.SASLFinal:
      return { type: 'sasl-final', data: Buffer.from(reader.rest()) };
    default:
      return { type: 'unsupported', code };
  }
}

export function encodeAuthentication(request: AuthenticationRequest): Buffer {
  const R = BackendCode.Authentication;
  switch (request.type) {
    case 'ok':
      return encodeMessage(R, int32(AuthCode.Ok));
    case 'cleartext':
      return encodeMessage(R, int32(AuthCode.CleartextPassword));
    case 'md5':
      return encodeMessage(R, int32(AuthCode.MD5Password), request.salt);
    case 'sasl':
      return encodeMessage(R, int32(AuthCode.SASL), ...request.mechanisms.map(cstring), Buffer.from([0]));
    case 'sasl-continue':
      return encodeMessage(R, int32(AuthCode.SASLContinue), request.data);
    case 'sasl-final':
      return encodeMessage(R, int32(AuthCode.SASLFinal), request.data);
    case 'unsupported':
      return encodeMessage(R, int32(request.code));
  }
}

/** PasswordMessage: cleartext or MD5 password (NUL-terminated). */
export function encodePasswordMessage(password: string): Buffer {
  return encodeMessage(FrontendCode.Password, cstring(password));
}

export function decodePasswordMessage(payload: Buffer): string {
  const reader = new PgPayloadReader(payload, 'PasswordMessage');
  const password = reader.cstring();
  reader.end();
  return password;
}

export function encodeSaslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return encodeMessage(FrontendCode.Password, cstring(mechanism), int32(data.length), data);
}

export function decodeSaslInitialResponse(payload: Buffer): { mechanism: string; data: Buffer } {
  const reader = new PgPayloadReader(payload, 'SASLInitialResponse');
  const mechanism = reader.cstring();
  const length = reader.int32();
  const data = length === -1 ? Buffer.alloc(0) : Buffer.from(reader.bytes(length));
  reader.end();
  return { mechanism, data };
}

export function encodeSaslResponse(data: Buffer): Buffer {
  return encodeMessage(FrontendCode.Password, data);
}

// ---- Errors and notices --------------------------------------------------------------------

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';
  /** SQLSTATE, e.g. 28P01. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

const FIELD_CODES: ReadonlyArray<[keyof ErrorFields, string]> = [
  ['severity', 'S'],
  ['code', 'C'],
  ['message', 'M'],
  ['detail', 'D'],
  ['hint', 'H'],
];

export function encodeErrorResponse(fields: ErrorFields): Buffer {
  const parts: Buffer[] = [];
  for (const [key, letter] of FIELD_CODES) {
    const value = fields[key];
    if (value !== undefined) parts.push(Buffer.from(letter, 'ascii'), cstring(value));
    // 'V' is the non-localized severity, which libpq prefers when present.
    if (key === 'severity') parts.push(Buffer.from('V', 'ascii'), cstring(fields.severity));
  }
  parts.push(Buffer.from([0]));
  return encodeMessage(BackendCode.ErrorResponse, ...parts);
}

/**
 * An error in the format of protocol 2, which PostgreSQL still uses to refuse a client that asked
 * for it: 'E', then "SEVERITY:  message" and a newline as one NUL-terminated string, no length.
 */
export function encodeProtocol2Error(severity: ErrorFields['severity'], message: string): Buffer {
  return Buffer.concat([Buffer.from([BackendCode.ErrorResponse]), cstring(`${severity}:  ${message}\n`)]);
}

/** Fields of an ErrorResponse / NoticeResponse keyed by their one-letter codes. */
export function decodeErrorFields(payload: Buffer): Record<string, string> {
  const reader = new PgPayloadReader(payload, 'ErrorResponse');
  const fields: Record<string, string> = {};
  for (let count = 0; count < 64; count++) {
    const type = reader.byte();
    if (type === 0) return fields;
    fields[String.fromCharCode(type)] = reader.cstring();
  }
  throw new PgProtocolError('ErrorResponse has too many fields');
}

// ---- Session setup ---------------------------------------------------------------------------

export function encodeParameterStatus(name: string, value: string): Buffer {
  return encodeMessage(BackendCode.ParameterStatus, cstring(name), cstring(value));
}

/** A ParameterStatus payload (name, value); undefined when it names nothing. */
export function decodeParameterStatus(payload: Buffer): { name: string; value: string } | undefined {
  const [name, value] = payload.toString('utf8').split('\0');
  return name ? { name, value: value ?? '' } : undefined;
}

/** ReadyForQuery with the transaction status: I idle, T in a transaction, E in a failed one. */
export function encodeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return encodeMessage(BackendCode.ReadyForQuery, Buffer.from(status, 'latin1'));
}

export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  return encodeMessage(BackendCode.BackendKeyData, int32(processId), secretKey);
}

export function decodeBackendKeyData(payload: Buffer): { processId: number; secretKey: Buffer } {
  const reader = new PgPayloadReader(payload, 'BackendKeyData');
  const processId = reader.int32();
  if (reader.remaining < 4 || reader.remaining > 256) throw new PgProtocolError('BackendKeyData has a bad key length');
  // A copy of its own: Buffer.from would put it in an 8 KiB pool slab, which it would then keep
  // alive for the whole session.
  const key = reader.rest();
  const secretKey = Buffer.allocUnsafeSlow(key.length);
  key.copy(secretKey);
  return { processId, secretKey };
}

/** Tells a 3.x client with a newer minor version that the server speaks 3.0. */
export function encodeNegotiateProtocolVersion(newestMinor: number, unsupportedOptions: string[]): Buffer {
  return encodeMessage(
    BackendCode.NegotiateProtocolVersion,
    int32(newestMinor),
    int32(unsupportedOptions.length),
    ...unsupportedOptions.map(cstring),
  );
}

// ---- Query messages (what audit reads) ---------------------------------------------------
//
// With `head`, the payload is only the first bytes of a longer message (the relay's audit keeps a
// bounded head of each), so it may end anywhere: a string it cuts comes out cut, a count past its
// end as undefined. What it does hold must still be well formed.

export function decodeQuery(payload: Buffer, head = false): string {
  const reader = new PgPayloadReader(payload, 'Query');
  if (head) return reader.cstringOrRest();
  const sql = reader.cstring();
  reader.end();
  return sql;
}

export function decodeParse(payload: Buffer, head = false): { statement: string; query: string } {
  const reader = new PgPayloadReader(payload, 'Parse');
  if (head) return { statement: reader.cstringOrRest(), query: reader.cstringOrRest() };
  const statement = reader.cstring();
  const query = reader.cstring();
  reader.bytes(reader.uint16() * 4); // parameter types
  reader.end();
  return { statement, query };
}

/**
 * Where the SQL of a whole Query message lies in `bytes` (its payload from `start` to `end`):
 * checked as decodeQuery checks it (with its errors), without making a string of it.
 * Returns the offset of the SQL's terminating NUL; the SQL starts at `start`.
 */
export function querySqlEnd(bytes: Buffer, start: number, end: number): number {
  const nul = bytes.indexOf(0, start);
  if (nul !== end - 1) {
    decodeQuery(bytes.subarray(start, end)); // throws what decodeQuery says
    throw new PgProtocolError('Query: malformed');
  }
  return nul;
}

/**
 * Where the SQL of a whole Parse message lies in `bytes` (its payload from `start` to `end`),
 * checked as decodeParse checks it (with its errors), without making strings: the offset the
 * SQL starts at (the statement name is before it, from `start`); it ends at the next NUL.
 */
export function parseSqlStart(bytes: Buffer, start: number, end: number): number {
  const nameEnd = bytes.indexOf(0, start);
  const sqlEnd = nameEnd >= 0 && nameEnd < end ? bytes.indexOf(0, nameEnd + 1) : -1;
  if (sqlEnd < 0 || end - sqlEnd - 1 < 2 || sqlEnd + 3 + bytes.readUInt16BE(sqlEnd + 1) * 4 !== end) {
    decodeParse(bytes.subarray(start, end)); // throws what decodeParse says
    throw new PgProtocolError('Parse: malformed');
  }
  return nameEnd + 1;
}

/** Bind's names and parameter count; parameter values are skipped, never read into audit. */
export function decodeBind(payload: Buffer, head = false): { portal: string; statement: string; parameterCount: number | undefined } {
  const reader = new PgPayloadReader(payload, 'Bind');
  const portal = head ? reader.cstringOrRest() : reader.cstring();
  const statement = head ? reader.cstringOrRest() : reader.cstring();
  if (head && reader.remaining < 2) return { portal, statement, parameterCount: undefined };
  const formatCount = reader.uint16();
  if (head && reader.remaining < formatCount * 2 + 2) return { portal, statement, parameterCount: undefined };
  reader.bytes(formatCount * 2);
  const parameterCount = reader.uint16();
  if (head) return { portal, statement, parameterCount };
  for (let i = 0; i < parameterCount; i++) {
    const length = reader.int32();
    if (length < -1) throw new PgProtocolError(`Bind: bad length ${length} of parameter ${i + 1}`);
    if (length > 0) reader.bytes(length);
  }
  reader.bytes(reader.uint16() * 2); // result format codes
  reader.end();
  return { portal, statement, parameterCount };
}

export function decodeExecute(payload: Buffer, head = false): { portal: string } {
  const reader = new PgPayloadReader(payload, 'Execute');
  if (head) return { portal: reader.cstringOrRest() };
  const portal = reader.cstring();
  reader.int32(); // the row limit
  reader.end();
  return { portal };
}
