/**
 * What both protocols' pools take from a `pool:` mapping, and who a token logs in as. Apart from
 * the pools themselves so that `azdb serve`, a tunnel's opener and the MySQL pool read them
 * without loading the PostgreSQL pool (docs/performance.md, "Base memory").
 */
import { createHash } from 'node:crypto';
import { decodeTokenClaims } from '../../azure/token-claims.js';
import { POOL_DEFAULTS } from '../../config/pool-defaults.js';
import type { PoolConfig } from '../../config/schema.js';
import type { PoolLimits } from './pool-manager.js';

export type PoolMode = 'session' | 'transaction';

/** Server-side prepared statements kept per connection in transaction mode (PgBouncer's default too), when the limits leave it out. */
export const DEFAULT_MAX_PREPARED_STATEMENTS = POOL_DEFAULTS.max_prepared_statements;

export interface PostgresPoolLimits extends PoolLimits {
  /** @default 'session' */
  mode?: PoolMode;
  /** Transaction mode: protocol-level prepared statements per server connection; 0 pins a client that prepares one. @default 200 */
  maxPreparedStatements?: number;
}

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
  /** A client was pinned to its server connection (transaction mode), once per client. */
  onPin?(info: PoolKeyInfo, reason: string): void;
}

/** The identity a token logs in as, from its claims; an opaque token stands for itself (hashed). */
export function identityOf(token: string): string {
  const claims = decodeTokenClaims(token);
  const who = claims?.objectId ? `oid:${claims.objectId}` : claims?.appId ? `appid:${claims.appId}` : undefined;
  if (who) return `${who}@${claims?.tenantId ?? '?'}`;
  return `token:${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}

/** A `pool:` mapping of azdb.yaml (validated, durations in seconds) as the pool reads it. */
export function poolLimits(config: PoolConfig): PostgresPoolLimits {
  return {
    mode: config.mode,
    maxPreparedStatements: config.max_prepared_statements,
    maxServerConnections: config.max_server_connections,
    minIdle: config.min_idle,
    idleTimeoutMs: Math.round(config.idle_timeout * 1_000),
    serverLifetimeMs: Math.round(config.server_lifetime * 1_000),
    maxClientWaitMs: Math.round(config.max_client_wait * 1_000),
  };
}
