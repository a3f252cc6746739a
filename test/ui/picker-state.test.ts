import { describe, expect, it } from 'vitest';
import type { CoreEvent, CoreEventBody } from '../../src/core/api/picker.js';
import { helpRows, inputToActions, keyBar, keyToAction, pickerMode } from '../../src/ui/picker/input.js';
import { windowStart } from '../../src/ui/layout.js';
import {
  initialPickerState,
  listHeight,
  loginStep,
  mainHeight,
  orderDatabases,
  pickerReducer,
  queriesLogin,
  selectedDatabase,
  visibleDatabases,
  type PickerAction,
  type PickerState,
} from '../../src/ui/picker/state.js';
import { database } from './fake-api.js';

const DATABASES = [
  database('inventory', { labels: { env: 'staging' } }),
  database('legacy', { dbUsers: ['alice', 'bob'], dbNames: ['orders', 'postgres'] }),
  database('orders', { recent: [{ dbUser: 'azdb-demo', dbName: 'orders', at: '2025-01-02T00:00:00Z' }] }),
  database('shopdb', { protocol: 'mysql', defaultDbName: '', dbNames: ['*'] }),
];

function ready(databases = DATABASES, size = { columns: 100, rows: 30 }): PickerState {
  return pickerReducer(initialPickerState(size), { type: 'loaded', databases });
}

function run(state: PickerState, ...actions: PickerAction[]): PickerState {
  return actions.reduce(pickerReducer, state);
}

let seq = 0;
function event(body: CoreEventBody): CoreEvent {
  return { ...body, seq: ++seq, at: '2025-01-01T12:34:56.000Z' } as CoreEvent;
}

describe('picker reducer', () => {
  it('starts loading, then lists recent databases first and the rest by name', () => {
    const start = initialPickerState();
    expect(start.pending).toEqual({ kind: 'load' });
    expect(start.busy).toMatch(/Loading/);
    const state = ready();
    expect(state.status).toBe('ready');
    expect(state.pending).toBeUndefined();
    expect(visibleDatabases(state).map((d) => d.name)).toEqual(['orders', 'inventory', 'legacy', 'shopdb']);
  });

  it('orders by the most recent connection', () => {
    const dbs = [database('a', { recent: [{ dbUser: 'u', dbName: 'd', at: '2025-01-01T00:00:00Z' }] }), database('b', { recent: [{ dbUser: 'u', dbName: 'd', at: '2025-02-01T00:00:00Z' }] }), database('c')];
    expect(orderDatabases(dbs).map((d) => d.name)).toEqual(['b', 'a', 'c']);
  });

  it('moves within bounds', () => {
    let state = run(ready(), { type: 'move', delta: -1 });
    expect(state.cursor).toBe(0);
    state = run(state, { type: 'move', delta: 2 });
    expect(selectedDatabase(state)?.name).toBe('legacy');
    state = run(state, { type: 'move-to', where: 'bottom' });
    expect(selectedDatabase(state)?.name).toBe('shopdb');
    state = run(state, { type: 'move', delta: 10 });
    expect(state.cursor).toBe(3);
    state = run(state, { type: 'move-to', where: 'top' });
    expect(state.cursor).toBe(0);
  });

  it('filters over the protocol and the users a row shows too; ctrl+u clears what was typed', () => {
    let state = run(ready(), { type: 'filter-start' }, { type: 'type', text: 'mysql' });
    expect(visibleDatabases(state).map((d) => d.name)).toEqual(['shopdb']);
    state = run(state, { type: 'clear-input' }, { type: 'type', text: 'bob' });
    expect(visibleDatabases(state).map((d) => d.name)).toEqual(['legacy']);
    expect(keyToAction(state, 'u', { ctrl: true })).toEqual({ type: 'clear-input' });
    state = run(state, { type: 'clear-input' });
    expect(state.filter).toBe('');
    expect(state.filtering).toBe(true);
    expect(visibleDatabases(state)).toHaveLength(4);
  });

  it('filters as typed; enter applies, esc clears', () => {
    let state = run(ready(), { type: 'filter-start' }, { type: 'type', text: 'inv' });
    expect(state.filtering).toBe(true);
    expect(visibleDatabases(state).map((d) => d.name)).toEqual(['inventory']);
    state = run(state, { type: 'backspace' }, { type: 'backspace' }, { type: 'backspace' }, { type: 'type', text: 'staging' });
    expect(visibleDatabases(state).map((d) => d.name)).toEqual(['inventory']); // by label
    state = run(state, { type: 'accept' });
    expect(state.filtering).toBe(false);
    expect(state.filter).toBe('staging');
    state = run(state, { type: 'back' });
    expect(state.filter).toBe('');
    expect(visibleDatabases(state)).toHaveLength(4);
  });

  it('keeps the selection on the same database across a reload', () => {
    const state = run(ready(), { type: 'move', delta: 2 }); // legacy
    const reloaded = run(state, { type: 'reload' }, { type: 'loaded', databases: [database('aaa'), ...DATABASES] });
    expect(selectedDatabase(reloaded)?.name).toBe('legacy');
  });

  describe('login choice', () => {
    it('skips steps the roles leave one value for, and offers recent names first where any is allowed', () => {
      expect(loginStep(DATABASES[2]!, 'user')).toEqual({ value: 'azdb-demo' });
      // Any name: the recent ones, the default, and the server's databases once listed.
      expect(loginStep(DATABASES[2]!, 'name')).toEqual({ field: 'name', choices: ['orders', 'postgres'], cursor: 0, free: true, input: '', listing: { state: 'loading' } });
      expect(loginStep(DATABASES[1]!, 'user')).toEqual({ field: 'user', choices: ['alice', 'bob'], cursor: 0, free: false, input: '' });
      expect(loginStep(DATABASES[3]!, 'name')).toMatchObject({ choices: [''], free: true });
      expect(loginStep(database('x', { dbNames: ['only'] }), 'name')).toEqual({ value: 'only' });
    });

    it('adds the server\'s databases to the name step once listed, keeping the cursor on its name; a late or stray answer changes nothing', () => {
      let state = run(ready(), { type: 'move', delta: 3 }, { type: 'request', purpose: 'connect' });
      expect(state.overlay).toMatchObject({ kind: 'login', name: 'shopdb', dbUser: 'azdb-demo', step: { field: 'name', choices: [''], listing: { state: 'loading' } } });
      // For another database or user, or after the prompt closed: ignored.
      expect(run(state, { type: 'names-listed', name: 'orders', dbUser: 'azdb-demo', names: ['x'] })).toBe(state);
      expect(run(state, { type: 'names-listed', name: 'shopdb', dbUser: 'bob', names: ['x'] })).toBe(state);
      const closed = run(state, { type: 'back' });
      expect(run(closed, { type: 'names-listed', name: 'shopdb', dbUser: 'azdb-demo', names: ['x'] })).toBe(closed);
      state = run(state, { type: 'names-listed', name: 'shopdb', dbUser: 'azdb-demo', names: ['shop', 'information_schema'] });
      expect(state.overlay).toMatchObject({ step: { choices: ['', 'shop', 'information_schema'], cursor: 0, listing: { state: 'listed', count: 2 } } });
      // Listed once: a second answer changes nothing.
      expect(run(state, { type: 'names-listed', name: 'shopdb', dbUser: 'azdb-demo', names: ['y'] })).toBe(state);
      // MySQL's "no default database" stays selectable.
      expect(run(state, { type: 'accept' }).pending).toEqual({ kind: 'connect', name: 'shopdb', login: { dbUser: 'azdb-demo', dbName: '' } });
      expect(run(state, { type: 'move', delta: 1 }, { type: 'accept' }).pending).toEqual({ kind: 'connect', name: 'shopdb', login: { dbUser: 'azdb-demo', dbName: 'shop' } });
    });

    it('keeps the suggestions and says why when the server\'s databases cannot be listed; typing still works', () => {
      let state = run(ready(), { type: 'request', purpose: 'tunnel' }, { type: 'move', delta: 1 });
      state = run(state, { type: 'names-failed', name: 'orders', dbUser: 'azdb-demo', error: { message: 'password authentication failed' } });
      expect(state.overlay).toMatchObject({ step: { choices: ['orders', 'postgres'], cursor: 1, listing: { state: 'failed', message: 'password authentication failed' } } });
      state = run(state, { type: 'type', text: 'analytics' }, { type: 'accept' });
      expect(state.pending).toEqual({ kind: 'open-tunnel', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'analytics' } });
    });

    it('asks no server where the roles list the names', () => {
      expect(loginStep(DATABASES[1]!, 'name')).not.toHaveProperty('listing');
      expect(loginStep(database('free', { dbUsers: ['*'] }), 'user')).not.toHaveProperty('listing');
    });

    it('connects with the picked recent database name', () => {
      const state = run(ready(), { type: 'request', purpose: 'connect' });
      expect(state.overlay).toMatchObject({ kind: 'login', name: 'orders', dbUser: 'azdb-demo', step: { field: 'name' } });
      expect(pickerMode(state)).toBe('login-text');
      // j and k are text in a name being typed: the key bar offers only the arrows to move.
      expect(keyBar(state).map((h) => `${h.keys} ${h.label}`)).toContain('↑↓ move');
      expect(keyToAction(state, 'j', {})).toEqual({ type: 'type', text: 'j' });
      const done = run(state, { type: 'accept' });
      expect(done.pending).toEqual({ kind: 'connect', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
      expect(done.overlay.kind).toBe('none');
    });

    it('takes a typed database name over the suggestions', () => {
      const state = run(ready(), { type: 'request', purpose: 'tunnel' }, { type: 'type', text: 'analytics' }, { type: 'accept' });
      expect(state.pending).toEqual({ kind: 'open-tunnel', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'analytics' } });
    });

    it('chooses the user from a list, then the name', () => {
      let state = run(ready(), { type: 'move', delta: 2 }, { type: 'request', purpose: 'connect' });
      expect(pickerMode(state)).toBe('login-list');
      state = run(state, { type: 'move', delta: 1 }, { type: 'accept' });
      expect(state.overlay).toMatchObject({ kind: 'login', dbUser: 'bob', step: { field: 'name', choices: ['orders', 'postgres'], free: false } });
      state = run(state, { type: 'move', delta: 1 }, { type: 'accept' });
      expect(state.pending).toEqual({ kind: 'connect', name: 'legacy', login: { dbUser: 'bob', dbName: 'postgres' } });
    });

    it('asks for a user where any is allowed and none was typed', () => {
      const state = run(ready([database('free', { dbUsers: ['*'] })]), { type: 'request', purpose: 'connect' }, { type: 'accept' });
      expect(state.overlay.kind).toBe('login');
      expect(state.notice).toMatch(/Type a database user/);
    });

    it('esc cancels the choice', () => {
      const state = run(ready(), { type: 'request', purpose: 'connect' }, { type: 'back' });
      expect(state.overlay.kind).toBe('none');
      expect(state.pending).toBeUndefined();
    });
  });

  describe('tunnels and the broker log', () => {
    const tunnel = {
      id: 't1',
      name: 'orders',
      protocol: 'postgres' as const,
      host: '127.0.0.1',
      port: 41000,
      user: 'azdb-demo',
      database: 'orders',
      uri: 'postgres://azdb-demo@127.0.0.1:41000/orders',
      command: 'psql',
      password: 'pw',
      openedAt: '2025-01-01T00:00:00Z',
    };

    it('shows an opened tunnel, counts its sessions from events, and logs them', () => {
      let state = run(ready(), { type: 'request', purpose: 'tunnel' }, { type: 'accept' }, { type: 'tunnel-opened', tunnel });
      expect(state.overlay).toEqual({ kind: 'tunnel', tunnelId: 't1', showPassword: false });
      expect(state.pending).toEqual({ kind: 'load' }); // background reload for the recent list
      state = run(state, { type: 'toggle-password' });
      expect(state.overlay).toMatchObject({ showPassword: true });
      state = run(state, {
        type: 'core-events',
        events: [
          event({ type: 'tunnel.opened', tunnelId: 't1', name: 'orders', host: '127.0.0.1', port: 41000, purpose: 'tunnel' }),
          event({ type: 'session.opened', tunnelId: 't1', name: 'orders', sessionId: 's1', dbUser: 'azdb-demo', dbName: 'orders', client: '127.0.0.1:5000' }),
        ],
      });
      expect(state.tunnels[0]!.sessions).toBe(1);
      expect(state.log.map((l) => l.text)).toEqual([
        'orders: tunnel t1 listening on 127.0.0.1:41000',
        'orders: session s1 opened as azdb-demo/orders from 127.0.0.1:5000',
      ]);
      expect(state.log[0]!.time).toBe('12:34:56');
      const failed = event({ type: 'session.closed', tunnelId: 't1', name: 'orders', sessionId: 's1', result: 'error', error: 'boom' });
      state = run(state, { type: 'core-events', events: [failed, failed] }); // the same event twice counts once
      expect(state.tunnels[0]!.sessions).toBe(0);
      expect(state.log.at(-1)).toMatchObject({ level: 'error', text: 'orders: session s1 failed: boom' });
      expect(state.log).toHaveLength(3);
    });

    it('copies with c right after the tunnel opened, during the reload that follows, and reloads after', () => {
      let state = run(ready(), { type: 'tunnel-opened', tunnel });
      expect(state.pending).toEqual({ kind: 'load' });
      state = run(state, { type: 'copy-uri' });
      expect(state.pending).toEqual({ kind: 'copy', text: 'postgres://azdb-demo:pw@127.0.0.1:41000/orders', what: 'URI of orders (with password)', reload: true });
      state = run(state, { type: 'copied', what: 'URI of orders (with password)' });
      expect(state.pending).toEqual({ kind: 'load' });
      state = run(state, { type: 'loaded', databases: DATABASES }, { type: 'copy-uri' }, { type: 'copied', what: 'x' });
      expect(state.pending).toBeUndefined();
    });

    it('closes the tunnel shown with x, and drops it on its closed event', () => {
      let state = run(ready(), { type: 'tunnel-opened', tunnel }, { type: 'loaded', databases: DATABASES });
      state = run(state, { type: 'close-tunnel' });
      expect(state.pending).toEqual({ kind: 'close-tunnel', id: 't1' });
      state = run(state, { type: 'tunnel-close-done' }, { type: 'core-events', events: [event({ type: 'tunnel.closed', tunnelId: 't1', name: 'orders' })] });
      expect(state.tunnels).toEqual([]);
      expect(state.notice).toBe('Tunnel to orders closed.');
    });

    it('tab cycles through open tunnels and says when there are none', () => {
      expect(run(ready(), { type: 'show-tunnels' }).notice).toMatch(/No open tunnels/);
      let state = run(ready(), { type: 'tunnel-opened', tunnel }, { type: 'tunnel-opened', tunnel: { ...tunnel, id: 't2' } }, { type: 'loaded', databases: DATABASES }, { type: 'back' });
      state = run(state, { type: 'show-tunnels' });
      expect(state.overlay).toMatchObject({ tunnelId: 't1' });
      state = run(state, { type: 'show-tunnels' });
      expect(state.overlay).toMatchObject({ tunnelId: 't2' });
      state = run(state, { type: 'show-tunnels' });
      expect(state.overlay).toMatchObject({ tunnelId: 't1' });
    });

    it('l shows the broker log line by line, following the newest line until one is chosen; enter shows it whole', () => {
      const line = (message: string) => event({ type: 'notice', level: 'info', message });
      let state = run(ready(), { type: 'core-events', events: [line('first'), line('second')] });
      state = run(state, { type: 'open-log' });
      expect(pickerMode(state)).toBe('log');
      expect(keyToAction(state, 'v', {})).toEqual({ type: 'open-detail' });
      expect(keyToAction(state, '', { return: true })).toEqual({ type: 'open-detail' });
      expect(keyBar(state).map((h) => `${h.keys} ${h.label}`).join(' · ')).toBe('enter/v details · ↑↓/jk move · esc back · ? help · Q quit');
      // Following the newest line.
      state = run(state, { type: 'core-events', events: [line('third')] });
      expect(state.overlay).toMatchObject({ kind: 'log', selected: undefined });
      // Chosen: it stays on that line as more come.
      state = run(state, { type: 'move', delta: -1 }, { type: 'core-events', events: [line('fourth')] });
      const second = state.log.find((l) => l.text === 'second')!;
      expect(state.overlay).toMatchObject({ kind: 'log', selected: second.id });
      state = run(state, { type: 'open-detail' });
      expect(pickerMode(state)).toBe('log-detail');
      expect(state.overlay).toMatchObject({ detail: { title: 'Broker log, 12:34:56', text: 'second', scroll: 0 } });
      expect(keyToAction(state, 'j', {})).toEqual({ type: 'scroll-detail', delta: 1 });
      expect(keyToAction(state, 'q', {})).toEqual({ type: 'back' });
      expect(keyToAction(state, 'Q', {})).toEqual({ type: 'quit' });
      // ? over the details and back; esc to the log, esc to the list.
      const help = run(state, { type: 'help' });
      expect(pickerMode(help)).toBe('help');
      expect(run(help, { type: 'back' }).overlay).toEqual(state.overlay);
      state = run(state, { type: 'back' });
      expect(pickerMode(state)).toBe('log');
      expect(run(state, { type: 'back' }).overlay.kind).toBe('none');
    });

    it('scrolls a long log line within what the screen shows, never past its end', () => {
      const text = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
      let state = run(ready(undefined, { columns: 40, rows: 12 }), { type: 'core-events', events: [event({ type: 'notice', level: 'warn', message: text })] }, { type: 'open-log' }, { type: 'open-detail' });
      expect(state.overlay).toMatchObject({ detail: { title: 'Broker log, 12:34:56 (warn)' } });
      state = run(state, { type: 'scroll-detail', delta: Infinity });
      const end = (state.overlay as { detail: { scroll: number } }).detail.scroll;
      expect(end).toBeGreaterThan(0);
      expect(run(state, { type: 'scroll-detail', delta: 1 })).toBe(state);
      expect(mainHeight(state)).toBeLessThanOrEqual(listHeight(state) + 3);
    });

    it('prints only new log lines after a client had the terminal', () => {
      let state = run(ready(), { type: 'core-events', events: [event({ type: 'notice', level: 'warn', message: 'careful' })] });
      state = run(state, { type: 'request', purpose: 'connect' }, { type: 'accept' });
      state = run(state, { type: 'client-exited', name: 'orders', exitCode: 3, client: 'psql' });
      expect(state.logBase).toBe(1);
      expect(state.notice).toBe('psql for orders exited with code 3.');
      expect(state.pending).toEqual({ kind: 'load' });
      expect(pickerMode(state)).toBe('list'); // a background reload leaves the keys working
    });
  });

  describe('errors', () => {
    it('shows the error with its hint and retries what failed', () => {
      let state = run(initialPickerState(), { type: 'failed', title: 'Could not list the databases', error: { message: 'no config', hint: 'run azdb setup' }, retry: { kind: 'load' } });
      expect(state.status).toBe('failed');
      expect(state.overlay).toMatchObject({ kind: 'error', error: { hint: 'run azdb setup' } });
      expect(keyBar(state).map((h) => `${h.keys} ${h.label}`)).toEqual(['r retry', 'esc back', 'Q quit']);
      state = run(state, { type: 'retry' });
      expect(state.pending).toEqual({ kind: 'load' });
      expect(state.status).toBe('loading');
    });

    it('keeps the list when a background reload fails', () => {
      const state = run(ready(), { type: 'reload' }, { type: 'failed', title: 'x', error: { message: 'gone' }, retry: { kind: 'load' } });
      expect(state.overlay.kind).toBe('none');
      expect(state.notice).toMatch(/gone/);
    });
  });

  it('quits, closing tunnels on the way', () => {
    const state = run(ready(), { type: 'quit' });
    expect(state.pending).toEqual({ kind: 'quit' });
  });
});

describe('doctor and queries screens', () => {
  it('d opens the doctor on the selected database; esc goes back; the picker reads no keys meanwhile', () => {
    let state = run(ready(), { type: 'move', delta: 1 }); // inventory (orders is first: recent)
    state = run(state, { type: 'open-doctor' });
    expect(state.overlay).toEqual({ kind: 'doctor', name: 'inventory' });
    expect(pickerMode(state)).toBe('screen');
    expect(keyToAction(state, 'j', {})).toBeUndefined();
    expect(keyToAction(state, 'c', { ctrl: true })).toBeUndefined(); // the screen handles it
    state = run(state, { type: 'back' });
    expect(state.overlay.kind).toBe('none');
    expect(selectedDatabase(state)?.name).toBe('inventory');
  });

  it('does not open the doctor while loading or from an overlay', () => {
    expect(run(initialPickerState(), { type: 'open-doctor' }).overlay.kind).toBe('none');
    const help = run(ready(), { type: 'help' }, { type: 'open-doctor' });
    expect(help.overlay.kind).toBe('help');
  });

  it('q opens the queries screen with the last login used, without asking', () => {
    const state = run(ready(), { type: 'request', purpose: 'queries' });
    expect(state.overlay).toEqual({ kind: 'queries', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
    expect(state.pending).toBeUndefined();
  });

  it('q uses the only user and the default database where the roles allow any name', () => {
    expect(queriesLogin(database('inventory'))).toEqual({ dbUser: 'azdb-demo', dbName: 'postgres' });
    expect(queriesLogin(database('shopdb', { protocol: 'mysql', defaultDbName: '' }))).toEqual({ dbUser: 'azdb-demo', dbName: '' });
    expect(queriesLogin(database('one', { dbNames: ['orders'] }))).toEqual({ dbUser: 'azdb-demo', dbName: 'orders' });
    expect(queriesLogin(database('legacy', { dbUsers: ['alice', 'bob'] }))).toBeUndefined();
  });

  it('q asks for the user (and name) where the roles leave a choice, then opens the screen', () => {
    let state = run(ready(), { type: 'move', delta: 2 }); // legacy
    expect(selectedDatabase(state)?.name).toBe('legacy');
    state = run(state, { type: 'request', purpose: 'queries' });
    expect(state.overlay).toMatchObject({ kind: 'login', purpose: 'queries', step: { field: 'user', choices: ['alice', 'bob'] } });
    state = run(state, { type: 'move', delta: 1 }, { type: 'accept' });
    expect(state.overlay).toMatchObject({ kind: 'login', purpose: 'queries', dbUser: 'bob', step: { field: 'name' } });
    state = run(state, { type: 'accept' });
    expect(state.overlay).toEqual({ kind: 'queries', name: 'legacy', login: { dbUser: 'bob', dbName: 'orders' } });
  });

  it('opens the screens during a background reload, not while other work runs', () => {
    const reloading = run(ready(), { type: 'reload' });
    expect(run(reloading, { type: 'open-doctor' }).overlay.kind).toBe('doctor');
    expect(run(reloading, { type: 'request', purpose: 'queries' }).overlay.kind).toBe('queries');
    const opening = run(ready(), { type: 'request', purpose: 'tunnel' }, { type: 'accept' });
    expect(opening.pending?.kind).toBe('open-tunnel');
    expect(run(opening, { type: 'open-doctor' }).overlay.kind).toBe('none');
  });

  it('quits from a screen', () => {
    const state = run(ready(), { type: 'open-doctor' }, { type: 'quit' });
    expect(state.overlay.kind).toBe('none');
    expect(state.pending).toEqual({ kind: 'quit' });
  });

  it('lists the screens\' keys in the help: the list\'s all, the others\' without what they share with it', () => {
    const sections = helpRows();
    expect(sections.map((s) => s.section)).toEqual([
      'Databases (moving, ? and Q work alike on every screen)',
      'Filter (/)',
      'Tunnel details (t, tab)',
      'Broker log (l)',
      'Details (enter/v)',
      'Doctor (d)',
      'Queries (q)',
    ]);
    const rows = (title: string) => sections.find((s) => s.section === title)!.rows.map((r) => `${r.keys} ${r.label}`);
    expect(rows('Queries (q)')).toEqual(['c cancel query', 'T terminate session', 'enter/v details', 'r refresh', 'esc back', 'y/Y confirm terminate']);
    expect(rows('Doctor (d)')).toEqual(['enter/v details', 'r re-run', 'esc back']);
    expect(rows('Details (enter/v)')).toEqual(['esc/q close']);
    expect(rows('Broker log (l)')).toEqual(['enter/v details', 'esc back']);
    const databases = sections[0]!.rows.map((r) => `${r.keys} ${r.label}`);
    expect(databases).toContain('l broker log');
    expect(databases).toContain('↑/k/ctrl+p up');
    expect(databases).toContain('Q/ctrl+c quit');
    expect(databases).toContain('d doctor');
    expect(databases).toContain('q queries');
    expect(databases).toContain('/ filter');
  });
});

describe('keys per mode', () => {
  it('maps list keys, and leaves q and Q to the text while filtering', () => {
    const state = ready();
    expect(keyToAction(state, 'j', {})).toEqual({ type: 'move', delta: 1 });
    expect(keyToAction(state, '', { return: true })).toEqual({ type: 'request', purpose: 'connect' });
    expect(keyToAction(state, 't', {})).toEqual({ type: 'request', purpose: 'tunnel' });
    expect(keyToAction(state, 'd', {})).toEqual({ type: 'open-doctor' });
    expect(keyToAction(state, 'q', {})).toEqual({ type: 'request', purpose: 'queries' });
    expect(keyToAction(state, 'Q', { shift: true })).toEqual({ type: 'quit' });
    expect(keyToAction(state, 'c', { ctrl: true })).toEqual({ type: 'quit' });
    expect(keyToAction(state, '?', {})).toEqual({ type: 'help' });
    const filtering = run(state, { type: 'filter-start' });
    expect(keyToAction(filtering, 'q', {})).toEqual({ type: 'type', text: 'q' });
    expect(keyToAction(filtering, 'Q', { shift: true })).toEqual({ type: 'type', text: 'Q' });
    expect(keyToAction(filtering, 'j', {})).toEqual({ type: 'type', text: 'j' });
    expect(keyToAction(filtering, '', { downArrow: true })).toEqual({ type: 'move', delta: 1 });
    expect(keyToAction(filtering, '', { return: true })).toEqual({ type: 'accept' });
  });

  it('esc closes overlays; Q and ctrl+c quit from wherever no text is typed', () => {
    const help = run(ready(), { type: 'help' });
    expect(keyToAction(help, '', { escape: true })).toEqual({ type: 'back' });
    expect(keyToAction(help, 'q', {})).toBeUndefined();
    expect(keyToAction(help, 'Q', {})).toEqual({ type: 'quit' });
    expect(keyToAction(help, 'c', { ctrl: true })).toEqual({ type: 'quit' });
    const tunnel = run(ready(), { type: 'tunnel-opened', tunnel: { id: 't', name: 'orders', protocol: 'postgres', host: 'h', port: 1, user: 'u', database: 'd', uri: 'u', command: 'c', password: 'p', openedAt: '' } });
    expect(keyToAction(tunnel, 'Q', {})).toEqual({ type: 'quit' });
  });

  it('while a tunnel opens or a client connects, esc and ctrl+c cancel it and other keys do nothing', () => {
    for (const purpose of ['tunnel', 'connect'] as const) {
      const state = run(ready(), { type: 'request', purpose }, { type: 'accept' });
      expect(pickerMode(state)).toBe('opening');
      expect(state.busy).toContain('esc cancels');
      expect(keyToAction(state, 'j', {})).toBeUndefined();
      expect(keyToAction(state, 'Q', {})).toBeUndefined();
      expect(keyToAction(state, '', { escape: true })).toEqual({ type: 'cancel' });
      expect(keyToAction(state, 'c', { ctrl: true })).toEqual({ type: 'cancel' });
      const cancelled = run(state, { type: 'cancel' });
      expect(cancelled.pending).toBeUndefined();
      expect(cancelled.busy).toBeUndefined();
      expect(cancelled.notice).toBe(`Cancelled ${purpose === 'connect' ? 'connecting' : 'opening a tunnel'} to orders.`);
      expect(pickerMode(cancelled)).toBe('list');
    }
  });

  it('hands the terminal over only once the client tunnel is ready', () => {
    const connecting = run(ready(), { type: 'request', purpose: 'connect' }, { type: 'accept' });
    expect(connecting.pending).toEqual({ kind: 'connect', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
    const launching = run(connecting, { type: 'client-ready' });
    expect(launching.pending).toEqual({ kind: 'launch', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
    expect(launching.busy).toBeUndefined();
    // A late answer after a cancel changes nothing.
    expect(run(run(connecting, { type: 'cancel' }), { type: 'client-ready' }).pending).toBeUndefined();
  });

  it('splits a chunk of keys: `/orders` starts the filter and types the rest', () => {
    expect(inputToActions(ready(), '/orders', {})).toEqual([{ type: 'filter-start' }, { type: 'type', text: 'orders' }]);
    expect(inputToActions(ready(), 'jj', {})).toEqual([
      { type: 'move', delta: 1 },
      { type: 'move', delta: 1 },
    ]);
    // Backspace and enter inside the chunk are keys: `/ordx⌫⏎` filters by "ord" and connects.
    expect(inputToActions(ready(), '/ordx\u007f\r', {})).toEqual([{ type: 'filter-start' }, { type: 'type', text: 'ordx' }, { type: 'backspace' }, { type: 'accept' }]);
  });

  it('always has a key bar', () => {
    expect(keyBar(ready()).map((h) => `${h.keys} ${h.label}`).join(' · ')).toBe('enter connect · t tunnel · / filter · d doctor · q queries · ? help · Q quit');
    expect(keyBar(run(ready(), { type: 'filter-start' })).map((h) => h.keys)).toContain('↑↓');
    const tunnel = run(ready(), { type: 'tunnel-opened', tunnel: { id: 't', name: 'orders', protocol: 'postgres', host: 'h', port: 1, user: 'u', database: 'd', uri: 'u', command: 'c', password: 'p', openedAt: '' } });
    expect(keyBar(tunnel).map((h) => h.keys)).toEqual(['c', 'p', 'x', 'tab', 'esc']);
  });
});

describe('layout', () => {
  it('fits the live area in the terminal height, 80×24 included', () => {
    expect(listHeight({ rows: 24, tunnels: [] })).toBe(15); // below the column headings
    expect(listHeight({ rows: 10, tunnels: [] })).toBe(3);
    const many = Array.from({ length: 30 }, (_, i) => database(`db${String(i).padStart(2, '0')}`));
    const state = ready(many, { columns: 80, rows: 24 });
    expect(mainHeight(state)).toBe(18);
    expect(mainHeight(ready(DATABASES.slice(0, 2)))).toBe(5); // headings, two rows, two detail lines
  });

  it('keeps the cursor inside the list window', () => {
    expect(windowStart(0, 100, 10)).toBe(0);
    expect(windowStart(50, 100, 10)).toBe(45);
    expect(windowStart(99, 100, 10)).toBe(90);
    expect(windowStart(5, 8, 10)).toBe(0);
  });
});

describe('copying a tunnel URI', () => {
  it('puts the password into the URI, encoded', async () => {
    const { uriWithPassword } = await import('../../src/ui/picker/state.js');
    expect(uriWithPassword({ uri: 'postgres://azdb-demo@127.0.0.1:5432/orders', password: 'a/b+c' })).toBe('postgres://azdb-demo:a%2Fb%2Bc@127.0.0.1:5432/orders');
    expect(uriWithPassword({ uri: 'mysql://azdb-demo@127.0.0.1:3306', password: 'x' })).toBe('mysql://azdb-demo:x@127.0.0.1:3306');
  });

  it('frames the text as OSC 52', async () => {
    const { clipboardSequence } = await import('../../src/ui/picker/hooks.js');
    expect(clipboardSequence('hi')).toBe('\u001b]52;c;aGk=\u0007');
  });
});
