/**
 * The session-mode pool of one listener or tunnel: the PoolManager's decisions with the I/O
 * they need. A key is the database, the login user, the database name, the startup `options`
 * and the identity whose token logs the connection in (object id or app id, and tenant, from the
 * token's claims), so a connection is never handed to a client of another key. Every login takes
 * a token from the cache. On release the server state is reset (ROLLBACK when a transaction was
 * left open, then DISCARD ALL); a connection that cannot be reset safely is closed instead.
 */
import { createHash } from 'node:crypto';
import { decodeTokenClaims } from '../../../azure/token-claims.js';
import type { PoolConfig } from '../../../config/schema.js';
import type { UpstreamTarget } from '../../target.js';
import { encodeMessage } from '../codec/frames.js';
import { loginUpstream } from '../upstream.js';
import { PoolManager, systemClock, type Clock, type KeyStats, type Lease, type PoolLimits } from './pool-manager.js';
import { runOwnQuery, serverConnection, watchIdle, type ServerConnection } from './server-connection.js';
import type { SessionTracker } from './session-tracker.js';

export interface PoolKeyInfo {
  database: string;
  dbUser: string;
  dbName: string;
  /** Who logs the connections in: `oid:…` or `appid:…`, with `@tenant`. */
  identity: string;
}

export interface PoolEvents {
  /** A new server connection logged in. */
  onLogin?(info: PoolKeyInfo): void;
  onWait?(info: PoolKeyInfo, waitedMs: number): void;
}

export interface PoolLogin {
  loginUser: string;
  dbName: string;
  /** The client's startup `options` (`-c name=value`), which are part of the key. */
  options?: string;
}

const SWEEP_INTERVAL_MS = 1_000;
const TERMINATE = encodeMessage(0x58 /* X */);

export class PostgresPool {
  private readonly manager: PoolManager<ServerConnection, PoolKeyInfo>;
  private readonly unwatch = new WeakMap<ServerConnection, () => void>();
  private readonly sweeper: NodeJS.Timeout;
  /** What each key stands for, for the wait events (a few per identity and user). */
  private readonly infos = new Map<string, PoolKeyInfo>();

  constructor(
    readonly target: UpstreamTarget,
    readonly limits: PoolLimits,
    private readonly events: PoolEvents = {},
    clock: Clock = systemClock,
  ) {
    this.manager = new PoolManager<ServerConnection, PoolKeyInfo>(
      limits,
      {
        close: (connection) => this.closeConnection(connection),
        onWait: (key, waitedMs) => {
          const info = this.infos.get(key);
          if (info) this.events.onWait?.(info, waitedMs);
        },
      },
      clock,
    );
    this.sweeper = setInterval(() => this.manager.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /**
   * A server connection for this client: `token` (from the cache) names the identity of the key
   * and logs in a new connection when one is needed. Throws PoolWaitTimeout when every connection
   * of the key stayed busy for max_client_wait, or the login's error.
   */
  async acquire(login: PoolLogin, token: string, signal?: AbortSignal): Promise<Lease<ServerConnection>> {
    const info: PoolKeyInfo = { database: this.target.name, dbUser: login.loginUser, dbName: login.dbName, identity: identityOf(token) };
    const key = JSON.stringify([info.database, info.dbUser, info.dbName, login.options ?? '', info.identity]);
    this.infos.set(key, info);
    const lease = await this.manager.acquire(key, info, async () => {
      const session = await loginUpstream(this.target, { user: login.loginUser, database: login.dbName, params: login.options ? { options: login.options } : {} }, token, signal);
      this.events.onLogin?.(info);
      return serverConnection(session, (connection) => this.manager.drop(connection));
    }, signal);
    this.unwatch.get(lease.connection)?.();
    this.unwatch.delete(lease.connection);
    return lease;
  }

  /**
   * Gives the connection back after the client's session: reset and kept when the server waits
   * for a query (a transaction left open is rolled back first), closed otherwise (a query or COPY
   * still running, a broken connection, a reset that failed).
   */
  async release(lease: Lease<ServerConnection>, tracker: SessionTracker | undefined, serverBroken: boolean): Promise<void> {
    const connection = lease.connection;
    const status = serverBroken || connection.broken || !tracker ? undefined : tracker.idleStatus();
    let reusable = false;
    if (status !== undefined) {
      try {
        const rolledBack = status === 'I' || (await runOwnQuery(connection, 'ROLLBACK')).error === undefined;
        const reset = rolledBack ? await runOwnQuery(connection, 'DISCARD ALL') : undefined;
        reusable = reset !== undefined && reset.error === undefined && reset.status === 'I' && !connection.broken;
      } catch {
        reusable = false;
      }
    }
    if (reusable) this.unwatch.set(connection, watchIdle(connection, () => this.manager.drop(connection)));
    lease.release(reusable);
  }

  stats(): KeyStats<PoolKeyInfo>[] {
    return this.manager.stats();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.manager.close();
  }

  private closeConnection(connection: ServerConnection): void {
    this.unwatch.get(connection)?.();
    this.unwatch.delete(connection);
    connection.broken = true;
    if (connection.socket.destroyed) return;
    connection.socket.end(TERMINATE);
    connection.socket.once('finish', () => connection.socket.destroy());
  }
}

/** The identity a token logs in as, from its claims; an opaque token stands for itself (hashed). */
export function identityOf(token: string): string {
  const claims = decodeTokenClaims(token);
  const who = claims?.objectId ? `oid:${claims.objectId}` : claims?.appId ? `appid:${claims.appId}` : undefined;
  if (who) return `${who}@${claims?.tenantId ?? '?'}`;
  return `token:${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}

/** A `pool:` mapping of azdb.yaml (validated, durations in seconds) as the pool reads it. */
export function poolLimits(config: PoolConfig): PoolLimits {
  return {
    maxServerConnections: config.max_server_connections,
    minIdle: config.min_idle,
    idleTimeoutMs: Math.round(config.idle_timeout * 1_000),
    serverLifetimeMs: Math.round(config.server_lifetime * 1_000),
    maxClientWaitMs: Math.round(config.max_client_wait * 1_000),
  };
}
