/**
 * An in-memory Entra token cache shared by every session of one azdb process.
 *
 * - A cached token is served without touching the credential while it is valid: the connection
 *   path never waits for a fetch unless there is no usable token at all.
 * - Inside the refresh margin the token is still served and one refresh starts in the background.
 * - At most one fetch per scope is in flight; concurrent callers share it.
 * - When the source fails, a still-valid token keeps serving; once it has expired the caller
 *   gets an ExternalError naming the failing credential source and `azdb creds`.
 * Tokens live only in this object's memory: never logged, never in an error, never on disk.
 */
import type { TokenCredential } from '@azure/identity';
import { ExternalError, errorMessage } from '../errors.js';
import { describeCredentialFailure } from './credential.js';

export interface TokenCacheOptions {
  credential: TokenCredential;
  /** Refresh when fewer than this many ms remain. @default 300_000 (5 minutes) */
  refreshMarginMs?: number;
  /** A token with less than this left is not handed out (a login must finish in time). @default 30_000 */
  minValidityMs?: number;
  /** Time limit of one fetch. @default 30_000 */
  fetchTimeoutMs?: number;
  now?: () => number;
  onEvent?: (event: TokenCacheEvent) => void;
}

export type TokenCacheEvent =
  | { type: 'fetch'; scope: string; reason: 'missing' | 'refresh' }
  | { type: 'fetched'; scope: string; expiresOnTimestamp: number }
  | { type: 'fetch-failed'; scope: string; source: string; reason: string; servedCached: boolean };

interface Entry {
  token: string;
  expiresOnTimestamp: number;
}

export interface TokenCacheStats {
  fetches: number;
  failures: number;
  cacheHits: number;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly credential: TokenCredential;
  private readonly refreshMarginMs: number;
  private readonly minValidityMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly now: () => number;
  private readonly onEvent: (event: TokenCacheEvent) => void;
  readonly stats: TokenCacheStats = { fetches: 0, failures: 0, cacheHits: 0 };

  constructor(options: TokenCacheOptions) {
    this.credential = options.credential;
    this.refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.minValidityMs = options.minValidityMs ?? 30_000;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent ?? (() => {});
  }

  /** A token for `scope`; throws ExternalError (with the failing source) when none can be had. */
  async getToken(scope: string): Promise<string> {
    const cached = this.entries.get(scope);
    const now = this.now();
    if (cached && cached.expiresOnTimestamp - now > this.minValidityMs) {
      this.stats.cacheHits += 1;
      if (cached.expiresOnTimestamp - now <= this.refreshMarginMs) {
        // Served from cache; a background refresh failure is already reported through onEvent.
        this.fetch(scope, 'refresh').catch(() => {});
      }
      return cached.token;
    }
    const entry = await this.fetch(scope, 'missing');
    return entry.token;
  }

  /** When the cached token for `scope` expires, if there is one. */
  expiresOn(scope: string): number | undefined {
    return this.entries.get(scope)?.expiresOnTimestamp;
  }

  /** Drops cached tokens (all, or one scope): `azdb db logout`. */
  clear(scope?: string): void {
    if (scope === undefined) this.entries.clear();
    else this.entries.delete(scope);
  }

  private fetch(scope: string, reason: 'missing' | 'refresh'): Promise<Entry> {
    const running = this.inflight.get(scope);
    if (running) return running;
    const promise = this.fetchOnce(scope, reason).finally(() => this.inflight.delete(scope));
    this.inflight.set(scope, promise);
    return promise;
  }

  private async fetchOnce(scope: string, reason: 'missing' | 'refresh'): Promise<Entry> {
    this.stats.fetches += 1;
    this.onEvent({ type: 'fetch', scope, reason });
    let result;
    try {
      result = await this.credential.getToken(scope, { abortSignal: AbortSignal.timeout(this.fetchTimeoutMs) });
      if (!result) throw new Error('the credential returned no token');
    } catch (error) {
      this.stats.failures += 1;
      const { source, reason: why } = describeCredentialFailure(error);
      const stillValid = (this.entries.get(scope)?.expiresOnTimestamp ?? 0) - this.now() > this.minValidityMs;
      this.onEvent({ type: 'fetch-failed', scope, source, reason: why, servedCached: stillValid });
      throw new ExternalError(`could not get an Entra token for ${scope}: ${source} failed: ${errorMessage(why)}`, {
        hint: 'Run `azdb creds` to see which credential source works and how to fix the others.',
        cause: error,
      });
    }
    const entry = { token: result.token, expiresOnTimestamp: result.expiresOnTimestamp };
    this.entries.set(scope, entry);
    this.onEvent({ type: 'fetched', scope, expiresOnTimestamp: entry.expiresOnTimestamp });
    return entry;
  }
}
