/**
 * Checks an Entra access token a person (or an app) hands a shared broker as its password, the
 * way Azure Database for PostgreSQL/MySQL checks it: RS256 signed by a key of the issuing tenant,
 * issued by that tenant (one of `allowed_tenants`), for the cloud's database resource, and within
 * its lifetime (with a small clock skew).
 *
 * Keys come from the tenant's OpenID configuration on the authority host (`jwks_uri`): v1.0
 * tokens (what Entra issues for oss-rdbms, `iss` = `https://sts.windows.net/{tid}/`) from
 * `{authority}/{tid}/.well-known/openid-configuration`, v2.0 ones from
 * `{authority}/{tid}/v2.0/.well-known/openid-configuration`. Documents and key sets are cached;
 * a token whose `kid` is not in the cached set refetches it (Entra's key rollover), at most once
 * per `refreshCooldownMs` per key set, so tokens with made-up kids cannot make the broker hammer
 * Entra. The tenant is checked before anything is fetched: a stranger's token costs no request.
 *
 * The token never appears in a result, an error or a log: refusals are a {@link ClientTokenRefusal}.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';

/** Why a client token was refused; also the `reason` label of azdb_client_auth_refusals_total. */
export const CLIENT_TOKEN_REFUSALS = ['malformed', 'tenant', 'issuer', 'audience', 'expired', 'not-yet-valid', 'signature', 'keys-unavailable'] as const;
export type ClientTokenRefusal = (typeof CLIENT_TOKEN_REFUSALS)[number];

/** Who a valid token is about (never the token). */
export interface ClientPerson {
  oid: string;
  tid: string;
  /** A person's sign-in name. */
  upn?: string;
  /** An application's (or managed identity's) client id, for app tokens. */
  appid?: string;
  /** Object ids of the person's security groups (the `groups` claim; empty when absent). */
  groups: string[];
  /** When the token expires (epoch ms). */
  expiresAt: number;
}

export type ClientTokenVerdict = { ok: true; person: ClientPerson } | { ok: false; reason: ClientTokenRefusal };

export type ClientTokenValidator = (token: string) => Promise<ClientTokenVerdict>;

export interface ClientTokenValidatorOptions {
  /** `https://login.microsoftonline.com`, the cloud's, or `AZURE_AUTHORITY_HOST`. */
  authorityHost: string;
  /** The cloud's database resource: the only audience accepted. */
  audience: string;
  allowedTenants: readonly string[];
  /** GETs a JSON document; rejects on any failure. @default global fetch with a 10-s deadline */
  fetchJson?: (url: string) => Promise<unknown>;
  /** @default Date.now */
  now?: () => number;
  /** @default 60 */
  clockSkewSeconds?: number;
  /** The least time between two fetches of one key set for unknown kids. @default 30_000 */
  refreshCooldownMs?: number;
  /** How long a fetched document or key set is used before it is fetched again. @default 24 h */
  maxAgeMs?: number;
}

const ALGORITHM = 'RS256';
const DEFAULT_SKEW_SECONDS = 60;
const DEFAULT_COOLDOWN_MS = 30_000;
const DEFAULT_MAX_AGE_MS = 24 * 3_600_000;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_DOCUMENT_BYTES = 1024 * 1024;

interface Cached<T> {
  value: T;
  at: number;
}

interface Configuration {
  issuer: string;
  jwksUri: string;
}

class KeysUnavailable extends Error {}

export function createClientTokenValidator(options: ClientTokenValidatorOptions): ClientTokenValidator {
  const now = options.now ?? Date.now;
  const fetchJson = options.fetchJson ?? fetchJsonDocument;
  const skew = options.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS;
  const cooldown = options.refreshCooldownMs ?? DEFAULT_COOLDOWN_MS;
  const maxAge = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  const authority = options.authorityHost.replace(/\/+$/, '');
  const tenants = new Set(options.allowedTenants.map((t) => t.toLowerCase()));
  const configurations = new Map<string, Cached<Configuration>>();
  const keySets = new Map<string, Cached<JSONWebKeySet>>();
  /** One request at a time per URL: a burst of logins waits for the same answer. */
  const inFlight = new Map<string, Promise<unknown>>();

  const fetchOnce = (url: string): Promise<unknown> => {
    const running = inFlight.get(url);
    if (running) return running;
    const started = fetchJson(url).finally(() => inFlight.delete(url));
    inFlight.set(url, started);
    return started;
  };

  async function configuration(tid: string, version: '1.0' | '2.0'): Promise<Configuration> {
    const url = version === '2.0' ? `${authority}/${tid}/v2.0/.well-known/openid-configuration` : `${authority}/${tid}/.well-known/openid-configuration`;
    const cached = configurations.get(url);
    if (cached && now() - cached.at < maxAge) return cached.value;
    const document = (await fetchOnce(url).catch(() => undefined)) as { issuer?: unknown; jwks_uri?: unknown } | undefined;
    if (typeof document?.issuer !== 'string' || typeof document.jwks_uri !== 'string' || !document.jwks_uri.startsWith('https://')) {
      throw new KeysUnavailable();
    }
    const value = { issuer: document.issuer, jwksUri: document.jwks_uri };
    configurations.set(url, { value, at: now() });
    return value;
  }

  async function keySet(jwksUri: string, kid: string): Promise<JSONWebKeySet> {
    const cached = keySets.get(jwksUri);
    const fresh = cached && now() - cached.at < maxAge;
    if (cached && fresh && hasKid(cached.value, kid)) return cached.value;
    // An unknown kid: fetch again, unless that was done a moment ago (then the kid is just unknown).
    if (cached && fresh && now() - cached.at < cooldown) return cached.value;
    const document = (await fetchOnce(jwksUri).catch(() => undefined)) as JSONWebKeySet | undefined;
    if (!document || !Array.isArray(document.keys)) {
      if (cached) return cached.value;
      throw new KeysUnavailable();
    }
    keySets.set(jwksUri, { value: document, at: now() });
    return document;
  }

  return async (token) => {
    let payload: JWTPayload;
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== ALGORITHM) return refuse('signature');
      kid = header.kid;
      payload = decodeJwt(token);
    } catch {
      return refuse('malformed');
    }
    const tid = typeof payload.tid === 'string' ? payload.tid.toLowerCase() : undefined;
    if (!tid || !kid) return refuse('malformed');
    if (!tenants.has(tid)) return refuse('tenant');
    const version = payload.ver === '2.0' ? '2.0' : '1.0';
    let verified: JWTPayload;
    try {
      const config = await configuration(tid, version);
      const keys = await keySet(config.jwksUri, kid);
      if (!hasKid(keys, kid)) return refuse('signature');
      ({ payload: verified } = await jwtVerify(token, createLocalJWKSet(keys), {
        algorithms: [ALGORITHM],
        issuer: config.issuer,
        audience: [options.audience, `${options.audience}/`],
        clockTolerance: skew,
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'oid', 'tid'],
      }));
    } catch (error) {
      return refuse(reasonOf(error));
    }
    return { ok: true, person: personOf(verified) };
  };
}

function refuse(reason: ClientTokenRefusal): ClientTokenVerdict {
  return { ok: false, reason };
}

function hasKid(keys: JSONWebKeySet, kid: string): boolean {
  return keys.keys.some((key) => key.kid === kid);
}

function reasonOf(error: unknown): ClientTokenRefusal {
  if (error instanceof KeysUnavailable) return 'keys-unavailable';
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' || error.claim === 'iat') return 'not-yet-valid';
    if (error.claim === 'aud') return 'audience';
    if (error.claim === 'iss') return 'issuer';
    return 'malformed';
  }
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JOSEAlgNotAllowed) {
    return 'signature';
  }
  return 'malformed';
}

function personOf(claims: JWTPayload): ClientPerson {
  const text = (key: string): string | undefined => (typeof claims[key] === 'string' ? (claims[key] as string) : undefined);
  const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : [];
  const upn = text('upn') ?? text('unique_name') ?? text('preferred_username');
  const appid = text('appid') ?? text('azp');
  return {
    oid: text('oid')!,
    tid: text('tid')!,
    ...(upn && text('idtyp') !== 'app' ? { upn } : appid ? { appid } : {}),
    groups,
    expiresAt: (claims.exp as number) * 1000,
  };
}

async function fetchJsonDocument(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const text = await response.text();
  if (text.length > MAX_DOCUMENT_BYTES) throw new Error('document too large');
  return JSON.parse(text) as unknown;
}
