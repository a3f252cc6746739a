/**
 * An emulated Microsoft Entra ID token issuer: v1.0 access tokens (what managed identities and
 * `az account get-access-token` hand out for resources such as
 * `https://ossrdbms-aad.database.windows.net`), RS256-signed with a `kid` header, issued by
 * `https://sts.windows.net/<tenant>/`, and the verification a resource server does on them.
 *
 * The signing key is persisted in `keyDir` (when given) so tokens survive an emulator restart.
 * Verification allows the 5 minutes of clock skew that Microsoft.IdentityModel (and so Azure's
 * resource providers) allow by default: a token is rejected as expired only once `exp` is more than
 * `clockSkewSeconds` in the past. Tests wanting an expired token back-date `notBefore`.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import { BugError, ExternalError } from '../errors.js';
import { createExclusively, readTextIfExists, removeIfUnchanged } from '../broker/persist.js';

export type TokenRejectionReason = 'malformed' | 'signature' | 'expired' | 'not-yet-valid' | 'audience' | 'issuer';

/** A token a resource server refuses; `reason` says which check failed. */
export class TokenRejected extends ExternalError {
  constructor(
    readonly reason: TokenRejectionReason,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

export type IdentityType = 'app' | 'user';

/** The claims azdb and the emulated resources look at (v1.0 access token). */
export interface TokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  oid: string;
  sub: string;
  tid: string;
  appid: string;
  idtyp: IdentityType;
  ver: '1.0';
  upn?: string;
  [claim: string]: unknown;
}

export interface IssueOptions {
  audience: string;
  objectId: string;
  appId: string;
  ttlSeconds: number;
  /** @default 'app' */
  idtyp?: IdentityType;
  /** The user's sign-in name, for `idtyp: 'user'`. */
  upn?: string;
  /** Start of validity (also `iat`); back-date it to mint an expired token. @default now */
  notBefore?: Date;
  /** Object ids of the security groups the person is in (Entra's `groups` claim, when the app asks for it). */
  groups?: string[];
}

export interface VerifyOptions {
  /** The resource server's audience(s); the token's `aud` must be one of them. */
  audience: string | string[];
}

export interface TokenIssuer {
  readonly tenantId: string;
  /** `https://sts.windows.net/<tenant>/`, the `iss` of v1.0 access tokens. */
  readonly issuer: string;
  /** The public signing keys, as Entra publishes them at `discovery/keys`: the signing one first, then the retired ones. */
  readonly jwks: JSONWebKeySet;
  issue(options: IssueOptions): Promise<string>;
  /**
   * Key rollover as Entra does it: a new key signs from now on; the previous one stays published
   * (tokens it signed stay valid until they expire), older ones are dropped.
   */
  rotateKeys(): Promise<void>;
  /** The token's claims, or a {@link TokenRejected}. */
  verify(token: string, options: VerifyOptions): Promise<TokenClaims>;
}

export interface TokenIssuerOptions {
  tenantId: string;
  /** Where the signing key is kept (mode 0600); without it the key lives in memory only. */
  keyDir?: string;
  /** @default 300 */
  clockSkewSeconds?: number;
}

const ALGORITHM = 'RS256';
const KEY_FILE = 'entra-signing-key.json';
const DEFAULT_CLOCK_SKEW_SECONDS = 300;
const REQUIRED_CLAIMS = ['iat', 'nbf', 'exp', 'oid', 'tid', 'appid'];
/** Keys published at once: the signing one and the one it replaced. */
const PUBLISHED_KEYS = 2;

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function createTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const { tenantId } = options;
  const issuer = `https://sts.windows.net/${tenantId}/`;
  let key = options.keyDir === undefined ? await generateSigningKey() : await loadOrCreateSigningKey(options.keyDir);
  let published: JWK[] = [key.publicJwk];
  let keySet = createLocalJWKSet({ keys: published });
  const clockTolerance = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;

  return {
    tenantId,
    issuer,
    get jwks(): JSONWebKeySet {
      return { keys: [...published] };
    },
    issue: (issueOptions) => signToken(key.privateKey, key.kid, buildClaims(tenantId, issuer, issueOptions)),
    async rotateKeys() {
      key = await generateSigningKey();
      published = [key.publicJwk, ...published].slice(0, PUBLISHED_KEYS);
      keySet = createLocalJWKSet({ keys: published });
    },
    async verify(token, { audience }) {
      assertWellFormed(token);
      try {
        const { payload } = await jwtVerify(token, keySet, {
          algorithms: [ALGORITHM],
          issuer,
          audience,
          clockTolerance,
          requiredClaims: REQUIRED_CLAIMS,
        });
        return payload as TokenClaims;
      } catch (error) {
        throw toRejection(error);
      }
    },
  };
}

/**
 * For tests: a token shaped exactly like one from `issuer` (same claims, same `kid`) but signed by
 * another key, which a resource server must refuse with reason `signature`.
 */
export async function forgeTokenWithOtherKey(issuer: TokenIssuer, options: IssueOptions): Promise<string> {
  const kid = issuer.jwks.keys[0]?.kid;
  if (kid === undefined) throw new BugError('the issuer publishes no signing key');
  const other = await generateSigningKey();
  return signToken(other.privateKey, kid, buildClaims(issuer.tenantId, issuer.issuer, options));
}

function buildClaims(tenantId: string, issuer: string, options: IssueOptions): TokenClaims {
  if (!Number.isFinite(options.ttlSeconds)) throw new BugError(`ttlSeconds must be a number, got ${options.ttlSeconds}`);
  const idtyp = options.idtyp ?? 'app';
  const start = Math.floor((options.notBefore?.getTime() ?? Date.now()) / 1000);
  const claims: TokenClaims = {
    aud: options.audience,
    iss: issuer,
    iat: start,
    nbf: start,
    exp: start + Math.floor(options.ttlSeconds),
    aio: randomUUID(),
    appid: options.appId,
    appidacr: idtyp === 'app' ? '2' : '0',
    idp: idtyp === 'app' ? issuer : 'https://sts.windows.net/',
    idtyp,
    oid: options.objectId,
    sub: options.objectId,
    tid: tenantId,
    uti: randomUUID().replaceAll('-', ''),
    ver: '1.0',
  };
  if (idtyp === 'user') {
    claims.scp = 'user_impersonation';
    if (options.upn !== undefined) {
      claims.upn = options.upn;
      claims.unique_name = options.upn;
    }
  }
  if (options.groups !== undefined) claims.groups = [...options.groups];
  return claims;
}

function signToken(privateKey: CryptoKey, kid: string, claims: TokenClaims): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ typ: 'JWT', alg: ALGORITHM, kid, x5t: kid }).sign(privateKey);
}

/** Like Entra-protected services, read the token before checking its signature. */
function assertWellFormed(token: string): void {
  try {
    decodeProtectedHeader(token);
    decodeJwt(token);
  } catch (error) {
    throw new TokenRejected('malformed', 'the token is not a well-formed JWT', { cause: error });
  }
}

function toRejection(error: unknown): TokenRejected {
  const reject = (reason: TokenRejectionReason, message: string) => new TokenRejected(reason, message, { cause: error });
  if (error instanceof errors.JWTExpired) return reject('expired', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return reject('malformed', `the token has no "${error.claim}" claim`);
    if (error.claim === 'nbf') return reject('not-yet-valid', 'the token is not valid yet (nbf is in the future)');
    if (error.claim === 'aud') return reject('audience', `the token was issued for another audience`);
    if (error.claim === 'iss') return reject('issuer', 'the token was issued by another issuer');
    return reject('malformed', `the token's "${error.claim}" claim is invalid`);
  }
  if (
    error instanceof errors.JWSSignatureVerificationFailed ||
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JOSEAlgNotAllowed
  ) {
    return reject('signature', 'the token signature does not verify with the issuer keys');
  }
  if (error instanceof errors.JOSEError) return reject('malformed', 'the token is not a well-formed JWT');
  return reject('malformed', 'the token could not be read');
}

async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(ALGORITHM, { modulusLength: 2048, extractable: true });
  return signingKeyFromJwk(await exportJWK(privateKey));
}

async function signingKeyFromJwk(privateJwk: JWK): Promise<SigningKey> {
  const { kty, n, e } = privateJwk;
  if (kty !== 'RSA' || n === undefined || e === undefined) throw new ExternalError('the token signing key is not an RSA private key');
  const kid = await calculateJwkThumbprint({ kty, n, e });
  const privateKey = (await importJWK({ ...privateJwk, alg: ALGORITHM }, ALGORITHM)) as CryptoKey;
  return { kid, privateKey, publicJwk: { kty, n, e, kid, use: 'sig', alg: ALGORITHM } };
}

async function readSigningKey(text: string): Promise<SigningKey | undefined> {
  try {
    return await signingKeyFromJwk(JSON.parse(text) as JWK);
  } catch {
    return undefined;
  }
}

async function loadOrCreateSigningKey(dir: string): Promise<SigningKey> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, KEY_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    const text = await readTextIfExists(path);
    if (text !== undefined) {
      const key = await readSigningKey(text);
      if (key) return key;
      await removeIfUnchanged(path, text); // corrupt: replace it
    }
    const { privateKey } = await generateKeyPair(ALGORITHM, { modulusLength: 2048, extractable: true });
    await createExclusively(path, `${JSON.stringify(await exportJWK(privateKey))}\n`, 0o600);
  }
  throw new ExternalError(`could not create a token signing key in ${dir}`);
}
