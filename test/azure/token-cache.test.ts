import { describe, expect, it } from 'vitest';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { TokenCache, type TokenCacheEvent } from '../../src/azure/token-cache.js';
import { ExternalError } from '../../src/errors.js';

const SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const MINUTE = 60_000;

/** A credential whose answers the test controls, one deferred promise per call; it ignores its AbortSignal, as @azure/identity's managed identity does. */
function controlledCredential() {
  const calls: Array<{ resolve: (t: AccessToken) => void; reject: (e: unknown) => void; signal: AbortSignal | undefined }> = [];
  const waiters: Array<() => void> = [];
  const credential: TokenCredential = {
    getToken: (_scopes, options) =>
      new Promise<AccessToken>((resolve, reject) => {
        calls.push({ resolve, reject, signal: options?.abortSignal });
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

  describe('a credential that never answers', () => {
    it('is abandoned at the deadline: every waiter gets an error saying so, and the status says stuck', async () => {
      let now = 1_000_000;
      const { credential, calls, nextCall } = controlledCredential();
      const events: TokenCacheEvent[] = [];
      const cache = new TokenCache({ credential, now: () => now, fetchTimeoutMs: 50, onEvent: (e) => events.push(e) });
      const waiters = [cache.getToken(SCOPE), cache.getToken(SCOPE)];
      const call = await nextCall(0);
      expect(call.signal?.aborted).toBe(false);
      expect(cache.status(SCOPE)).toEqual({ state: 'ok', fetchingSince: 1_000_000 });
      const errors = await Promise.all(waiters.map((w) => w.then(() => undefined, (e: unknown) => e as ExternalError)));
      for (const error of errors) {
        expect(error).toBeInstanceOf(ExternalError);
        expect(error!.message).toBe(`could not get an Entra token for ${SCOPE}: DefaultAzureCredential failed: no answer within 0.1 s; azdb abandoned the attempt and the next login starts a new one`);
        expect(error!.hint).toContain('stuck');
      }
      // The signal azdb hands down aborts at the deadline, for credentials that heed it.
      expect(call.signal?.aborted).toBe(true);
      expect(calls).toHaveLength(1);
      expect(events.at(-1)).toMatchObject({ type: 'fetch-failed', source: 'DefaultAzureCredential', stuck: true, servedCached: false });
      expect(cache.status(SCOPE)).toMatchObject({ state: 'stuck', since: 1_000_000 });
      expect(cache.status(SCOPE).fetchingSince).toBeUndefined();
      expect(cache.stats).toMatchObject({ fetches: 1, failures: 1, timeouts: 1 });
    });

    it('the next login starts a new attempt, which brings the token once the source answers again', async () => {
      const { credential, calls, nextCall } = controlledCredential();
      const cache = new TokenCache({ credential, now: () => 0, fetchTimeoutMs: 50 });
      await expect(cache.getToken(SCOPE)).rejects.toThrow(/no answer within/);
      const second = cache.getToken(SCOPE);
      (await nextCall(1)).resolve({ token: 'recovered', expiresOnTimestamp: 60 * MINUTE });
      expect(await second).toBe('recovered');
      // The first attempt answers late: nobody listens, nothing changes.
      calls[0]!.resolve({ token: 'late', expiresOnTimestamp: 90 * MINUTE });
      await new Promise((r) => setImmediate(r));
      expect(await cache.getToken(SCOPE)).toBe('recovered');
      expect(cache.status(SCOPE)).toEqual({ state: 'ok', since: 0 });
    });

    it('a token about to expire is not handed out: the login waits for the fetch and fails at the deadline instead of hanging', async () => {
      let now = 0;
      const { credential, nextCall } = controlledCredential();
      const cache = new TokenCache({ credential, now: () => now, fetchTimeoutMs: 50, minValidityMs: 30_000 });
      const first = cache.getToken(SCOPE);
      (await nextCall(0)).resolve({ token: 'old', expiresOnTimestamp: 60 * MINUTE });
      await first;
      now = 60 * MINUTE - 20_000; // 20 s left: less than a login needs
      await expect(cache.getToken(SCOPE)).rejects.toThrow(/DefaultAzureCredential failed: no answer within/);
      expect(cache.status(SCOPE).state).toBe('stuck');
    });
  });

  describe("a caller's own signal", () => {
    it('ends that wait at once with its reason and how long the credential has been quiet; the fetch goes on for the others', async () => {
      let now = 0;
      const { credential, calls, nextCall } = controlledCredential();
      const cache = new TokenCache({ credential, now: () => now });
      const patient = cache.getToken(SCOPE);
      const controller = new AbortController();
      const hasty = cache.getToken(SCOPE, { signal: controller.signal });
      await nextCall(0);
      now = 12_000;
      controller.abort(new Error('the login deadline of 10 s passed'));
      const error = (await hasty.catch((e: unknown) => e)) as ExternalError;
      expect(error).toBeInstanceOf(ExternalError);
      expect(error.message).toBe(
        `stopped waiting for an Entra token for ${SCOPE}: the login deadline of 10 s passed; the credential has not answered for 12 s (azdb gives up on it after 30 s)`,
      );
      calls[0]!.resolve({ token: 'shared', expiresOnTimestamp: 60 * MINUTE });
      expect(await patient).toBe('shared');
      expect(calls).toHaveLength(1);
    });

    it('an already aborted signal does not wait at all (Ctrl+C before the fetch)', async () => {
      const { credential } = controlledCredential();
      const cache = new TokenCache({ credential, now: () => 0 });
      await expect(cache.getToken(SCOPE, { signal: AbortSignal.abort() })).rejects.toThrow(/stopped waiting for an Entra token/);
    });
  });

  it('status says failing with the reason while the source says no', async () => {
    const { credential, nextCall } = controlledCredential();
    const cache = new TokenCache({ credential, now: () => 5 });
    const pending = cache.getToken(SCOPE);
    (await nextCall(0)).reject(new Error('ManagedIdentityCredential: the identity endpoint http://127.0.0.1:9/msi/token/ refused the connection'));
    await pending.catch(() => {});
    expect(cache.status(SCOPE)).toEqual({ state: 'failing', since: 5, error: 'ManagedIdentityCredential failed: ManagedIdentityCredential: the identity endpoint http://127.0.0.1:9/msi/token/ refused the connection' });
  });
});
