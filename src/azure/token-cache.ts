/**
 * An in-memory Entra token cache shared by every session of one azdb process.
 *
 * - A cached token is served without touching the credential while it is valid: the connection
 *   path never waits for a fetch unless there is no usable token at all.
 * - Inside the refresh margin the token is still served and one refresh starts in the background.
 * - At most one fetch per scope is in flight; concurrent callers share it.
 * - Every fetch has azdb's own deadline: a credential that never answers (a managed identity
 *   endpoint holding the request; @azure/identity does not pass the AbortSignal on to it) is
 *   abandoned then, its waiters get an error saying so, and the next caller starts a new attempt.
 * - A caller's own AbortSignal (Ctrl+C, a client's login deadline) ends its wait at once; the
 *   fetch goes on for the others.
 * - When the source fails, a still-valid token keeps serving; once it has expired the caller
 *   gets an ExternalError naming the failing credential source and `azdb creds`.
 * - {@link TokenCache.status} says whether the source works, fails, or is stuck (for /readyz and
 *   the metrics of `azdb serve`).
 * Tokens live only in this object's memory: never logged, never in an error, never on disk.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { ExternalError, errorMessage } from '../errors.js';
import { TimeLimitExceeded, formatSeconds, withTimeLimit } from '../time-limit.js';
import { describeCredentialFailure } from './credential-failure.js';

export interface TokenCacheOptions {
  credential: TokenCredential;
  /** Refresh when fewer than this many ms remain. @default 300_000 (5 minutes) */
  refreshMarginMs?: number;
  /** A token with less than this left is not handed out (a login must finish in time). @default 30_000 */
  minValidityMs?: number;
  /** azdb's deadline on one fetch; a fetch without an answer by then is abandoned. @default 30_000 */
  fetchTimeoutMs?: number;
  now?: () => number;
  onEvent?: (event: TokenCacheEvent) => void;
}

export type TokenCacheEvent =
  | { type: 'fetch'; scope: string; reason: 'missing' | 'refresh' }
  | { type: 'fetched'; scope: string; expiresOnTimestamp: number }
  /** `stuck`: no answer within the deadline; the attempt was abandoned. */
  | { type: 'fetch-failed'; scope: string; source: string; reason: string; servedCached: boolean; stuck: boolean };

/**
 * The credential source as the last fetch of a scope found it: `ok` (it brought a token, or
 * nothing was asked yet), `failing` (it said no), `stuck` (no answer within the deadline).
 */
export interface TokenSourceStatus {
  state: 'ok' | 'failing' | 'stuck';
  /** The last failure (source and reason) while failing or stuck. */
  error?: string;
  /** Since when the state holds (ms since the epoch), once a fetch has ended. */
  since?: number;
  /** When the fetch in flight started, while there is one. */
  fetchingSince?: number;
}

export interface TokenWaitOptions {
  /** Ends this caller's wait (not the shared fetch); its reason, if an Error, says why. */
  signal?: AbortSignal;
}

interface Entry {
  token: string;
  expiresOnTimestamp: number;
  /** `token` as a settled promise, made at its first use. */
  served?: Promise<string>;
}

export interface TokenCacheStats {
  fetches: number;
  failures: number;
  /** Fetches abandoned at the deadline (also counted in `failures`). */
  timeouts: number;
  cacheHits: number;
}

/** The source named when a fetch was abandoned: which link of the chain hangs is not known. */
const STUCK_SOURCE = 'DefaultAzureCredential';
const NEVER: AbortSignal = new AbortController().signal;

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, { promise: Promise<Entry>; since: number }>();
  private readonly outcomes = new Map<string, Omit<TokenSourceStatus, 'fetchingSince'>>();
  private readonly credential: TokenCredential;
  private readonly refreshMarginMs: number;
  private readonly minValidityMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly now: () => number;
  private readonly onEvent: (event: TokenCacheEvent) => void;
  readonly stats: TokenCacheStats = { fetches: 0, failures: 0, timeouts: 0, cacheHits: 0 };

  constructor(options: TokenCacheOptions) {
    this.credential = options.credential;
    this.refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.minValidityMs = options.minValidityMs ?? 30_000;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.onEvent = options.onEvent ?? (() => {});
  }

  /** A token for `scope`; rejects with ExternalError (with the failing source) when none can be had. */
  getToken(scope: string, options?: TokenWaitOptions): Promise<string> {
    const cached = this.entries.get(scope);
    const now = this.now();
    if (cached && cached.expiresOnTimestamp - now > this.minValidityMs) {
      this.stats.cacheHits += 1;
      if (cached.expiresOnTimestamp - now <= this.refreshMarginMs) {
        // Served from cache; a background refresh failure is already reported through onEvent.
        this.fetch(scope, 'refresh').catch(() => {});
      }
      // One settled promise per token for every caller: a login (or a pooled transaction) that
      // finds the token cached allocates nothing here.
      return (cached.served ??= Promise.resolve(cached.token));
    }
    return this.waitFor(scope, this.fetch(scope, 'missing'), options?.signal).then((entry) => entry.token);
  }

  /** When the cached token for `scope` expires, if there is one. */
  expiresOn(scope: string): number | undefined {
    return this.entries.get(scope)?.expiresOnTimestamp;
  }

  /** How the credential source is doing for `scope`. */
  status(scope: string): TokenSourceStatus {
    const outcome = this.outcomes.get(scope) ?? { state: 'ok' as const };
    const running = this.inflight.get(scope);
    return running ? { ...outcome, fetchingSince: running.since } : { ...outcome };
  }

  /** Drops cached tokens (all, or one scope): `azdb db logout`. */
  clear(scope?: string): void {
    if (scope === undefined) this.entries.clear();
    else this.entries.delete(scope);
  }

  private fetch(scope: string, reason: 'missing' | 'refresh'): Promise<Entry> {
    const running = this.inflight.get(scope);
    if (running) return running.promise;
    const promise = this.fetchOnce(scope, reason).finally(() => this.inflight.delete(scope));
    this.inflight.set(scope, { promise, since: this.now() });
    return promise;
  }

  /** The shared fetch, or this caller's abort, whichever comes first. */
  private waitFor(scope: string, fetching: Promise<Entry>, signal: AbortSignal | undefined): Promise<Entry> {
    if (!signal) return fetching;
    return new Promise<Entry>((resolve, reject) => {
      const onAbort = () => reject(this.abandonedWait(scope, signal.reason));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      fetching.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private abandonedWait(scope: string, reason: unknown): ExternalError {
    const since = this.inflight.get(scope)?.since;
    const waited = since === undefined ? '' : `; the credential has not answered for ${formatSeconds(Math.max(0, this.now() - since))} (azdb gives up on it after ${formatSeconds(this.fetchTimeoutMs)})`;
    const why = reason instanceof Error ? errorMessage(reason) : 'cancelled';
    return new ExternalError(`stopped waiting for an Entra token for ${scope}: ${why}${waited}`, {
      hint: 'Run `azdb creds` to see which credential source works and how to fix the others.',
      cause: reason,
    });
  }

  private async fetchOnce(scope: string, reason: 'missing' | 'refresh'): Promise<Entry> {
    this.stats.fetches += 1;
    this.onEvent({ type: 'fetch', scope, reason });
    let result: AccessToken | null;
    try {
      result = await withTimeLimit(this.fetchTimeoutMs, NEVER, (abortSignal) => this.credential.getToken(scope, { abortSignal }));
      if (!result) throw new Error('the credential returned no token');
    } catch (error) {
      throw this.failed(scope, error);
    }
    const entry: Entry = { token: result.token, expiresOnTimestamp: result.expiresOnTimestamp };
    this.entries.set(scope, entry);
    this.outcomes.set(scope, { state: 'ok', since: this.now() });
    this.onEvent({ type: 'fetched', scope, expiresOnTimestamp: entry.expiresOnTimestamp });
    return entry;
  }

  private failed(scope: string, error: unknown): ExternalError {
    this.stats.failures += 1;
    const stuck = error instanceof TimeLimitExceeded;
    if (stuck) this.stats.timeouts += 1;
    const { source, reason } = stuck
      ? { source: STUCK_SOURCE, reason: `no answer within ${formatSeconds(this.fetchTimeoutMs)}; azdb abandoned the attempt and the next login starts a new one` }
      : describeCredentialFailure(error);
    const state = stuck ? 'stuck' : 'failing';
    const previous = this.outcomes.get(scope);
    const message = `${source} failed: ${errorMessage(reason)}`;
    this.outcomes.set(scope, { state, error: message, since: previous?.state === state ? previous.since! : this.now() });
    const stillValid = (this.entries.get(scope)?.expiresOnTimestamp ?? 0) - this.now() > this.minValidityMs;
    this.onEvent({ type: 'fetch-failed', scope, source, reason, servedCached: stillValid, stuck });
    return new ExternalError(`could not get an Entra token for ${scope}: ${message}`, {
      hint: stuck
        ? 'The credential source is stuck (e.g. a managed identity endpoint that takes the request and never answers). Run `azdb creds` to probe each source with its own time limit.'
        : 'Run `azdb creds` to see which credential source works and how to fix the others.',
      cause: error,
    });
  }
}
