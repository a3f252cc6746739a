/**
 * The SQL that makes an Entra identity a database principal (the seed's step 3), filled in from
 * the token's claims, for the doctor's hints.
 */
import type { TokenClaims } from '../azure/token-claims.js';

/**
 * `singleServer`: the server name of a single server, whose login names carry `@server`; only that
 * suffix is dropped (a database user may itself look like `alice@contoso.com`).
 */
export function createPrincipalSql(protocol: 'postgres' | 'mysql', dbUser: string, claims: TokenClaims | undefined, singleServer?: string): string {
  const user = singleServer !== undefined && dbUser.endsWith(`@${singleServer}`) ? dbUser.slice(0, -(singleServer.length + 1)) : dbUser;
  const isPerson = claims?.identityType === 'user';
  if (protocol === 'postgres') {
    if (isPerson) return `select * from pgaadauth_create_principal('${quote(claims?.upn ?? user)}', false, false);`;
    return `select * from pgaadauth_create_principal_with_oid('${quote(user)}', '${claims?.objectId ?? '<object id>'}', 'service', false, false);`;
  }
  if (isPerson) return `CREATE AADUSER '${quote(claims?.upn ?? user)}';`;
  return `CREATE AADUSER '${quote(user)}' IDENTIFIED BY '${claims?.appId ?? '<client id>'}';`;
}

function quote(text: string): string {
  return text.replace(/'/g, "''");
}
