/**
 * The SQL that makes an Entra identity a database principal (the seed's step 3), filled in from
 * the token's claims, for the doctor's hints and setup's step 3.
 */
import type { TokenClaims } from '../azure/token-claims.js';

/**
 * The principal's name in the database: a person's sign-in name, else `dbUser`.
 * `singleServer`: the server name of a single server, whose login names carry `@server`; only that
 * suffix is dropped (a database user may itself look like `alice@contoso.com`).
 */
export function principalName(dbUser: string, claims: TokenClaims | undefined, singleServer?: string): string {
  const user = singleServer !== undefined && dbUser.endsWith(`@${singleServer}`) ? dbUser.slice(0, -(singleServer.length + 1)) : dbUser;
  return claims?.identityType === 'user' ? (claims.upn ?? user) : user;
}

/**
 * `unlessExists` (PostgreSQL): the call only runs when no role of that name exists, so the SQL
 * can run again (a second server on one cluster, a retry); it then returns no row.
 */
export function createPrincipalSql(
  protocol: 'postgres' | 'mysql',
  dbUser: string,
  claims: TokenClaims | undefined,
  singleServer?: string,
  options: { unlessExists?: boolean } = {},
): string {
  const name = quote(principalName(dbUser, claims, singleServer));
  const isPerson = claims?.identityType === 'user';
  if (protocol === 'postgres') {
    const call = isPerson
      ? `pgaadauth_create_principal('${name}', false, false)`
      : `pgaadauth_create_principal_with_oid('${name}', '${claims?.objectId ?? '<object id>'}', 'service', false, false)`;
    if (options.unlessExists) return `SELECT ${call} AS created WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${name}');`;
    return `select * from ${call};`;
  }
  if (isPerson) return `CREATE AADUSER '${name}';`;
  return `CREATE AADUSER '${name}' IDENTIFIED BY '${claims?.appId ?? '<client id>'}';`;
}

function quote(text: string): string {
  return text.replace(/'/g, "''");
}
