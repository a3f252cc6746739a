/**
 * Slowing down password guessing against a broker listener, per client source address: a few
 * wrong passwords are free, then each further one is answered only after a delay that doubles up
 * to a cap, and while a source waits out its delay its other connections are refused without
 * their password being checked (so parallel connections guess no faster). A correct password or a
 * quiet period forgets the source. Loopback sources are treated like any other: a tunnel on a
 * shared machine can be brute-forced by its other users.
 *
 * The table of sources is bounded; the least recently failing source is forgotten first, so a
 * scanner with many addresses cannot grow it.
 */

export interface LoginBackoffPolicy {
  /** Wrong passwords a source may send before its answers are delayed. */
  freeFailures: number;
  /** The delay after the first failure beyond the free ones; doubles with each further one. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** A source without a failure for this long starts over. */
  forgetAfterMs: number;
  /** At most this many sources are remembered. */
  maxSources: number;
  /** A source in backoff is announced (logged) at most once per this long. */
  announceEveryMs: number;
}

export const DEFAULT_LOGIN_BACKOFF: LoginBackoffPolicy = {
  freeFailures: 5,
  firstDelayMs: 500,
  maxDelayMs: 30_000,
  forgetAfterMs: 10 * 60_000,
  maxSources: 10_000,
  announceEveryMs: 60_000,
};

/** Whether a source may try a password now. `announce`: the first refusal worth a log line. */
export type LoginAdmission = { allowed: true } | { allowed: false; retryInMs: number; announce: boolean };

/** What follows a wrong password: wait `delayMs` before answering. */
export interface LoginFailure {
  failures: number;
  delayMs: number;
  /** The source just entered backoff, or has not been announced for a while. */
  announce: boolean;
}

interface SourceState {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
  announcedAt?: number;
}

export class LoginBackoff {
  readonly policy: LoginBackoffPolicy;
  private readonly sources = new Map<string, SourceState>();

  constructor(policy: Partial<LoginBackoffPolicy> = {}, private readonly now: () => number = Date.now) {
    this.policy = { ...DEFAULT_LOGIN_BACKOFF, ...policy };
  }

  /** Sources remembered now. */
  get size(): number {
    return this.sources.size;
  }

  /** Before a password is checked. */
  admit(address: string | undefined): LoginAdmission {
    const state = this.current(sourceKey(address));
    const now = this.now();
    if (!state || now >= state.blockedUntil) return { allowed: true };
    return { allowed: false, retryInMs: state.blockedUntil - now, announce: this.announce(state, now) };
  }

  /** After a wrong password. */
  failed(address: string | undefined): LoginFailure {
    const key = sourceKey(address);
    const now = this.now();
    const state = this.current(key) ?? { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    state.failures += 1;
    state.lastFailureAt = now;
    const beyond = state.failures - this.policy.freeFailures;
    const delayMs = beyond > 0 ? Math.min(this.policy.firstDelayMs * 2 ** Math.min(beyond - 1, 30), this.policy.maxDelayMs) : 0;
    state.blockedUntil = now + delayMs;
    // Re-inserted last: the map's first entry is the least recently failing source.
    this.sources.delete(key);
    if (this.sources.size >= this.policy.maxSources) this.sources.delete(this.sources.keys().next().value!);
    this.sources.set(key, state);
    return { failures: state.failures, delayMs, announce: delayMs > 0 && this.announce(state, now) };
  }

  /** After a correct password: the source starts over. */
  succeeded(address: string | undefined): void {
    this.sources.delete(sourceKey(address));
  }

  private current(key: string): SourceState | undefined {
    const state = this.sources.get(key);
    if (state && this.now() - state.lastFailureAt >= this.policy.forgetAfterMs) {
      this.sources.delete(key);
      return undefined;
    }
    return state;
  }

  private announce(state: SourceState, now: number): boolean {
    if (state.announcedAt !== undefined && now - state.announcedAt < this.policy.announceEveryMs) return false;
    state.announcedAt = now;
    return true;
  }
}

/**
 * The source a client is counted as: its IPv4 address, or the /64 of its IPv6 address (one
 * host usually has a whole /64 to pick addresses from).
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (!plain.includes(':')) return plain;
  const [head = '', tail] = plain.toLowerCase().split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
