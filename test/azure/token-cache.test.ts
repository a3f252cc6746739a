import { describe, expect, it } from 'vitest';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { TokenCache, type TokenCacheEvent } from '../../src/azure/token-cache.js';
import { ExternalError } from '../../src/errors.js';

const SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const MINUTE = 60_000;

/** A credential whose answers the test controls, one deferred promise per call. */
function controlledCredential() {
  const calls: Array<{ resolve: (t: AccessToken) => void; reject: (e: unknown) => void }> = [];
  const waiters: Array<() => void> = [];
  const credential: TokenCredential = {
    getToken: () =>
      new Promise<AccessToken>((resolve, reject) => {
        calls.push({ resolve, reject });
        waiters.splice(0).forEach((w) => w());
      }),
  };
  const nextCall = async (index: number) => {
    while (calls.length <= index) await new Promise<void>((r) => waiters.push(r));
    return calls[index]!;
  };
  return { credential, calls, nextCall };
}

describe('TokenCache', () => {
  it('serves a cached token without fetching again while it is fresh', async () => {
    let now = 1_000_000;
    const { credential, calls, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => now });
    const first = cache.getToken(SCOPE);
    (await nextCall(0)).resolve({ token: 'tok-1', expiresOnTimestamp: now + 60 * MINUTE });
    expect(await first).toBe('tok-1');
    now += 30 * MINUTE;
    expect(await cache.getToken(SCOPE)).toBe('tok-1');
    expect(calls).toHaveLength(1);
    expect(cache.stats).toMatchObject({ fetches: 1, cacheHits: 1 });
  });

  it('shares one fetch among 50 concurrent callers', async () => {
    const { credential, calls, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => 0 });
    const pending = Array.from({ length: 50 }, () => cache.getToken(SCOPE));
    (await nextCall(0)).resolve({ token: 'shared', expiresOnTimestamp: 60 * MINUTE });
    expect(new Set(await Promise.all(pending))).toEqual(new Set(['shared']));
    expect(calls).toHaveLength(1);
  });

  it('refreshes inside the margin in the background and keeps serving the old token meanwhile', async () => {
    let now = 0;
    const { credential, calls, nextCall } = controlledCredential();
    const events: TokenCacheEvent[] = [];
    const cache = new TokenCache({ credential, now: () => now, refreshMarginMs: 5 * MINUTE, onEvent: (e) => events.push(e) });
    const first = cache.getToken(SCOPE);
    (await nextCall(0)).resolve({ token: 'old', expiresOnTimestamp: 60 * MINUTE });
    await first;
    now = 56 * MINUTE;
    expect(await cache.getToken(SCOPE)).toBe('old');
    expect(await cache.getToken(SCOPE)).toBe('old');
    expect(calls).toHaveLength(2); // one refresh, not one per caller
    calls[1]!.resolve({ token: 'new', expiresOnTimestamp: 120 * MINUTE });
    await new Promise((r) => setImmediate(r));
    expect(await cache.getToken(SCOPE)).toBe('new');
    expect(events.filter((e) => e.type === 'fetch').map((e) => (e as { reason: string }).reason)).toEqual(['missing', 'refresh']);
  });

  it('keeps serving a valid token while the source is down, then fails naming the source', async () => {
    let now = 0;
    const { credential, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => now, refreshMarginMs: 5 * MINUTE, minValidityMs: 30_000 });
    const first = cache.getToken(SCOPE);
    (await nextCall(0)).resolve({ token: 'only', expiresOnTimestamp: 60 * MINUTE });
    await first;

    now = 58 * MINUTE;
    expect(await cache.getToken(SCOPE)).toBe('only');
    (await nextCall(1)).reject(new Error('ManagedIdentityCredential: connect ECONNREFUSED 127.0.0.1:4242'));
    await new Promise((r) => setImmediate(r));
    expect(await cache.getToken(SCOPE)).toBe('only');

    // That second hit started another background refresh; the caller after expiry joins it.
    now = 60 * MINUTE;
    const expired = cache.getToken(SCOPE);
    (await nextCall(2)).reject(new Error('ManagedIdentityCredential: connect ECONNREFUSED 127.0.0.1:4242'));
    const error = await expired.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalError);
    expect((error as ExternalError).message).toContain('ManagedIdentityCredential failed');
    expect((error as ExternalError).hint).toContain('azdb creds');
  });

  it('never puts a token into an error message', async () => {
    const { credential, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => 0 });
    const pending = cache.getToken(SCOPE);
    const leaked = 'eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl';
    (await nextCall(0)).reject(new Error(`ManagedIdentityCredential: bad response {"access_token":"${leaked}"}`));
    const error = (await pending.catch((e: unknown) => e)) as Error;
    expect(error.message).not.toContain(leaked);
    expect(error.message).toContain('redacted');
  });

  it('clear() forgets tokens so the next call fetches', async () => {
    const { credential, calls, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => 0 });
    const first = cache.getToken(SCOPE);
    (await nextCall(0)).resolve({ token: 'a', expiresOnTimestamp: 60 * MINUTE });
    await first;
    cache.clear();
    const second = cache.getToken(SCOPE);
    (await nextCall(1)).resolve({ token: 'b', expiresOnTimestamp: 60 * MINUTE });
    expect(await second).toBe('b');
    expect(calls).toHaveLength(2);
  });
});
