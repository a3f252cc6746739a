/**
 * The non-secret claims of an Entra access token, for `azdb creds` and the doctor: who the token
 * is for and about. Only the payload is decoded (not verified: the database verifies it); the
 * token itself never leaves this function.
 */
import type { JWTPayload } from 'jose';
import { decodeJwt } from 'jose/jwt/decode';

export interface TokenClaims {
  tenantId: string | undefined;
  objectId: string | undefined;
  /** `appid` (v1 tokens) or `azp` (v2). */
  appId: string | undefined;
  audience: string | undefined;
  /** Epoch ms. */
  expiresOn: number | undefined;
  /** 'app' for service principals and managed identities, 'user' for people. */
  identityType: string | undefined;
  /** A person's sign-in name. */
  upn: string | undefined;
}

/**
 * The last token decoded and its claims: a broker decodes the same cached token for every client
 * it logs in (the pool key's identity, the audit line), which is base64 and JSON each time.
 */
let last: { token: string; claims: Readonly<TokenClaims> | undefined } | undefined;

export function decodeTokenClaims(token: string): Readonly<TokenClaims> | undefined {
  if (last?.token !== token) last = { token, claims: decodeFresh(token) };
  return last.claims;
}

function decodeFresh(token: string): Readonly<TokenClaims> | undefined {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    // Not a JWT (an opaque token, or a malformed one): there are no claims to show.
    return undefined;
  }
  const text = (key: string): string | undefined => (typeof claims[key] === 'string' ? (claims[key] as string) : undefined);
  const aud = Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string').join(', ') : text('aud');
  return Object.freeze({
    tenantId: text('tid'),
    objectId: text('oid'),
    appId: text('appid') ?? text('azp'),
    audience: aud,
    expiresOn: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined,
    identityType: text('idtyp'),
    upn: text('upn') ?? text('unique_name') ?? text('preferred_username'),
  });
}

/** `tenant …, object id …, app id …, audience …, expires …` — never the token. */
export function describeClaims(claims: TokenClaims): string {
  const parts = [
    `tenant ${claims.tenantId ?? '?'}`,
    `object id ${claims.objectId ?? '?'}`,
    `app id ${claims.appId ?? '?'}`,
    ...(claims.upn ? [`user ${claims.upn}`] : []),
    `audience ${claims.audience ?? '?'}`,
    `expires ${claims.expiresOn === undefined ? '?' : new Date(claims.expiresOn).toISOString()}`,
  ];
  return parts.join(', ');
}

/** Does the token's audience name the resource (with or without a trailing slash or /.default)? */
export function audienceMatches(audience: string | undefined, resource: string): boolean {
  if (!audience) return false;
  const norm = (value: string) => value.replace(/\/\.default$/, '').replace(/\/+$/, '').toLowerCase();
  return audience.split(', ').some((a) => norm(a) === norm(resource));
}
