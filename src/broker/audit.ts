/**
 * Audit log: one JSON object a line. Session start and end, and (when enabled) each query a
 * client sends. It never holds a token or a password: events are built from fixed fields, and
 * query text is the statement only (Bind's parameter values are never read).
 */
import type { Writable } from 'node:stream';
import { fileOutput, streamOutput, type AuditOutput } from './audit-output.js';
import type { AuditFailurePolicy } from '../config/schema.js';
import { AuditQueue, type AuditHealth, type AuditObserver } from './audit-queue.js';

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
  /** The OS user running azdb (a local login: the person at the keyboard). */
  os_user?: string;
  /** `entra`: the person signed in to a shared broker with their own token (the fields above are theirs). */
  client_auth?: 'entra';
  /** The role that allowed the login, and the person's groups it matched. */
  role?: string;
  groups?: string[];
  /** A shared broker: the OS user running it (the person's own is on their machine). */
  broker_os_user?: string;
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
  /** Queues the line; false when the session should wait for {@link AuditSink.wait} before going on. */
  write(event: AuditEvent): boolean;
  /**
   * Under `broker.audit.on_failure: block` while the queue is full: resolves once it has room.
   * Undefined when a session may go on now.
   */
  wait(): Promise<void> | undefined;
  /** The queue and its output, for /readyz; undefined when nothing is audited. */
  health(): AuditHealth | undefined;
  close(): Promise<void>;
}

export interface AuditSinkOptions {
  queries: boolean;
  on_failure: AuditFailurePolicy;
  observer?: AuditObserver;
  /** @default DEFAULT_AUDIT_QUEUE_BYTES */
  limitBytes?: number;
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

/** JSON lines through a bounded {@link AuditQueue} to `output`. */
export function createQueuedAuditSink(output: AuditOutput, options: AuditSinkOptions): AuditSink {
  const queue = new AuditQueue(output, {
    policy: options.on_failure,
    ...(options.observer ? { observer: options.observer } : {}),
    ...(options.limitBytes !== undefined ? { limitBytes: options.limitBytes } : {}),
  });
  return {
    queries: options.queries,
    write: (event) => queue.push(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`),
    wait: () => queue.wait(),
    health: () => queue.health(),
    close: () => queue.close(),
  };
}

/**
 * JSON lines to a stream the caller owns (`broker.audit.path: "-"` → stdout, for containers whose
 * log pipeline collects stdout); closing the sink does not end it.
 */
export function createStreamAuditSink(stream: Writable, options: AuditSinkOptions, name?: string): AuditSink {
  return createQueuedAuditSink(streamOutput(stream, name), options);
}

/** Appends JSON lines to `path` (created with 0600); throws a UserError when it cannot be opened. */
export function createFileAuditSink(path: string, options: AuditSinkOptions): AuditSink {
  return createQueuedAuditSink(fileOutput(path), options);
}

export function createMemoryAuditSink(options: { queries: boolean }): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { queries: options.queries, events, write: (e) => events.push(e) > 0, wait: () => undefined, health: () => undefined, close: async () => {} };
}

export const NO_AUDIT: AuditSink = { queries: false, write: () => true, wait: () => undefined, health: () => undefined, close: async () => {} };
