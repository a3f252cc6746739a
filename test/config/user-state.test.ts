import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addRecentConnection,
  createMemoryUserStateStore,
  createUserStateStore,
  MAX_RECENT_CONNECTIONS,
  type RecentConnection,
  type UserStateStore,
} from '../../src/config/user-state.js';

const at = (minute: number): string => new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString();

function behavesAsAStore(make: () => UserStateStore): void {
  it('remembers the port of each database\'s tunnels', () => {
    const store = make();
    expect(store.tunnelPort('orders')).toBeUndefined();
    expect(store.tunnelPort('constructor')).toBeUndefined();
    store.rememberTunnelPort('orders', 15432);
    store.rememberTunnelPort('shopdb', 13306);
    store.rememberTunnelPort('orders', 15433);
    expect(store.tunnelPort('orders')).toBe(15433);
    expect(store.tunnelPort('shopdb')).toBe(13306);
  });

  it('records connections most recent first, without duplicates', () => {
    const store = make();
    expect(store.recentConnections()).toEqual([]);
    store.recordConnection({ name: 'orders', db_user: 'alice', db_name: 'orders', at: at(1) });
    store.recordConnection({ name: 'billing', db_user: 'alice', db_name: '', at: at(2) });
    store.recordConnection({ name: 'orders', db_user: 'bob', db_name: 'orders', at: at(3) });
    store.recordConnection({ name: 'orders', db_user: 'alice', db_name: 'orders', at: new Date(at(4)) });
    expect(store.recentConnections()).toEqual([
      { name: 'orders', db_user: 'alice', db_name: 'orders', at: at(4) },
      { name: 'orders', db_user: 'bob', db_name: 'orders', at: at(3) },
      { name: 'billing', db_user: 'alice', db_name: '', at: at(2) },
    ]);
  });

  it('keeps at most 20 connections', () => {
    const store = make();
    for (let i = 0; i < 25; i++) store.recordConnection({ name: `db${i}`, db_user: 'u', db_name: 'd', at: at(i) });
    const recent = store.recentConnections();
    expect(recent).toHaveLength(MAX_RECENT_CONNECTIONS);
    expect(recent[0]?.name).toBe('db24');
    expect(recent.at(-1)?.name).toBe('db5');
  });

  it('stamps a connection with the current time when none is given', () => {
    const store = make();
    const before = Date.now();
    store.recordConnection({ name: 'a', db_user: 'u', db_name: 'd' });
    const stamped = Date.parse(store.recentConnections()[0]?.at ?? '');
    expect(stamped).toBeGreaterThanOrEqual(before - 1000);
    expect(stamped).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('saves wizard progress as a copy', () => {
    const store = make();
    expect(store.wizardProgress()).toBeUndefined();
    const progress = { step: 3, completed: ['credentials', 'iam-role'], answers: { subscription: 'sub-1' } };
    store.saveWizardProgress(progress);
    progress.completed.push('changed later');
    expect(store.wizardProgress()).toEqual({
      step: 3,
      completed: ['credentials', 'iam-role'],
      answers: { subscription: 'sub-1' },
    });
  });

  it('clears everything', () => {
    const store = make();
    store.recordConnection({ name: 'a', db_user: 'u', db_name: 'd', at: at(1) });
    store.saveWizardProgress({ step: 1, completed: [], answers: {} });
    store.clear();
    expect(store.recentConnections()).toEqual([]);
    expect(store.wizardProgress()).toBeUndefined();
  });
}

describe('addRecentConnection', () => {
  it('is pure', () => {
    const list: RecentConnection[] = [{ name: 'a', db_user: 'u', db_name: 'd', at: at(1) }];
    const next = addRecentConnection(list, { name: 'b', db_user: 'u', db_name: 'd', at: at(2) });
    expect(list).toHaveLength(1);
    expect(next.map((c) => c.name)).toEqual(['b', 'a']);
  });
});

describe('memory user state', () => {
  behavesAsAStore(() => createMemoryUserStateStore());

  it('starts from given state', () => {
    const store = createMemoryUserStateStore({ recent: [{ name: 'a', db_user: 'u', db_name: 'd', at: at(1) }] });
    expect(store.recentConnections().map((c) => c.name)).toEqual(['a']);
  });
});

describe('conf-backed user state', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'azdb-state-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  behavesAsAStore(() => createUserStateStore({ cwd: dir }));

  it('persists across instances, in a private file in the given directory', async () => {
    const first = createUserStateStore({ cwd: dir });
    first.recordConnection({ name: 'orders', db_user: 'alice', db_name: 'orders', at: at(1) });
    first.saveWizardProgress({ step: 2, completed: ['credentials'], answers: { tenant: 't' } });

    const second = createUserStateStore({ cwd: dir });
    expect(second.recentConnections()).toEqual([{ name: 'orders', db_user: 'alice', db_name: 'orders', at: at(1) }]);
    expect(second.wizardProgress()).toEqual({ step: 2, completed: ['credentials'], answers: { tenant: 't' } });

    const file = join(dir, 'user-state.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toHaveProperty('recent');
    expect((await stat(file)).mode & 0o077).toBe(0);
  });

  it('survives a corrupt or hand-edited state file', async () => {
    const file = join(dir, 'user-state.json');
    await writeFile(file, '{ not json');
    expect(createUserStateStore({ cwd: dir }).recentConnections()).toEqual([]);

    await writeFile(
      file,
      JSON.stringify({
        recent: [{ name: 'ok', db_user: 'u', db_name: 'd', at: at(1) }, { name: 42 }, 'junk'],
        tunnel_ports: { orders: 15432, bad: 'x', zero: 0, huge: 70000 },
        wizard: { step: 'three' },
      }),
    );
    const store = createUserStateStore({ cwd: dir });
    expect(store.recentConnections().map((c) => c.name)).toEqual(['ok']);
    expect([store.tunnelPort('orders'), store.tunnelPort('bad'), store.tunnelPort('zero'), store.tunnelPort('huge')]).toEqual([15432, undefined, undefined, undefined]);
    expect(store.wizardProgress()).toBeUndefined();
  });
});
