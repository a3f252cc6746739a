/**
 * A local tunnel to one database: a loopback listener whose clients prove a random per-tunnel
 * password, then ride a broker session (PostgreSQL or MySQL, by the target's protocol) to Azure
 * as the chosen database user. Used by `azdb proxy db` (until Ctrl+C) and `azdb db connect`
 * (while psql or mysql runs).
 */
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { AuditSink } from './audit.js';
import { CancelRegistry } from './cancel-registry.js';
import type { ConnectionGate } from './connection-gate.js';
import { formatHost } from '../config/address.js';
import { startListener, type Listener } from './listener.js';
import { tunnelClosing, tunnelClosingController } from './login-wait.js';
import { LoginBackoff } from './login-backoff.js';
import { newLocalPassword } from './password-file.js';
import type { SessionEvent, SessionOptions } from './session-record.js';
import type { EntraClientAuth } from './client-entra.js';
import type { RefusalOutcome } from './refuse.js';
import type { UpstreamTarget } from './target.js';
import type { PoolEvents, PostgresPoolLimits } from './pool/pool-limits.js';
import type { PostgresPool } from './postgres/pool/postgres-pool.js';
import type { MySqlPool } from './mysql/pool/mysql-pool.js';

export interface TunnelOptions {
  target: UpstreamTarget;
  host: string;
  port: number;
  dbUser: string;
  dbName: string;
  authorize: SessionOptions['authorize'];
  /** `client_auth: entra`: clients sign in with their own Entra token instead of the password. */
  entra?: EntraClientAuth;
  getToken: (signal?: AbortSignal) => Promise<string>;
  audit: AuditSink;
  cancels?: CancelRegistry;
  clientTls?: SecureContext;
  /** With clientTls: refuse clients that do not start TLS. */
  requireClientTls?: boolean;
  maxConnections?: number;
  /** Time from connect to a finished client login (the session's default when absent). */
  handshakeTimeoutMs?: number;
  onEvent?: (event: SessionEvent) => void;
  /** A fixed password (`azdb serve` listeners) instead of a random one for this tunnel. */
  password?: string;
  /**
   * A session cap shared with other tunnels; a client over it gets the protocol's own
   * "too many connections" error (PostgreSQL 53300, MySQL 1040).
   */
  gate?: ConnectionGate;
  onRefused?: (outcome: RefusalOutcome) => void;
  /** Errors accepting a connection (EMFILE); the listener keeps going. */
  onAcceptError?: (error: Error) => void;
  /** Backoff after wrong passwords, per client source; @default one of this tunnel's own. */
  logins?: LoginBackoff;
  /** Server connections shared by this tunnel's clients, in the limits' mode (session by default). */
  pool?: PostgresPoolLimits;
  poolEvents?: PoolEvents;
}

export interface Tunnel {
  name: string;
  protocol: 'postgres' | 'mysql';
  host: string;
  port: number;
  user: string;
  database: string;
  /** The per-tunnel secret; handed to clients azdb starts through their environment only. */
  password: string;
  /** Connection URI without the password. */
  uri: string;
  readonly connections: number;
  /** The tunnel's pool, when it has one. */
  readonly pool?: PostgresPool | MySqlPool;
  close(drainMs?: number): Promise<void>;
}

export async function openTunnel(options: TunnelOptions): Promise<Tunnel> {
  const password = options.password ?? newLocalPassword();
  const cancels = options.cancels ?? new CancelRegistry();
  // Sessions still logging in (waiting for a token) end when the tunnel closes; relaying ones drain.
  const closing = tunnelClosingController();
  const logins = options.logins ?? new LoginBackoff();
  // The same for every client: made once, not per connection (an idle pooled client holds it).
  const common: SessionOptions = {
    target: options.target,
    localPassword: password,
    defaults: { dbUser: options.dbUser, dbName: options.dbName },
    authorize: options.authorize,
    ...(options.entra ? { entra: options.entra } : {}),
    getToken: options.getToken,
    audit: options.audit,
    closing: closing.signal,
    ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
    logins,
    ...(options.clientTls ? { clientTls: options.clientTls, requireClientTls: options.requireClientTls ?? false } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  };
  const { pool, runSession } = await protocolSide(options, common, cancels);
  const refuse = async (socket: Socket, gate: ConnectionGate): Promise<void> => {
    const refusal = { limit: gate.limit, ...(options.clientTls ? { clientTls: options.clientTls } : {}), cancels };
    // Loaded at the first refusal: it speaks both protocols, which a tunnel of one need not load.
    const { refuseMySql, refusePostgres } = await import('./refuse.js');
    const outcome = await (options.target.protocol === 'mysql' ? refuseMySql(socket, refusal) : refusePostgres(socket, refusal));
    options.onRefused?.(outcome);
  };
  const listener: Listener = await startListener({
    host: options.host,
    port: options.port,
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
    ...(options.onAcceptError ? { onError: options.onAcceptError } : {}),
    // Not an async function: an idle client's session would keep one more suspended frame.
    handle: (socket) => {
      const gate = options.gate;
      if (!gate) return runSession(socket);
      if (!gate.tryAcquire()) return refuse(socket, gate);
      return runSession(socket).finally(() => gate.release());
    },
  });
  const hostInUri = formatHost(listener.host);
  return {
    name: options.target.name,
    protocol: options.target.protocol,
    host: listener.host,
    port: listener.port,
    user: options.dbUser,
    database: options.dbName,
    password,
    uri: `${options.target.protocol}://${encodeURIComponent(options.dbUser)}@${hostInUri}:${listener.port}${options.dbName ? `/${encodeURIComponent(options.dbName)}` : ''}`,
    get connections() {
      return listener.connections;
    },
    ...(pool ? { pool } : {}),
    close: async (drainMs) => {
      closing.abort(tunnelClosing());
      try {
        await listener.close(drainMs);
      } finally {
        pool?.close();
      }
    },
  };
}

/**
 * The session and pool modules of the tunnel's protocol, loaded when a tunnel of that protocol
 * opens: a process with PostgreSQL tunnels only never loads MySQL's, and the other way round
 * (docs/performance.md, "Base memory").
 */
async function protocolSide(
  options: TunnelOptions,
  common: SessionOptions,
  cancels: CancelRegistry,
): Promise<{ pool: PostgresPool | MySqlPool | undefined; runSession(socket: Socket): Promise<void> }> {
  if (options.target.protocol === 'mysql') {
    const [{ runMySqlSession }, pooled] = await Promise.all([import('./mysql/session.js'), options.pool ? import('./mysql/pool/mysql-pool.js') : undefined]);
    const pool = pooled && options.pool ? new pooled.MySqlPool(options.target, options.pool, options.poolEvents) : undefined;
    const sessionOptions = pool ? { ...common, pool } : common;
    return { pool, runSession: (socket) => runMySqlSession(socket, sessionOptions) };
  }
  const [{ runPostgresSession }, pooled] = await Promise.all([import('./postgres/session.js'), options.pool ? import('./postgres/pool/postgres-pool.js') : undefined]);
  const pool = pooled && options.pool ? new pooled.PostgresPool(options.target, options.pool, options.poolEvents) : undefined;
  const sessionOptions = { ...common, cancels, ...(pool ? { pool } : {}) };
  return { pool, runSession: (socket) => runPostgresSession(socket, sessionOptions) };
}
