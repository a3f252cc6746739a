/**
 * What every broker session reports about itself, whatever the protocol: the audit lines
 * (session.start / session.rejected / session.end) and the events for the UI and `azdb serve`.
 */
import type { Socket } from 'node:net';
import { userInfo } from 'node:os';
import type { SecureContext } from 'node:tls';
import { decodeTokenClaims } from '../azure/token-claims.js';
import { redactSecrets } from '../errors.js';
import { randomUuid } from './random-pool.js';
import type { AuditSink, SessionIdentity, SessionPerson } from './audit.js';
import type { LoginBackoff } from './login-backoff.js';
import type { UpstreamTarget } from './target.js';
import type { ClientPerson, ClientTokenRefusal, EntraClientAuth } from './client-entra.js';

/** What a login may do: the roles' verdict on a database user and name (for a person: the role and groups that allowed it). */
export type AccessDecision = { allowed: true; role?: string; groups?: string[] } | { allowed: false; reason: string };

/** What a session tells the UI and `azdb serve` as it goes. */
export type SessionEvent =
  /** `person`: who signed in with their own token (`client_auth: entra`). */
  | { type: 'relaying'; id: string; dbUser: string; dbName: string; client: string; person?: Pick<SessionPerson, 'oid' | 'upn' | 'appid' | 'tid'> }
  | { type: 'closed'; id: string; result: 'ok' | 'error'; error?: string }
  | { type: 'cancel'; forwarded: boolean }
  /** A wrong password from `source` (an address, or an IPv6 /64); its answer waits `delayMs`. */
  | { type: 'login-failed'; source: string; failures: number; delayMs: number; announce: boolean }
  /** A login refused unchecked: `source` is waiting out its backoff. */
  | { type: 'login-throttled'; source: string; retryInMs: number; announce: boolean }
  /** A `client_auth: entra` sign-in refused, and why (never the token). */
  | { type: 'client-auth-refused'; reason: ClientTokenRefusal }
  /** A session ended because the person's token expired (`disconnect_expired`). */
  | { type: 'expired-disconnect' };

/** What every broker session is given, whatever the protocol. */
export interface SessionOptions {
  target: UpstreamTarget;
  /** The tunnel's random password, which clients prove (never the Entra token). */
  localPassword: string;
  defaults: { dbUser?: string; dbName?: string };
  /** `person`: who signed in, on a `client_auth: entra` listener. */
  authorize: (dbUser: string, dbName: string, person?: ClientPerson) => AccessDecision;
  /** `client_auth: entra`: clients log in with their own Entra token instead of `localPassword`. */
  entra?: EntraClientAuth;
  /** The Entra token; `signal` ends the wait (the client's login deadline, the tunnel closing). */
  getToken: (signal?: AbortSignal) => Promise<string>;
  audit: AuditSink;
  /** When set, the client may upgrade to TLS. */
  clientTls?: SecureContext;
  /** With clientTls: a client that did not start TLS is refused (`azdb serve` listeners with a certificate). */
  requireClientTls?: boolean;
  /** Time from connect to a finished client login. */
  handshakeTimeoutMs?: number;
  /** Aborted when the tunnel closes: a login still waiting (token, upstream) ends at once. */
  closing?: AbortSignal;
  onEvent?: (event: SessionEvent) => void;
  /** Per-source backoff after wrong passwords, shared by a listener's (or a broker's) sessions. */
  logins?: LoginBackoff;
}

/** A person who signed in with their own token, as the audit records them. */
export interface SignedInRecord {
  person: ClientPerson;
  decision: AccessDecision;
  /** The OS user at the client's end, where the system says (a loopback client on Linux). */
  osUser?: string;
}

export interface SessionRecord {
  /**
   * `token`: the one the upstream took; its identity (never the token) goes in the audit line,
   * unless a person signed in (`signedIn`): then the person is who the line names, with the role
   * (and groups) that let them in.
   */
  started(identity: SessionIdentity, dbUser: string, dbName: string, token: string, signedIn?: SignedInRecord): void;
  /** A login refused (or failed) before relaying; `identity` once the client said who it is. */
  rejected(identity: SessionIdentity | undefined, message: string): void;
  ended(identity: SessionIdentity | undefined, result: 'ok' | 'error', error?: string): void;
}

export function sessionRecord(
  id: string,
  clientSocket: Socket,
  audit: AuditSink,
  onEvent: ((event: SessionEvent) => void) | undefined,
  startedAt = Date.now(),
): SessionRecord {
  return new SessionRecorder(id, clientSocket, audit, onEvent, startedAt);
}

/** A class, not an object of closures: an idle client keeps its record for the whole session. */
class SessionRecorder implements SessionRecord {
  constructor(
    private readonly id: string,
    private readonly clientSocket: Socket,
    private readonly audit: AuditSink,
    private readonly onEvent: ((event: SessionEvent) => void) | undefined,
    private readonly startedAt: number,
  ) {}

  started(identity: SessionIdentity, dbUser: string, dbName: string, token: string, signedIn?: SignedInRecord): void {
    const person = signedIn ? signedInPerson(signedIn) : personOf(token);
    this.audit.write({ event: 'session.start', ...identity, ...person });
    const { oid, upn, appid, tid } = person;
    const who = signedIn ? { person: { oid, ...(upn ? { upn } : {}), ...(appid ? { appid } : {}), tid } } : {};
    this.onEvent?.({ type: 'relaying', id: this.id, dbUser, dbName, client: identity.client_address, ...who });
  }

  rejected(identity: SessionIdentity | undefined, raw: string): void {
    // The audit file's sink writes as given: redact here, for both protocols.
    const message = redactSecrets(raw);
    if (identity) this.audit.write({ event: 'session.rejected', ...identity, error: message });
    this.onEvent?.({ type: 'closed', id: this.id, result: 'error', error: message });
  }

  ended(identity: SessionIdentity | undefined, result: 'ok' | 'error', rawError?: string): void {
    if (!identity) return;
    const error = rawError === undefined ? undefined : redactSecrets(rawError);
    this.audit.write({
      event: 'session.end',
      ...identity,
      result,
      ...(error ? { error } : {}),
      bytes_from_client: this.clientSocket.bytesRead,
      bytes_to_client: this.clientSocket.bytesWritten,
      duration_ms: Date.now() - this.startedAt,
    });
    this.onEvent?.({ type: 'closed', id: this.id, result, ...(error ? { error } : {}) });
  }
}

/** A new session's id: a random UUID, as one flat string (random-pool.ts). */
export function newSessionId(): string {
  return randomUuid();
}

/** `address:port` of the client, flat (a template string is kept as pieces, ~100 bytes for as long as the session keeps it). */
export function clientAddress(socket: Socket): string {
  return flat(`${socket.remoteAddress}:${socket.remotePort}`);
}

/** One string of its characters (ASCII), not the pieces it was built from. */
function flat(ascii: string): string {
  return Buffer.from(ascii, 'latin1').toString('latin1');
}

const OS_USER = (() => {
  try {
    return userInfo().username;
  } catch {
    return undefined; // no entry for this uid (a container's arbitrary user)
  }
})();

/** The last token's person: every session of a tunnel logs in with the same cached token. */
let lastPerson: { token: string; person: Readonly<SessionPerson> } | undefined;

/** Who is at the database: the token's identity (oid, upn or appid, tid) and the OS user running azdb. */
function personOf(token: string): Readonly<SessionPerson> {
  if (lastPerson?.token !== token) lastPerson = { token, person: Object.freeze(personFrom(token)) };
  return lastPerson.person;
}

function personFrom(token: string): SessionPerson {
  const claims = decodeTokenClaims(token);
  return {
    ...(claims?.objectId ? { oid: claims.objectId } : {}),
    ...(claims?.upn ? { upn: claims.upn } : claims?.appId ? { appid: claims.appId } : {}),
    ...(claims?.tenantId ? { tid: claims.tenantId } : {}),
    ...(OS_USER ? { os_user: OS_USER } : {}),
  };
}

/** A person who signed in with their own token: who, through which role and groups, from which OS user where known. */
function signedInPerson({ person, decision, osUser }: SignedInRecord): SessionPerson {
  return {
    oid: person.oid,
    ...(person.upn ? { upn: person.upn } : person.appid ? { appid: person.appid } : {}),
    tid: person.tid,
    client_auth: 'entra',
    ...(decision.allowed && decision.role ? { role: decision.role } : {}),
    ...(decision.allowed && decision.groups ? { groups: decision.groups } : {}),
    ...(osUser ? { os_user: osUser } : {}),
    ...(OS_USER ? { broker_os_user: OS_USER } : {}),
  };
}
