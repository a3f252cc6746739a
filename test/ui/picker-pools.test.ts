/** The picker's pools: the reducer, the keys and the layout of the pools overlay (pure). */
import { describe, expect, it } from 'vitest';
import type { TuiPool } from '../../src/core/api/picker.js';
import { keyBar, keyToAction, pickerMode } from '../../src/ui/picker/input.js';
import { initialPickerState, mainHeight, pickerReducer, poolLines, shortIdentity, type PickerAction, type PickerState } from '../../src/ui/picker/state.js';
import { poolSummary } from '../../src/ui/picker/views.js';
import { database } from './fake-api.js';

const OID = 'oid:2f9c41d0-7a51-4c1e-9d2e-0d6a4c2b9f11@72f988bf-86f1-41af-91ab-2d7cd011db47';

function pool(overrides: Partial<TuiPool> = {}): TuiPool {
  return {
    tunnelId: 't1',
    name: 'orders',
    listener: '127.0.0.1:41000',
    mode: 'session',
    maxServerConnections: 20,
    keys: [{ dbUser: 'azdb-demo', dbName: 'orders', identity: OID, clientsConnected: 3, clientsActive: 2, clientsWaiting: 1, clientsPinned: 0, serversActive: 2, serversIdle: 1, serversOpening: 0, logins: 4 }],
    ...overrides,
  };
}

function ready(): PickerState {
  return pickerReducer(initialPickerState({ columns: 100, rows: 30 }), { type: 'loaded', databases: [database('orders')] });
}

const run = (state: PickerState, ...actions: PickerAction[]) => actions.reduce(pickerReducer, state);

describe('pools in the picker', () => {
  it('o opens the pools overlay only when a pool is there, and says why not otherwise', () => {
    const none = run(ready(), { type: 'open-pools' });
    expect(none.overlay).toEqual({ kind: 'none' });
    expect(none.notice).toContain('No pools: open a tunnel (t)');
    const open = run(ready(), { type: 'pools', pools: [pool()] }, { type: 'open-pools' });
    expect(open.overlay).toEqual({ kind: 'pools' });
    expect(pickerMode(open)).toBe('pools');
    // esc and o both go back; ? opens the help over it.
    expect(keyToAction(open, 'o', {})).toEqual({ type: 'back' });
    expect(run(open, { type: 'back' }).overlay).toEqual({ kind: 'none' });
    expect(run(open, { type: 'help' }).overlay).toEqual({ kind: 'help', back: { kind: 'pools' } });
    expect(keyBar(open).map((h) => `${h.keys} ${h.label}`)).toEqual(['esc back', '? help', 'Q quit']);
  });

  it('o reaches the pools from the list and from a tunnel\'s details', () => {
    const list = run(ready(), { type: 'pools', pools: [pool()] });
    expect(keyToAction(list, 'o', {})).toEqual({ type: 'open-pools' });
    const tunnel: PickerState = { ...list, overlay: { kind: 'tunnel', tunnelId: 't1', showPassword: false } };
    expect(keyToAction(tunnel, 'o', {})).toEqual({ type: 'open-pools' });
    expect(run(tunnel, { type: 'open-pools' }).overlay).toEqual({ kind: 'pools' });
  });

  it('keeps the state object when the counters have not moved (no re-render every second)', () => {
    const state = run(ready(), { type: 'pools', pools: [pool()] });
    expect(pickerReducer(state, { type: 'pools', pools: [pool()] })).toBe(state);
    const moved = pickerReducer(state, { type: 'pools', pools: [pool({ keys: [] })] });
    expect(moved.pools[0]!.keys).toEqual([]);
  });

  it('gives the overlay its title, a heading per pool and two lines a key', () => {
    expect(poolLines([pool()])).toBe(1 + 1 + 2);
    expect(poolLines([pool(), pool({ tunnelId: 't2', keys: [] })])).toBe(1 + 3 + 2);
    const state = run(ready(), { type: 'pools', pools: [pool()] }, { type: 'open-pools' });
    expect(mainHeight(state)).toBe(4);
  });

  it('shortens each id of an identity to 8 characters and leaves short ones whole', () => {
    expect(shortIdentity(OID)).toBe('oid:2f9c41d0…@72f988bf…');
    expect(shortIdentity('appid:abc@t1')).toBe('appid:abc@t1');
    expect(shortIdentity('token:0123456789abcdef')).toBe('token:01234567…');
  });

  it('sums a pool\'s keys into the tunnel row\'s summary', () => {
    const two = pool({ keys: [...pool().keys, { ...pool().keys[0]!, identity: 'appid:x@y', serversActive: 1, serversIdle: 0, serversOpening: 1, clientsWaiting: 0 }] });
    expect(poolSummary(two)).toBe('pool: servers 3 active, 1 idle, 1 opening; 1 waiting');
    expect(poolSummary(pool({ keys: [] }))).toBe('pool: servers 0 active, 0 idle; 0 waiting');
  });
});
