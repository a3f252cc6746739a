/**
 * Where a broker session goes: one Azure database server, how to verify its certificate, and
 * how Azure wants the login user spelled.
 */
export interface UpstreamTls {
  /** verify-full: CA chain and host name checked. insecure: encrypted but unverified (demo only). */
  mode: 'verify-full' | 'insecure';
  /** PEM of the CA(s) to trust; system CAs when absent. */
  ca?: string;
  /** Where the CA came from, for error messages. */
  caSource: string;
  /** Name the certificate must carry (SNI and verification). */
  serverName: string;
}

export interface UpstreamTarget {
  /** The database's name in azdb (config / discovery). */
  name: string;
  protocol: 'postgres' | 'mysql';
  host: string;
  port: number;
  tls: UpstreamTls;
  serverKind: 'flexible' | 'single';
  serverName?: string;
  /** Time allowed for TCP connect + TLS handshake. @default 10_000 */
  connectTimeoutMs?: number;
}

/** Azure single servers take `user@servername`; flexible servers the user itself. */
export function upstreamLoginUser(target: Pick<UpstreamTarget, 'serverKind' | 'serverName'>, dbUser: string): string {
  if (target.serverKind !== 'single' || !target.serverName || dbUser.endsWith(`@${target.serverName}`)) return dbUser;
  return `${dbUser}@${target.serverName}`;
}
