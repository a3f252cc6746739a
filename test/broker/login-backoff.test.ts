/**
 * The per-source login backoff on a fake clock: free failures, doubling delays to a cap,
 * refusals while a source waits, forgetting on success or quiet, and a bounded table.
 */
import { describe, expect, it } from 'vitest';
import { LoginBackoff, sourceKey } from '../../src/broker/login-backoff.js';

function withClock(policy: ConstructorParameters<typeof LoginBackoff>[0] = {}) {
  const clock = { now: 1_000_000 };
  return { clock, backoff: new LoginBackoff(policy, () => clock.now) };
}

describe('LoginBackoff', () => {
  it('answers the first failures at once, then delays doubling up to the cap', () => {
    const { backoff } = withClock({ freeFailures: 3, firstDelayMs: 500, maxDelayMs: 4_000 });
    const delays = Array.from({ length: 8 }, () => backoff.failed('10.0.0.1').delayMs);
    expect(delays).toEqual([0, 0, 0, 500, 1_000, 2_000, 4_000, 4_000]);
  });

  it('refuses a source while it waits out its delay, with the time left, and admits it after', () => {
    const { clock, backoff } = withClock({ freeFailures: 1, firstDelayMs: 10_000 });
    backoff.failed('10.0.0.1');
    expect(backoff.admit('10.0.0.1')).toEqual({ allowed: true });
    expect(backoff.failed('10.0.0.1').delayMs).toBe(10_000);
    clock.now += 4_000;
    expect(backoff.admit('10.0.0.1')).toMatchObject({ allowed: false, retryInMs: 6_000 });
    expect(backoff.admit('10.0.0.2')).toEqual({ allowed: true });
    clock.now += 6_000;
    expect(backoff.admit('10.0.0.1')).toEqual({ allowed: true });
  });

  it('forgets a source after a correct password', () => {
    const { backoff } = withClock({ freeFailures: 2 });
    for (let i = 0; i < 5; i++) backoff.failed('10.0.0.1');
    backoff.succeeded('10.0.0.1');
    expect(backoff.admit('10.0.0.1')).toEqual({ allowed: true });
    expect(backoff.failed('10.0.0.1')).toMatchObject({ failures: 1, delayMs: 0 });
  });

  it('forgets a source after a quiet period', () => {
    const { clock, backoff } = withClock({ freeFailures: 2, forgetAfterMs: 60_000 });
    for (let i = 0; i < 4; i++) backoff.failed('10.0.0.1');
    clock.now += 59_999;
    expect(backoff.failed('10.0.0.1').failures).toBe(5);
    clock.now += 60_000;
    expect(backoff.failed('10.0.0.1')).toMatchObject({ failures: 1, delayMs: 0 });
  });

  it('announces a source entering backoff once per window, not every failure or refusal', () => {
    const { clock, backoff } = withClock({ freeFailures: 1, firstDelayMs: 1_000, announceEveryMs: 60_000 });
    expect(backoff.failed('10.0.0.1').announce).toBe(false);
    expect(backoff.failed('10.0.0.1').announce).toBe(true);
    expect(backoff.admit('10.0.0.1')).toMatchObject({ allowed: false, announce: false });
    clock.now += 2_000;
    expect(backoff.failed('10.0.0.1').announce).toBe(false);
    clock.now += 60_000;
    expect(backoff.failed('10.0.0.1').announce).toBe(true);
  });

  it('remembers at most maxSources, dropping the least recently failing', () => {
    const { backoff } = withClock({ freeFailures: 0, firstDelayMs: 1_000, maxSources: 100 });
    backoff.failed('10.0.0.1');
    for (let i = 0; i < 1_000; i++) backoff.failed(`10.1.${i >> 8}.${i & 255}`);
    expect(backoff.size).toBe(100);
    expect(backoff.admit('10.0.0.1')).toEqual({ allowed: true });
    expect(backoff.admit('10.1.3.231')).toMatchObject({ allowed: false });
  });

  it('counts an IPv6 client by its /64 and an IPv4-mapped one by its IPv4 address', () => {
    expect(sourceKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(sourceKey('2001:db8:0:1::5')).toBe('2001:db8:0:1::/64');
    expect(sourceKey('2001:0db8:0000:0001:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    const { backoff } = withClock({ freeFailures: 0, firstDelayMs: 1_000 });
    backoff.failed('2001:db8:0:1::5');
    expect(backoff.admit('2001:db8:0:1:ffff::9')).toMatchObject({ allowed: false });
    expect(backoff.admit('2001:db8:0:2::5')).toEqual({ allowed: true });
  });
});
