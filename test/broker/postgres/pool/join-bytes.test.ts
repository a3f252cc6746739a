import { describe, expect, it } from 'vitest';
import { joinBytes } from '../../../../src/broker/postgres/pool/join-bytes.js';

describe('joinBytes', () => {
  it('gives consecutive views of one chunk back as the view that spans them, without a copy', () => {
    const chunk = Buffer.from('abcdefghij');
    const joined = joinBytes([chunk.subarray(1, 3), chunk.subarray(3, 4), chunk.subarray(4, 8)]);
    expect(joined.toString()).toBe('bcdefgh');
    chunk[2] = 0x5a;
    expect(joined.toString()).toBe('bZdefgh');
  });

  it('copies parts that are not consecutive in the same memory, in order', () => {
    const chunk = Buffer.from('abcdefghij');
    expect(joinBytes([chunk.subarray(0, 2), chunk.subarray(3, 5)]).toString()).toBe('abde');
    expect(joinBytes([chunk.subarray(0, 2), Buffer.from('xy'), chunk.subarray(2, 3)]).toString()).toBe('abxyc');
    expect(joinBytes([chunk.subarray(2, 4), chunk.subarray(0, 2)]).toString()).toBe('cdab');
    expect(joinBytes([])).toHaveLength(0);
  });
});
