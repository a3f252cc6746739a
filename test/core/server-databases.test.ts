/**
 * The names the database-name prompt offers, where no server needs asking: the roles' own list
 * (minus denied names) and the order (recent first, then by name, MySQL's own schemas last).
 * Asking the real servers is in picker.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { databaseNamesFor, orderDatabaseNames } from '../../src/core/server-databases.js';
import type { Runtime } from '../../src/core/runtime.js';

function runtimeAllowing(dbNames: string[], deniedNames: string[] = []): { rt: Runtime; asked: string[] } {
  const asked: string[] = [];
  const db = { name: 'orders', protocol: 'postgres' as const };
  const rt = {
    database: (name: string) => ({ ...db, name }),
    allowed: () => ({ dbUsers: ['alice'], dbNames, deniedUsers: [], deniedNames }),
    tokens: {
      getToken: async () => {
        asked.push('token');
        throw new Error('no server may be asked');
      },
    },
  } as unknown as Runtime;
  return { rt, asked };
}

describe('database names for the prompt', () => {
  it('lists only the names the roles allow, without asking the server, recent first, denied ones left out', async () => {
    const { rt, asked } = runtimeAllowing(['billing', 'orders', 'audit'], ['audit']);
    const recent = [
      { name: 'orders', db_user: 'alice', db_name: 'orders', at: '2025-01-02T00:00:00Z' },
      { name: 'other', db_user: 'alice', db_name: 'billing', at: '2025-01-03T00:00:00Z' },
    ];
    expect(await databaseNamesFor(rt, 'orders', 'alice', { recent })).toEqual(['orders', 'billing']);
    expect(asked).toEqual([]);
  });

  it('orders recent names first (most recent first), then by name, MySQL\'s own schemas last', () => {
    expect(orderDatabaseNames(['sys', 'shop', 'information_schema', 'azure_sys', 'mysql', 'analytics'], ['shop'])).toEqual([
      'shop',
      'analytics',
      'azure_sys',
      'information_schema',
      'mysql',
      'sys',
    ]);
    expect(orderDatabaseNames(['b', 'a', 'c', 'a'], ['c', 'b'])).toEqual(['c', 'b', 'a']);
  });
});
