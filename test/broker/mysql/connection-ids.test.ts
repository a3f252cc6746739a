import { describe, expect, it } from 'vitest';
import { MySqlConnectionIds } from '../../../src/broker/mysql/connection-ids.js';

describe('MySqlConnectionIds', () => {
  it('mints unique ids in the upper half of the 32-bit range and names a thread only on the same server', () => {
    const ids = new MySqlConnectionIds();
    const a = ids.mint('db1:3306');
    const b = ids.mint('db2:3306');
    expect(a).not.toBe(b);
    for (const id of [a, b]) expect(id >= 0x8000_0000 && id <= 0xffff_ffff).toBe(true);
    expect(ids.threadOf(a, 'db1:3306')).toBeUndefined(); // not logged in upstream yet
    ids.bind(a, 17);
    expect(ids.threadOf(a, 'db1:3306')).toBe(17);
    expect(ids.threadOf(a, 'db2:3306')).toBeUndefined();
    ids.release(a);
    expect(ids.threadOf(a, 'db1:3306')).toBeUndefined();
  });
});
