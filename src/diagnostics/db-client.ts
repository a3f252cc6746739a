/**
 * A database session through a local tunnel, with the drivers azdb already carries (`pg`,
 * `mysql2`): the doctor's login check and `azdb queries` use it. Each login opens an in-process
 * tunnel exactly as `azdb db connect` does, so it exercises the broker end to end.
 */
import pg from 'pg';
import mysql from 'mysql2/promise';
import { openTunnel, type Tunnel, type TunnelOptions } from '../broker/tunnel.js';

export interface SqlRows {
  rows: Array<Record<string, unknown>>;
}

export interface DbSession {
  protocol: 'postgres' | 'mysql';
  user: string;
  database: string;
  /** `$1` placeholders for PostgreSQL, `?` for MySQL. */
  query(sql: string, params?: unknown[]): Promise<SqlRows>;
  close(): Promise<void>;
}

/** A driver error as the server sent it: code (SQLSTATE / MySQL errno), message, hint. */
export interface ServerError {
  code: string;
  errno: number | undefined;
  message: string;
  hint: string | undefined;
}

export function serverError(error: unknown): ServerError {
  const e = error as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown; hint?: unknown; sqlMessage?: unknown };
  const code = typeof e.sqlState === 'string' ? e.sqlState : typeof e.code === 'string' ? e.code : '';
  return {
    code,
    errno: typeof e.errno === 'number' ? e.errno : undefined,
    message: typeof e.sqlMessage === 'string' ? e.sqlMessage : typeof e.message === 'string' ? e.message : String(error),
    hint: typeof e.hint === 'string' ? e.hint : undefined,
  };
}

export type SessionOptions = Omit<TunnelOptions, 'host' | 'port'> & { connectTimeoutMs?: number; applicationName?: string };

export async function openSession(options: SessionOptions, signal?: AbortSignal): Promise<DbSession> {
  const tunnel = await openTunnel({ ...options, host: '127.0.0.1', port: 0, maxConnections: 4 });
  try {
    const session = options.target.protocol === 'mysql' ? await mysqlSession(tunnel, options, signal) : await postgresSession(tunnel, options, signal);
    return session;
  } catch (error) {
    await tunnel.close(0);
    throw error;
  }
}

async function postgresSession(tunnel: Tunnel, options: SessionOptions, signal?: AbortSignal): Promise<DbSession> {
  const client = new pg.Client({
    host: tunnel.host,
    port: tunnel.port,
    user: tunnel.user,
    database: tunnel.database,
    password: tunnel.password,
    application_name: options.applicationName ?? 'azdb',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 15_000,
  });
  client.on('error', () => {});
  const onAbort = () => void client.end().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return {
    protocol: 'postgres',
    user: tunnel.user,
    database: tunnel.database,
    query: async (sql, params) => ({ rows: (await client.query(sql, params)).rows as Array<Record<string, unknown>> }),
    close: async () => {
      await client.end().catch(() => {});
      await tunnel.close(0);
    },
  };
}

async function mysqlSession(tunnel: Tunnel, options: SessionOptions, signal?: AbortSignal): Promise<DbSession> {
  const connecting = mysql.createConnection({
    host: tunnel.host,
    port: tunnel.port,
    user: tunnel.user,
    password: tunnel.password,
    ...(tunnel.database ? { database: tunnel.database } : {}),
    connectTimeout: options.connectTimeoutMs ?? 15_000,
  });
  const aborted = new Promise<never>((_, reject) => {
    if (!signal) return;
    signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
  });
  aborted.catch(() => {});
  let connection: mysql.Connection;
  try {
    connection = await Promise.race([connecting, aborted]);
  } catch (error) {
    connecting.then((c) => c.destroy(), () => {});
    throw error;
  }
  connection.on('error', () => {});
  return {
    protocol: 'mysql',
    user: tunnel.user,
    database: tunnel.database,
    query: async (sql, params) => {
      const [rows] = await connection.query(sql, params);
      return { rows: Array.isArray(rows) ? (rows as Array<Record<string, unknown>>) : [] };
    },
    close: async () => {
      await connection.end().catch(() => connection.destroy());
      await tunnel.close(0);
    },
  };
}
