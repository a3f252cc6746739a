/**
 * A local tunnel to one database: a loopback listener whose clients prove a random per-tunnel
 * password, then ride a broker session (PostgreSQL or MySQL, by the target's protocol) to Azure
 * as the chosen database user. Used by `azdb proxy db` (until Ctrl+C) and `azdb db connect`
 * (while psql or mysql runs).
 */
import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { AuditSink } from './audit.js';
import { CancelRegistry } from './cancel-registry.js';
import { startListener, type Listener } from './listener.js';
import { runMySqlSession } from './mysql/session.js';
import { runPostgresSession, type AccessDecision, type SessionEvent } from './postgres/session.js';
import type { UpstreamTarget } from './target.js';

export interface TunnelOptions {
  target: UpstreamTarget;
  host: string;
  port: number;
  dbUser: string;
  dbName: string;
  authorize: (dbUser: string, dbName: string) => AccessDecision;
  getToken: () => Promise<string>;
  audit: AuditSink;
  cancels?: CancelRegistry;
  clientTls?: SecureContext;
  maxConnections?: number;
  onEvent?: (event: SessionEvent) => void;
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
  close(drainMs?: number): Promise<void>;
}

export async function openTunnel(options: TunnelOptions): Promise<Tunnel> {
  const password = randomBytes(24).toString('base64url');
  const cancels = options.cancels ?? new CancelRegistry();
  const listener: Listener = await startListener({
    host: options.host,
    port: options.port,
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
    handle: (socket) => {
      const common = {
        target: options.target,
        localPassword: password,
        defaults: { dbUser: options.dbUser, dbName: options.dbName },
        authorize: options.authorize,
        getToken: options.getToken,
        audit: options.audit,
        ...(options.clientTls ? { clientTls: options.clientTls } : {}),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      };
      return options.target.protocol === 'mysql' ? runMySqlSession(socket, common) : runPostgresSession(socket, { ...common, cancels });
    },
  });
  const hostInUri = listener.host.includes(':') ? `[${listener.host}]` : listener.host;
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
    close: (drainMs) => listener.close(drainMs),
  };
}
