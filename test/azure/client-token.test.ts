/**
 * The shared broker's check of a client's Entra token, with the emulator's issuer signing and an
 * injected fetch (serving what Entra publishes, counting requests) and clock.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createTokenIssuer, forgeTokenWithOtherKey, type IssueOptions, type TokenIssuer } from '../../src/emulator/entra.js';
import { createClientTokenValidator, type ClientTokenValidatorOptions } from '../../src/azure/client-token.js';

const TENANT = '8a1e2d3c-0000-4000-8000-000000000001';
const OTHER = '8a1e2d3c-0000-4000-8000-000000000002';
const AUTHORITY = 'https://login.example.test';
const DB = 'https://ossrdbms-aad.database.windows.net';
const ALICE: IssueOptions = { audience: DB, objectId: '11111111-1111-4111-8111-111111111111', appId: 'cli', ttlSeconds: 3600, idtyp: 'user', upn: 'alice@contoso.com', groups: ['g-dba'] };

let home: TokenIssuer;
let other: TokenIssuer;
let clock: number;
let requests: string[];
let failing: boolean;

async function fetchJson(url: string): Promise<unknown> {
  requests.push(url);
  if (failing) throw new Error('unreachable');
  for (const issuer of [home, other]) {
    const t = issuer.tenantId;
    if (url === `${AUTHORITY}/${t}/.well-known/openid-configuration`) return { issuer: `https://sts.windows.net/${t}/`, jwks_uri: `${AUTHORITY}/common/discovery/keys` };
    if (url === `${AUTHORITY}/${t}/v2.0/.well-known/openid-configuration`) return { issuer: `${AUTHORITY}/${t}/v2.0`, jwks_uri: `${AUTHORITY}/${t}/discovery/v2.0/keys` };
  }
  if (url === `${AUTHORITY}/common/discovery/keys`) return { keys: [...home.jwks.keys, ...other.jwks.keys] };
  throw new Error(`404 ${url}`);
}

function validator(extra: Partial<ClientTokenValidatorOptions> = {}) {
  return createClientTokenValidator({ authorityHost: AUTHORITY, audience: DB, allowedTenants: [TENANT.toUpperCase()], fetchJson, now: () => clock, ...extra });
}

beforeEach(async () => {
  home ??= await createTokenIssuer({ tenantId: TENANT });
  other ??= await createTokenIssuer({ tenantId: OTHER });
  clock = Date.now();
  requests = [];
  failing = false;
});

describe('client token validation', () => {
  it('accepts a person of an allowed tenant and says who it is, groups included', async () => {
    const verdict = await validator()(await home.issue(ALICE));
    expect(verdict).toEqual({
      ok: true,
      person: { oid: ALICE.objectId, tid: TENANT, upn: 'alice@contoso.com', groups: ['g-dba'], expiresAt: expect.any(Number) as number },
    });
    expect(requests).toEqual([`${AUTHORITY}/${TENANT}/.well-known/openid-configuration`, `${AUTHORITY}/common/discovery/keys`]);
  });

  it('names an app by its appid', async () => {
    const verdict = await validator()(await home.issue({ audience: DB, objectId: 'sp-oid', appId: 'app-123', ttlSeconds: 600 }));
    expect(verdict).toMatchObject({ ok: true, person: { oid: 'sp-oid', appid: 'app-123', groups: [] } });
    expect(verdict.ok && 'upn' in verdict.person).toBe(false);
  });

  it('refuses another tenant without fetching anything', async () => {
    expect(await validator()(await other.issue(ALICE))).toEqual({ ok: false, reason: 'tenant' });
    expect(requests).toEqual([]);
  });

  it('refuses another audience, a forged signature, garbage, a wrong algorithm', async () => {
    const check = validator();
    expect(await check(await home.issue({ ...ALICE, audience: 'https://management.azure.com' }))).toEqual({ ok: false, reason: 'audience' });
    expect(await check(await forgeTokenWithOtherKey(home, ALICE))).toEqual({ ok: false, reason: 'signature' });
    expect(await check('not-a-token')).toEqual({ ok: false, reason: 'malformed' });
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ tid: TENANT })).toString('base64url')}.`;
    expect(await check(unsigned)).toEqual({ ok: false, reason: 'signature' });
  });

  it('refuses an expired token beyond the skew, and one not valid yet', async () => {
    const check = validator({ clockSkewSeconds: 60 });
    const token = await home.issue({ ...ALICE, ttlSeconds: 600 });
    clock += 600_000 + 30_000;
    expect((await check(token)).ok).toBe(true);
    clock += 60_000;
    expect(await check(token)).toEqual({ ok: false, reason: 'expired' });
    clock = Date.now();
    expect(await check(await home.issue({ ...ALICE, notBefore: new Date(clock + 300_000) }))).toEqual({ ok: false, reason: 'not-yet-valid' });
  });

  it('refuses a token whose iss is not the issuer the tenant publishes', async () => {
    const check = validator({
      fetchJson: async (url) => {
        const document = (await fetchJson(url)) as Record<string, unknown>;
        return url.endsWith('openid-configuration') ? { ...document, issuer: 'https://sts.windows.net/someone-else/' } : document;
      },
    });
    expect(await check(await home.issue(ALICE))).toEqual({ ok: false, reason: 'issuer' });
  });

  it('refetches the keys once for an unknown kid (key rollover), and not again within the cooldown', async () => {
    const check = validator({ refreshCooldownMs: 30_000 });
    expect((await check(await home.issue(ALICE))).ok).toBe(true);
    await home.rotateKeys();
    const rotated = await home.issue(ALICE);
    clock += 31_000;
    expect((await check(rotated)).ok).toBe(true);
    expect(requests.filter((u) => u.endsWith('/common/discovery/keys'))).toHaveLength(2);
    // Made-up kids right after: answered from the cache, no request.
    const forged = await forgeTokenWithOtherKey(home, ALICE);
    const [, payload, signature] = forged.split('.');
    const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: 'made-up' })).toString('base64url');
    for (let i = 0; i < 5; i++) expect(await check(`${header}.${payload}.${signature}`)).toEqual({ ok: false, reason: 'signature' });
    expect(requests.filter((u) => u.endsWith('/common/discovery/keys'))).toHaveLength(2);
  });

  it('within the cooldown a rotated key is refused, after it accepted', async () => {
    const check = validator({ refreshCooldownMs: 30_000 });
    expect((await check(await home.issue(ALICE))).ok).toBe(true);
    await home.rotateKeys();
    const rotated = await home.issue(ALICE);
    expect(await check(rotated)).toEqual({ ok: false, reason: 'signature' });
    clock += 30_001;
    expect((await check(rotated)).ok).toBe(true);
  });

  it('says keys-unavailable when Entra cannot be reached, and one burst makes one request', async () => {
    failing = true;
    const check = validator();
    const token = await home.issue(ALICE);
    const verdicts = await Promise.all([check(token), check(token), check(token)]);
    expect(verdicts).toEqual(Array(3).fill({ ok: false, reason: 'keys-unavailable' }));
    expect(requests).toHaveLength(1);
  });

  it('never puts the token in a verdict', async () => {
    const token = await home.issue({ ...ALICE, audience: 'https://elsewhere' });
    expect(JSON.stringify(await validator()(token))).not.toContain(token.split('.')[1]);
  });
});
