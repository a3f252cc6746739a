import { describe, expect, it } from 'vitest';
import { fuzzyFilter, fuzzyScore } from '../../src/ui/fuzzy.js';

describe('fuzzy filter', () => {
  it('matches characters in order, case-insensitively', () => {
    expect(fuzzyScore('ord', 'orders')).toBeDefined();
    expect(fuzzyScore('ORD', 'orders')).toBeDefined();
    expect(fuzzyScore('odr', 'orders')).toBeDefined(); // o..d..r
    expect(fuzzyScore('sro', 'orders')).toBeUndefined();
    expect(fuzzyScore('', 'anything')).toBe(0);
  });

  it('ranks consecutive and word-start matches higher', () => {
    expect(fuzzyScore('ord', 'orders')!).toBeGreaterThan(fuzzyScore('ord', 'legacy-o-r-d')!);
    expect(fuzzyScore('inv', 'inventory')!).toBeGreaterThan(fuzzyScore('inv', 'main-v')!);
  });

  it('filters over names and labels, names first, and keeps the order on ties', () => {
    const items = [
      { name: 'legacy', labels: { env: 'prod' } },
      { name: 'orders', labels: { env: 'prod' } },
      { name: 'inventory', labels: { env: 'staging' } },
      { name: 'shopdb', labels: { team: 'orders-team' } },
    ];
    expect(fuzzyFilter(items, 'orders').map((i) => i.name)).toEqual(['orders', 'shopdb']);
    expect(fuzzyFilter(items, 'staging').map((i) => i.name)).toEqual(['inventory']);
    expect(fuzzyFilter(items, 'env=prod').map((i) => i.name)).toEqual(['legacy', 'orders']);
    expect(fuzzyFilter(items, '  ').map((i) => i.name)).toEqual(['legacy', 'orders', 'inventory', 'shopdb']);
    expect(fuzzyFilter(items, 'zzz')).toEqual([]);
  });
});
