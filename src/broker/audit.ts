/**
 * Audit log: one JSON object a line. Session start and end, and (when enabled) each query a
 * client sends. It never holds a token or a password: events are built from fixed fields, and
 * query text is the statement only (Bind's parameter values are never read).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';

export interface SessionIdentity {
  session_id: string;
  database: string;
  protocol: 'postgres' | 'mysql';
  db_user: string;
  db_name: string;
  client_address: string;
}

/** Who is at the database, from the token the upstream took (never the token) and the OS. */
export interface SessionPerson {
  oid?: string;
  /** A person's sign-in name; `appid` instead for an application or managed identity. */
  upn?: string;
  appid?: string;
  tid?: string;
  /** The OS user running azdb. */
  os_user?: string;
}

export type AuditEvent =
  | ({ event: 'session.start' } & SessionIdentity & SessionPerson)
  | ({
      event: 'session.end';
      result: 'ok' | 'error';
      error?: string;
      bytes_from_client: number;
      bytes_to_client: number;
      duration_ms: number;
    } & SessionIdentity)
  | ({ event: 'session.rejected'; error: string } & SessionIdentity)
  | { event: 'query'; session_id: string; database: string; db_user: string; db_name: string; kind: 'simple' | 'prepare' | 'parse' | 'bind' | 'execute'; query: string; statement?: string; portal?: string; parameters?: number };

export type QueryEvent = Extract<AuditEvent, { event: 'query' }>;

export interface AuditSink {
  readonly queries: boolean;
  write(event: AuditEvent): void;
  close(): Promise<void>;
}

/** Longest statement text kept in one audit line. */
const MAX_QUERY_TEXT = 16 * 1024;

/**
 * Statement text for an audit line: cut to MAX_QUERY_TEXT characters, then, when the broker read
 * only the head of a longer message, a note of the `unread` bytes (after the cut, so that it is
 * never cut away).
 */
export function truncateQuery(text: string, unread = 0): string {
  const shown = text.length > MAX_QUERY_TEXT ? `${text.slice(0, MAX_QUERY_TEXT)}…[${text.length - MAX_QUERY_TEXT} more characters]` : text;
  return unread > 0 ? `${shown}…[${unread} more bytes]` : shown;
}

/**
 * A query line's fixed fields, written out: built as `{ ...base, kind }` the same object costs
 * V8 microseconds, and the relay path makes one for every audited message.
 */
export function queryEvent(identity: SessionIdentity, kind: QueryEvent['kind'], query: string): QueryEvent {
  return { event: 'query', session_id: identity.session_id, database: identity.database, db_user: identity.db_user, db_name: identity.db_name, kind, query };
}

/**
 * JSON lines to a stream the caller owns (`broker.audit.path: "-"` → stdout, for containers whose
 * log pipeline collects stdout); closing the sink does not end it.
 */
export function createStreamAuditSink(stream: Writable, options: { queries: boolean }): AuditSink {
  return {
    queries: options.queries,
    write(event) {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    },
    close: async () => {},
  };
}

/** Appends JSON lines to `path` (created with 0600). */
export function createFileAuditSink(path: string, options: { queries: boolean }): AuditSink {
  mkdirSync(dirname(path), { recursive: true });
  const stream: WriteStream = createWriteStream(path, { flags: 'a', mode: 0o600 });
  stream.on('error', () => {});
  return { ...createStreamAuditSink(stream, options), close: () => new Promise<void>((resolve) => stream.end(() => resolve())) };
}

export function createMemoryAuditSink(options: { queries: boolean }): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { queries: options.queries, events, write: (e) => void events.push(e), close: async () => {} };
}

export const NO_AUDIT: AuditSink = { queries: false, write: () => {}, close: async () => {} };
