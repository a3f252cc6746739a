import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExternalError } from '../../src/errors.js';
import {
  TokenRejected,
  createTokenIssuer,
  forgeTokenWithOtherKey,
  type TokenIssuer,
  type TokenRejectionReason,
} from '../../src/emulator/entra.js';

const TENANT = '8a1e2d3c-0000-4000-8000-000000000001';
const DB = 'https://ossrdbms-aad.database.windows.net';
const APP = { audience: DB, objectId: 'oid-1', appId: 'app-1', ttlSeconds: 3600 };
const HOUR_MS = 3_600_000;

let keyDir: string;
let issuer: TokenIssuer;

beforeAll(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'azdb-entra-'));
  issuer = await createTokenIssuer({ tenantId: TENANT, keyDir });
});

afterAll(async () => {
  await rm(keyDir, { recursive: true, force: true });
});

async function rejection(token: string, audience: string | string[] = DB): Promise<TokenRejectionReason> {
  try {
    await issuer.verify(token, { audience });
  } catch (error) {
    expect(error).toBeInstanceOf(TokenRejected);
    expect(error).toBeInstanceOf(ExternalError);
    return (error as TokenRejected).reason;
  }
  throw new Error('the token was accepted');
}

describe('Entra token issuer', () => {
  it('issues v1.0 RS256 access tokens with the Entra claims', async () => {
    expect(issuer.issuer).toBe(`https://sts.windows.net/${TENANT}/`);
    const token = await issuer.issue(APP);
    const header = decodeProtectedHeader(token);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(header.kid).toBe(issuer.jwks.keys[0]?.kid);

    const claims = await issuer.verify(token, { audience: DB });
    expect(claims).toMatchObject({
      aud: DB,
      iss: issuer.issuer,
      oid: 'oid-1',
      sub: 'oid-1',
      appid: 'app-1',
      tid: TENANT,
      idtyp: 'app',
      ver: '1.0',
    });
    expect(claims.upn).toBeUndefined();
    expect(claims.exp - claims.iat).toBe(3600);
    expect(claims.nbf).toBe(claims.iat);
    expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(5);
  });

  it('issues user tokens with upn', async () => {
    const token = await issuer.issue({ ...APP, idtyp: 'user', upn: 'alice@contoso.com' });
    const claims = await issuer.verify(token, { audience: DB });
    expect(claims).toMatchObject({ idtyp: 'user', upn: 'alice@contoso.com' });
  });

  it('publishes only the public half of the key', () => {
    const [key] = issuer.jwks.keys;
    expect(key).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256' });
    expect(key).not.toHaveProperty('d');
  });

  it('accepts any of several audiences', async () => {
    const token = await issuer.issue({ ...APP, audience: 'https://management.azure.com/' });
    const claims = await issuer.verify(token, {
      audience: ['https://management.azure.com', 'https://management.azure.com/'],
    });
    expect(claims.aud).toBe('https://management.azure.com/');
  });

  it('rejects garbage as malformed', async () => {
    expect(await rejection('not-a-token')).toBe('malformed');
    expect(await rejection('eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln')).toBe('malformed');
    expect(await rejection('')).toBe('malformed');
  });

  it('rejects a signed token that lacks a required claim as malformed', async () => {
    const jwk = JSON.parse(await readFile(join(keyDir, 'entra-signing-key.json'), 'utf8')) as JWK;
    const key = await importJWK(jwk, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ aud: DB, iss: issuer.issuer, iat: now, nbf: now, exp: now + 60, tid: TENANT, appid: 'a' })
      .setProtectedHeader({ alg: 'RS256', kid: issuer.jwks.keys[0]?.kid })
      .sign(key);
    expect(await rejection(token)).toBe('malformed');
  });

  it('rejects a token signed by another key', async () => {
    const forged = await forgeTokenWithOtherKey(issuer, APP);
    expect(decodeProtectedHeader(forged).kid).toBe(issuer.jwks.keys[0]?.kid);
    expect(await rejection(forged)).toBe('signature');
  });

  it('rejects a token whose payload was altered', async () => {
    const [header, , signature] = (await issuer.issue(APP)).split('.');
    const otherPayload = (await issuer.issue({ ...APP, objectId: 'someone-else' })).split('.')[1];
    expect(await rejection(`${header}.${otherPayload}.${signature}`)).toBe('signature');
  });

  it('rejects an expired token, beyond the 5 minutes of clock skew', async () => {
    const expired = await issuer.issue({ ...APP, notBefore: new Date(Date.now() - 2 * HOUR_MS) });
    expect(await rejection(expired)).toBe('expired');
  });

  it('accepts a token expired less than the clock skew ago, unless the skew is 0', async () => {
    const justExpired = await issuer.issue({ ...APP, notBefore: new Date(Date.now() - HOUR_MS - 60_000) });
    await expect(issuer.verify(justExpired, { audience: DB })).resolves.toMatchObject({ oid: 'oid-1' });
    const strict = await createTokenIssuer({ tenantId: TENANT, keyDir, clockSkewSeconds: 0 });
    await expect(strict.verify(justExpired, { audience: DB })).rejects.toMatchObject({ reason: 'expired' });
  });

  it('rejects a token that is not valid yet', async () => {
    const future = await issuer.issue({ ...APP, notBefore: new Date(Date.now() + HOUR_MS) });
    expect(await rejection(future)).toBe('not-yet-valid');
  });

  it('rejects a token for another audience', async () => {
    const arm = await issuer.issue({ ...APP, audience: 'https://management.azure.com' });
    expect(await rejection(arm)).toBe('audience');
  });

  it('rejects a token from another tenant even when signed with the same key', async () => {
    const otherTenant = await createTokenIssuer({ tenantId: 'other-tenant', keyDir });
    expect(otherTenant.jwks.keys[0]?.kid).toBe(issuer.jwks.keys[0]?.kid);
    expect(await rejection(await otherTenant.issue(APP))).toBe('issuer');
  });

  it('keeps its key across restarts (mode 0600), so earlier tokens still verify', async () => {
    const token = await issuer.issue(APP);
    const restarted = await createTokenIssuer({ tenantId: TENANT, keyDir });
    await expect(restarted.verify(token, { audience: DB })).resolves.toMatchObject({ oid: 'oid-1' });
    expect((await stat(join(keyDir, 'entra-signing-key.json'))).mode & 0o777).toBe(0o600);
  });

  it('without a key directory, each issuer has its own key', async () => {
    const a = await createTokenIssuer({ tenantId: TENANT });
    const b = await createTokenIssuer({ tenantId: TENANT });
    expect(a.jwks.keys[0]?.kid).not.toBe(b.jwks.keys[0]?.kid);
    await expect(b.verify(await a.issue(APP), { audience: DB })).rejects.toMatchObject({ reason: 'signature' });
  });
});

describe('key rollover and people', () => {
  it('signs with a new key after rotateKeys, still verifies tokens of the previous one, and drops older keys', async () => {
    const own = await createTokenIssuer({ tenantId: TENANT });
    const first = await own.issue(APP);
    const firstKid = decodeProtectedHeader(first).kid;
    await own.rotateKeys();
    const second = await own.issue(APP);
    expect(decodeProtectedHeader(second).kid).not.toBe(firstKid);
    expect(own.jwks.keys.map((k) => k.kid)).toEqual([decodeProtectedHeader(second).kid, firstKid]);
    await expect(own.verify(first, { audience: DB })).resolves.toMatchObject({ oid: 'oid-1' });
    await own.rotateKeys();
    expect(own.jwks.keys.map((k) => k.kid)).not.toContain(firstKid);
    const reason = await own.verify(first, { audience: DB }).then(() => 'accepted', (e: TokenRejected) => e.reason);
    expect(reason).toBe('signature');
  });

  it("puts a person's upn and groups in a user token", async () => {
    const token = await issuer.issue({ ...APP, idtyp: 'user', upn: 'alice@contoso.com', groups: ['g-1', 'g-2'] });
    const claims = await issuer.verify(token, { audience: DB });
    expect(claims).toMatchObject({ idtyp: 'user', upn: 'alice@contoso.com', groups: ['g-1', 'g-2'], iss: `https://sts.windows.net/${TENANT}/`, ver: '1.0' });
  });
});
