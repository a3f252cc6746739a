// The TokenCache with the real DefaultAzureCredential (createCredential()) against the emulated
// App Service managed identity endpoint.
//
// MSAL freezes the managed identity endpoint, header and HTTP client (with its retry policy) of
// the first managed identity request of a process (see src/emulator/identity-endpoint.ts), and
// reuses a token only while it has more than 300 s left. So this file:
// - runs one endpoint for all its tests, issuing 240-s tokens: every real fetch reaches the
//   endpoint and `identity.requests` counts them;
// - makes the first request of the process with retries off. With the retries
//   DefaultAzureCredential gives its managed identity (5 retries from 800 ms) a failing fetch takes
//   14-22 s (measured: ~20 s with the endpoint unreachable, ~15-20 s and 6 requests with it
//   answering 500), far too slow for a test. Those retries are @azure/identity's; what is tested
//   here is what the cache does with the outcome.
// The cache's clock is injected (the real clock plus an offset) to move into the refresh margin
// and past expiry without waiting.
import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDS, databaseScope } from '../../src/azure/clouds.js';
import { createCredential } from '../../src/azure/credential.js';
import { TokenCache, type TokenCacheEvent } from '../../src/azure/token-cache.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { ExternalError } from '../../src/errors.js';
import { startTestAzure } from '../harness/emulator.js';

const SCOPE = databaseScope(CLOUDS.AzureCloud);
const TOKEN_TTL_SECONDS = 240;
const REFRESH_MARGIN_MS = 60_000;
const MIN_VALIDITY_MS = 30_000;
/** Remaining lifetime that is inside the refresh margin but still good enough to hand out. */
const INSIDE_MARGIN_MS = 45_000;
const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./;

/** Variables that would make DefaultAzureCredential use something else than managed identity. */
const INTERFERING_ENV = [
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_TOKEN_CREDENTIALS',
  'AZURE_AUTHORITY_HOST',
  'IDENTITY_SERVER_THUMBPRINT',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'IMDS_ENDPOINT',
];

let azure: EmulatedAzure & { dir: string };
const savedEnv = new Map<string, string | undefined>();

beforeAll(async () => {
  azure = await startTestAzure({ tokenTtlSeconds: TOKEN_TTL_SECONDS });
  for (const name of [...INTERFERING_ENV, 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER']) {
    savedEnv.set(name, process.env[name]);
    delete process.env[name];
  }
  Object.assign(process.env, azure.identity.env());
  await new ManagedIdentityCredential({ retryOptions: { maxRetries: 0 } }).getToken('https://warm-up.example/.default');
});

afterEach(async () => {
  await azure.identity.setMode('up');
});

afterAll(async () => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await azure?.stop();
});

/** A cache over a fresh DefaultAzureCredential, with a clock the test moves and its events. */
function cacheUnderTest() {
  let offsetMs = 0;
  const events: TokenCacheEvent[] = [];
  const listeners: Array<(event: TokenCacheEvent) => void> = [];
  const cache = new TokenCache({
    credential: createCredential(),
    refreshMarginMs: REFRESH_MARGIN_MS,
    minValidityMs: MIN_VALIDITY_MS,
    now: () => Date.now() + offsetMs,
    onEvent: (event) => {
      events.push(event);
      for (const listener of listeners.splice(0)) listener(event);
    },
  });
  /**
   * Resolves with the next event of `type` (call before triggering it), once the cache is done
   * with that fetch: it forgets the in-flight fetch only after emitting the event, so resolving
   * at once would let the next getToken() join the finished fetch instead of starting one.
   */
  const next = <T extends TokenCacheEvent['type']>(type: T): Promise<Extract<TokenCacheEvent, { type: T }>> =>
    new Promise((resolve) => {
      const listen = (event: TokenCacheEvent): void => {
        if (event.type === type) setImmediate(() => resolve(event as Extract<TokenCacheEvent, { type: T }>));
        else listeners.push(listen);
      };
      listeners.push(listen);
    });
  return {
    cache,
    events,
    next,
    /** Moves the cache's clock so that the cached token has `remainingMs` left. */
    leaveRemaining(remainingMs: number) {
      const expiresOn = cache.expiresOn(SCOPE);
      if (expiresOn === undefined) throw new Error('no cached token to move the clock against');
      offsetMs = expiresOn - remainingMs - Date.now();
    },
    resetClock() {
      offsetMs = 0;
    },
  };
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('TokenCache with DefaultAzureCredential and the emulated managed identity', () => {
  it('makes one endpoint request for 50 concurrent callers', async () => {
    const { cache } = cacheUnderTest();
    const before = azure.identity.requests;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => cache.getToken(SCOPE)));
    expect(azure.identity.requests).toBe(before + 1);
    expect(new Set(tokens).size).toBe(1);
    expect(cache.stats.fetches).toBe(1);
    expect(claimsOf(tokens[0]!)).toMatchObject({ aud: CLOUDS.AzureCloud.databaseResource, oid: DEMO_IDENTITY.objectId });
    const expiresOn = cache.expiresOn(SCOPE)!;
    expect(Math.abs(expiresOn - (Date.now() + TOKEN_TTL_SECONDS * 1000))).toBeLessThan(5_000);
  });

  it('refreshes inside the margin: the old token serves meanwhile, then a new one', async () => {
    const clock = cacheUnderTest();
    const { cache } = clock;
    const first = await cache.getToken(SCOPE);
    const firstExpiresOn = cache.expiresOn(SCOPE)!;
    const before = azure.identity.requests;

    clock.leaveRemaining(INSIDE_MARGIN_MS);
    const refreshed = clock.next('fetched');
    expect(await cache.getToken(SCOPE)).toBe(first); // served at once, refresh in the background
    await refreshed;
    expect(azure.identity.requests).toBe(before + 1);

    clock.resetClock();
    const second = await cache.getToken(SCOPE);
    expect(second).not.toBe(first);
    expect(claimsOf(second).oid).toBe(DEMO_IDENTITY.objectId);
    expect(cache.expiresOn(SCOPE)!).toBeGreaterThanOrEqual(firstExpiresOn);
    expect(azure.identity.requests).toBe(before + 1); // the new token is cached, not fetched again
    expect(clock.events.filter((e) => e.type === 'fetch').map((e) => (e as { reason: string }).reason)).toEqual(['missing', 'refresh']);
  });

  it('keeps serving a still-valid token while the endpoint is unreachable, then answers 500', async () => {
    const clock = cacheUnderTest();
    const { cache } = clock;
    const token = await cache.getToken(SCOPE);
    clock.leaveRemaining(INSIDE_MARGIN_MS);

    await azure.identity.setMode('unreachable');
    for (let i = 0; i < 2; i++) {
      const failed = clock.next('fetch-failed');
      expect(await cache.getToken(SCOPE)).toBe(token);
      expect(await failed).toMatchObject({ servedCached: true });
    }

    await azure.identity.setMode('error-500');
    const before = azure.identity.requests;
    const failed = clock.next('fetch-failed');
    expect(await cache.getToken(SCOPE)).toBe(token);
    expect(await failed).toMatchObject({ servedCached: true });
    expect(azure.identity.requests).toBeGreaterThan(before); // the refresh did reach the endpoint
    expect(await cache.getToken(SCOPE)).toBe(token);
    expect(cache.stats.failures).toBeGreaterThanOrEqual(3);
  });

  it('fails after expiry naming the managed identity source and `azdb creds`, without the token', async () => {
    const clock = cacheUnderTest();
    const { cache } = clock;
    const token = await cache.getToken(SCOPE);

    for (const mode of ['error-500', 'unreachable'] as const) {
      await azure.identity.setMode(mode);
      clock.leaveRemaining(-1_000); // expired a second ago
      const started = Date.now();
      const error = await cache.getToken(SCOPE).then(
        () => undefined,
        (e: unknown) => e,
      );
      console.log(`token fetch failure (${mode}, retries off) took ${Date.now() - started} ms`);
      expect(error).toBeInstanceOf(ExternalError);
      const failure = error as ExternalError;
      expect(failure.message).toContain(SCOPE);
      expect(failure.message).toContain('ManagedIdentityCredential');
      expect(failure.hint).toContain('azdb creds');
      for (const text of [failure.message, failure.hint ?? '']) {
        expect(text).not.toContain(token);
        expect(text).not.toMatch(JWT);
        expect(text).not.toContain(azure.identity.header);
      }
    }

    // The source is back: the next caller gets a new token.
    await azure.identity.setMode('up');
    const fresh = await cache.getToken(SCOPE);
    expect(fresh).not.toBe(token);
    expect(cache.expiresOn(SCOPE)! - Date.now()).toBeGreaterThan(MIN_VALIDITY_MS);
  });
});
