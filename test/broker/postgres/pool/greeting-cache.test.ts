import { describe, expect, it } from 'vitest';
import { GreetingCache, greetingSignature } from '../../../../src/broker/postgres/pool/greeting-cache.js';

const reported = (applicationName: string) => new Map([['TimeZone', 'UTC'], ['application_name', applicationName], ['DateStyle', 'ISO, MDY']]);

describe('greetingSignature', () => {
  it('names settings by lower-cased name and value in any order, application_name by presence only', () => {
    const a = greetingSignature({ DateStyle: 'ISO', application_name: 'one', TimeZone: 'UTC' })!;
    const b = greetingSignature({ timezone: 'UTC', datestyle: 'ISO', APPLICATION_NAME: 'two' })!;
    expect(a.name).toBe(b.name);
    expect([a.applicationName, b.applicationName]).toEqual(['one', 'two']);
    expect(greetingSignature({ timezone: 'UTC', datestyle: 'ISO' })!.name).not.toBe(a.name);
    expect(greetingSignature({ timezone: 'Europe/Paris', datestyle: 'ISO', application_name: 'one' })!.name).not.toBe(a.name);
  });

  it('has none for an application_name the server would not report as sent', () => {
    expect(greetingSignature({ application_name: 'café' })).toBeUndefined();
    expect(greetingSignature({ application_name: 'x'.repeat(64) })).toBeUndefined();
    expect(greetingSignature({ application_name: 'x'.repeat(63) })).toBeDefined();
  });
});

describe('GreetingCache', () => {
  it('greets a client like the last one with its settings, with its own application_name', () => {
    const cache = new GreetingCache();
    const first = greetingSignature({ application_name: 'first', TimeZone: 'UTC' })!;
    expect(cache.lookup('k', first)).toBeUndefined();
    cache.remember('k', first, reported('first'));
    expect(cache.lookup('k', greetingSignature({ timezone: 'UTC', application_name: 'second' })!)).toEqual(reported('second'));
    expect(cache.lookup('other key', first)).toBeUndefined();
    expect(cache.lookup('k', greetingSignature({ TimeZone: 'UTC' })!)).toBeUndefined();
  });

  it('keeps what it was given even when the connection reports other values later', () => {
    const cache = new GreetingCache();
    const signature = greetingSignature({})!;
    const live = reported('');
    cache.remember('k', signature, live);
    live.set('TimeZone', 'Asia/Tokyo');
    expect(cache.lookup('k', signature)?.get('TimeZone')).toBe('UTC');
  });

  it('forgets the oldest entries beyond its size', () => {
    const cache = new GreetingCache(2);
    const signature = greetingSignature({})!;
    for (const key of ['a', 'b', 'c']) cache.remember(key, signature, reported(''));
    expect(['a', 'b', 'c'].map((key) => cache.has(key, signature))).toEqual([false, true, true]);
  });
});
