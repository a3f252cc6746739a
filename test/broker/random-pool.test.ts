import { describe, expect, it } from 'vitest';
import { pooledRandomBytes, randomUuid } from '../../src/broker/random-pool.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('makes distinct version 4 UUIDs, across refills of the random block', () => {
    // 16 bytes each: 1000 ids take four 4 KiB blocks.
    const ids = Array.from({ length: 1000 }, () => randomUuid());
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses every hex digit in every free position (the bytes are not truncated or fixed)', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let n = 0; n < 2000; n++) [...randomUuid()].forEach((c, i) => seen[i]!.add(c));
    for (const [i, chars] of seen.entries()) {
      if ([8, 13, 18, 23].includes(i)) expect([...chars]).toEqual(['-']);
      else if (i === 14) expect([...chars]).toEqual(['4']);
      else if (i === 19) expect([...chars].sort()).toEqual(['8', '9', 'a', 'b']);
      else expect(chars.size).toBe(16);
    }
  });

  it('returns strings that do not change when the next one is made', () => {
    const first = randomUuid();
    const copy = `${first}`;
    randomUuid();
    expect(first).toBe(copy);
  });
});

describe('pooledRandomBytes', () => {
  it('hands out fresh bytes each call, never the same view twice', () => {
    const a = Buffer.from(pooledRandomBytes(32));
    const b = Buffer.from(pooledRandomBytes(32));
    expect(a.equals(b)).toBe(false);
    expect(pooledRandomBytes(4096)).toHaveLength(4096);
  });
});
