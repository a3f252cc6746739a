/**
 * One pooled server connection and the few things the pool does on it itself: log in (with
 * loginUpstream and a token from the cache), run a query of its own (the client's startup
 * parameters, the reset), and notice while it is idle that it broke.
 *
 * Its socket has one set of listeners for its whole life, which pass what happens on it to the
 * connection's `reader`: the transaction relay of the client it is lent to, or the pool's idle
 * watch. In transaction mode a connection changes hands every transaction; adding and removing
 * listeners each time cost more than the dispatch.
 */
import type { TLSSocket } from 'node:tls';
import { WireReader } from '../../wire-reader.js';
import { FrameDecoder } from '../codec/frame-decoder.js';
import { encodeMessage, cstring } from '../codec/frames.js';
import { BackendCode, decodeErrorFields, decodeParameterStatus } from '../codec/messages.js';
import type { UpstreamSession } from '../upstream.js';
import type { TransactionStatus } from './session-tracker.js';
import { watchBroken } from '../../pool/connection-watch.js';

/** Time allowed for a query the pool runs itself (parameters, reset). */
const OWN_QUERY_TIMEOUT_MS = 10_000;

export interface ServerConnection {
  readonly socket: TLSSocket;
  readonly backendKey: UpstreamSession['backendKey'];
  /** The server's ParameterStatus values as last reported, for the next client's greeting. */
  readonly parameters: Map<string, string>;
  /**
   * The client startup parameters the pool applied (lower-cased name → value) since login or the
   * last reset: what the next client's differ from is all that must be set or reset for it.
   */
  readonly settings: Map<string, string>;
  /**
   * Transaction mode: the protocol-level prepared statements on this connection, statement key
   * (query text and parameter types) → server-side name, least recently used first.
   */
  readonly prepared: Map<string, string>;
  /** Closed, errored, or sent something while nobody asked. */
  broken: boolean;
  /**
   * Who is told what the server sends, and that the socket drained or went; nobody while the
   * pool runs a query of its own or a session-mode relay listens to the socket itself.
   */
  reader?: ServerReader | undefined;
}

/** The receiver of a connection's socket events (see `reader`). */
export interface ServerReader {
  data(chunk: Buffer, connection: ServerConnection): void;
  drain(): void;
  /** The socket errored (`error`) or closed; the connection is marked broken already. */
  gone(error?: Error): void;
}

export interface OwnQueryResult {
  status: TransactionStatus;
  /** The server's ErrorResponse fields, when the query failed. */
  error?: Record<string, string>;
}

/** Wraps a fresh login; `onBroken` runs once when the socket closes or errors. */
export function serverConnection(session: UpstreamSession, onBroken: (connection: ServerConnection) => void): ServerConnection {
  const parameters = new Map<string, string>();
  for (const frame of session.greeting) {
    const status = frame[0] === BackendCode.ParameterStatus ? decodeParameterStatus(frame.subarray(5)) : undefined;
    if (status) parameters.set(status.name, status.value);
  }
  const connection: ServerConnection = { socket: session.socket, backendKey: session.backendKey, parameters, settings: new Map(), prepared: new Map(), broken: session.rest.length > 0, reader: undefined };
  watchBroken(connection, onBroken);
  // After watchBroken's: a reader told the socket went finds the connection broken.
  const socket = session.socket;
  socket.on('data', (chunk: Buffer) => connection.reader?.data(chunk, connection));
  socket.on('drain', () => connection.reader?.drain());
  socket.on('error', (error: Error) => connection.reader?.gone(error));
  socket.on('close', () => connection.reader?.gone());
  return connection;
}

/**
 * Runs one simple Query and reads its answer up to ReadyForQuery, keeping ParameterStatus values.
 * Throws when the server does not answer in time or goes away; the caller then discards it.
 */
export async function runOwnQuery(connection: ServerConnection, sql: string): Promise<OwnQueryResult> {
  const reader = new WireReader(connection.socket, new FrameDecoder());
  const deadline = { at: Date.now() + OWN_QUERY_TIMEOUT_MS, what: 'the server to answer the pool' };
  let error: Record<string, string> | undefined;
  try {
    connection.socket.write(encodeMessage(0x51 /* Q */, cstring(sql)));
    for (;;) {
      const frame = await reader.read((decoder) => decoder.next(), deadline);
      if (frame.code === BackendCode.ErrorResponse) error ??= decodeErrorFields(frame.payload);
      else if (frame.code === BackendCode.ParameterStatus) {
        const status = decodeParameterStatus(frame.payload);
        if (status) connection.parameters.set(status.name, status.value);
      } else if (frame.code === BackendCode.ReadyForQuery) {
        const status = String.fromCharCode(frame.payload[0] ?? 0) as TransactionStatus;
        return { status, ...(error ? { error } : {}) };
      }
    }
  } finally {
    if (reader.detach().length > 0) connection.broken = true;
  }
}

/**
 * Makes the connection's session parameters the client's `wanted` ones (startup parameters such as
 * application_name, DateStyle, TimeZone), as PgBouncer's tracked parameters: set_config for those
 * that differ from what the pool applied, RESET for those a previous client had and this one has
 * not. Runs nothing when they match. One simple query, so on error nothing changed.
 */
export async function applySettings(connection: ServerConnection, target: ReadonlyMap<string, string>): Promise<OwnQueryResult | undefined> {
  if (hasSettings(connection, target)) return undefined;
  const statements = settingsDifference(connection.settings, target);
  const result = await runOwnQuery(connection, statements.join('; '));
  if (result.error === undefined) {
    connection.settings.clear();
    for (const [name, value] of target) connection.settings.set(name, value);
  }
  return result;
}

/** A client's startup parameters as applySettings takes them: lower-cased names. */
export function settingsTarget(wanted: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(wanted).map(([name, value]) => [name.toLowerCase(), value]));
}

/** Whether the connection has exactly these settings (settingsDifference would be empty), without allocating. */
export function hasSettings(connection: Pick<ServerConnection, 'settings'>, target: ReadonlyMap<string, string>): boolean {
  const current = connection.settings;
  if (current.size !== target.size) return false;
  // keys() and get(): V8 elides the iterator; `for (const [name, value] of target)` makes an entry array per setting.
  for (const name of target.keys()) if (current.get(name) !== target.get(name)) return false;
  return true;
}

/** The statements that turn the `current` settings (lower-cased names) into `target`. */
export function settingsDifference(current: ReadonlyMap<string, string>, target: ReadonlyMap<string, string>): string[] {
  const statements: string[] = [];
  for (const [name, value] of target) {
    if (current.get(name) !== value) statements.push(`SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`);
  }
  for (const name of current.keys()) {
    if (!target.has(name)) statements.push(`RESET ${name.split('.').map(quoteIdentifier).join('.')}`);
  }
  return statements;
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** An E'' literal: right whatever standard_conforming_strings says. */
function quoteLiteral(text: string): string {
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
