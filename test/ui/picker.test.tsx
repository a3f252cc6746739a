/**
 * The picker screen over a fake core API, driven with ink-testing-library: every step waits for
 * the frame it expects (no sleeps).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { render, cleanup } from 'ink-testing-library';
import chalk from 'chalk';
import { Picker } from '../../src/ui/picker/picker.js';
import type { PickerOutcome } from '../../src/ui/picker/hooks.js';
import { initialPickerState, pickerReducer } from '../../src/ui/picker/state.js';
import { waitFor } from '../helpers/wait.js';
import { database, fakeApi } from './fake-api.js';

const DATABASES = [
  database('inventory', { labels: { env: 'staging' } }),
  database('orders', { recent: [{ dbUser: 'azdb-demo', dbName: 'orders', at: '2025-01-02T00:00:00Z' }] }),
  database('shopdb', { protocol: 'mysql', defaultDbName: '' }),
];

const ENTER = '\r';
const ESC = '\u001b';

afterEach(() => cleanup());

function mount(api = fakeApi(DATABASES), props: { color?: boolean; poolsRefreshMs?: number } = {}) {
  const outcomes: PickerOutcome[] = [];
  const screen = render(<Picker api={api} {...props} onExit={(o) => outcomes.push(o)} />);
  const frame = () => screen.lastFrame() ?? '';
  const until = (text: string | RegExp, what = String(text)) =>
    waitFor(() => (typeof text === 'string' ? frame().includes(text) : text.test(frame())) && frame(), `a frame with ${what}:\n${frame()}`, 5_000);
  return { api, screen, frame, until, outcomes, press: (keys: string) => screen.stdin.write(keys) };
}

describe('picker screen', () => {
  it('shows a spinner while loading, then the databases (recent first) with what the roles allow and a key bar', async () => {
    const api = fakeApi(DATABASES);
    const held = api.holdDatabases();
    const { until, frame } = mount(api);
    await until('Loading databases');
    held.release();
    await until('3 databases');
    const lines = frame().split('\n');
    expect(lines.findIndex((l) => l.includes('orders'))).toBeLessThan(lines.findIndex((l) => l.includes('inventory')));
    expect(frame()).toMatch(/▸ orders\s+★ postgres azdb-demo/);
    expect(frame()).toContain('env=staging');
    expect(frame()).toContain('users azdb-demo · names any · last azdb-demo/orders');
    expect(frame()).toContain('enter connect · t tunnel · / filter · d doctor · q queries · ? help · Q quit');
    expect(frame()).toContain('Broker · no tunnels open');
  });

  it('filters with / and connects with enter, leaving with the login chosen', async () => {
    const { until, press, outcomes, frame } = mount();
    await until('3 databases');
    press('/');
    await until('filter /');
    press('inv');
    await until('1 of 3 databases');
    expect(frame()).not.toContain('orders');
    press(ENTER); // apply the filter
    await until('enter connect');
    press(ENTER); // connect
    await until('choose the database name');
    expect(frame()).toContain('▸ postgres');
    press('inventory');
    await until('database name: inventory');
    press(ENTER);
    await waitFor(() => outcomes.length === 1, 'the picker to leave');
    expect(outcomes[0]).toMatchObject({ kind: 'connect', name: 'inventory', login: { dbUser: 'azdb-demo', dbName: 'inventory' } });
  });

  it('connecting shows a spinner until the client tunnel is ready; esc and ctrl+c cancel it at once', async () => {
    const api = fakeApi(DATABASES);
    const { until, press, outcomes, frame, screen } = mount(api);
    await until('3 databases');
    for (const cancelKey of [ESC, '\u0003']) {
      api.holdPrepare(); // the Entra token does not come
      press(ENTER);
      await until('choose the database name');
      press(ENTER);
      await until('Connecting to orders… (esc cancels)');
      const spinning = screen.frames.length;
      await waitFor(() => screen.frames.length > spinning + 1 && /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Connecting to orders/.test(frame()), 'the spinner to turn');
      expect(frame()).toContain('esc cancel');
      press(cancelKey);
      await until('Cancelled connecting to orders.');
      await waitFor(() => api.prepareRuns.aborted === api.prepareRuns.started, 'the wait for the token to be stopped');
      expect(outcomes).toEqual([]);
    }
    press(ENTER);
    await until('choose the database name');
    press(ENTER);
    await waitFor(() => outcomes.length === 1, 'the picker to hand the terminal over');
    expect(outcomes[0]).toMatchObject({ kind: 'connect', name: 'orders', login: { dbUser: 'azdb-demo', dbName: 'orders' } });
    expect(api.calls.filter((c) => c.startsWith('prepareConnect'))).toHaveLength(3);
  });

  it('a connection that cannot start says why and stays in the picker', async () => {
    const api = fakeApi(DATABASES);
    api.failNext.prepareConnect = Object.assign(new Error('could not get an Entra token: the identity endpoint http://127.0.0.1:1/msi/token/ refused the connection'), { hint: 'Run `azdb creds`.' });
    const { until, press, outcomes } = mount(api);
    await until('3 databases');
    press(ENTER);
    await until('choose the database name');
    press(ENTER);
    await until('Could not connect to orders');
    await until('could not get an Entra token');
    await until('hint: Run `azdb creds`.');
    expect(outcomes).toEqual([]);
  });

  it('lists the server\'s databases in the name prompt: a spinner while they load, recent first, MySQL\'s "none" kept', async () => {
    const api = fakeApi(DATABASES);
    api.serverNames.set('orders', ['orders', 'inventory', 'postgres']);
    api.serverNames.set('shopdb', ['shop', 'information_schema']);
    const held = api.holdNames();
    const { until, press, frame, outcomes } = mount(api);
    await until('3 databases');
    press(ENTER);
    await until('Connect to orders as azdb-demo: choose the database name');
    await until(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Listing the databases of orders as azdb-demo…/);
    await waitFor(() => api.calls.includes('databaseNames orders azdb-demo'), 'the names asked for as azdb-demo');
    expect(frame()).not.toContain('inventory');
    held.release();
    await until('3 databases on the server you may use, recent first');
    const lines = frame().split('\n');
    const at = (name: string) => lines.findIndex((l) => new RegExp(`^[▸ ] ${name}$`).test(l.trimEnd()));
    expect(at('orders')).toBeGreaterThan(0); // the recent one, selected
    expect(frame()).toContain('▸ orders');
    expect(at('orders')).toBeLessThan(at('postgres'));
    expect(at('postgres')).toBeLessThan(at('inventory'));
    press(ESC);
    await until('enter connect');
    press('G'); // shopdb (MySQL)
    await until(/▸ shopdb/);
    press(ENTER);
    await until('2 databases on the server you may use');
    expect(frame()).toContain('▸ (no default database)');
    expect(frame()).toMatch(/^ {2}shop$/m);
    press('\u001b[B'); // down: shop
    await until(/▸ shop$/m);
    press(ENTER);
    await waitFor(() => outcomes.length === 1, 'the picker to leave');
    expect(outcomes[0]).toMatchObject({ kind: 'connect', name: 'shopdb', login: { dbUser: 'azdb-demo', dbName: 'shop' } });
  });

  it('says why when the server\'s databases cannot be listed, and takes a typed name; esc gives the listing up', async () => {
    const api = fakeApi(DATABASES);
    api.failNext.databaseNames = new Error('could not log in to orders as azdb-demo: password authentication failed');
    const { until, press, outcomes } = mount(api);
    await until('3 databases');
    press('t');
    await until("Could not list the server's databases (could not log in to orders as azdb-demo: password");
    await until('authentication failed); type a name or pick one below.');
    press(ESC);
    await until('enter connect');
    const held = api.holdNames();
    press('t');
    await until('Listing the databases of orders');
    await waitFor(() => api.calls.filter((c) => c === 'databaseNames orders azdb-demo').length === 2, 'the second listing to start');
    press(ESC); // closing the prompt gives the listing up
    await until('enter connect');
    await waitFor(() => api.namesAborted === 1, 'the listing to be given up');
    held.release();
    press(ENTER);
    await until('database name:');
    press('analytics');
    await until('database name: analytics');
    press(ENTER);
    await waitFor(() => outcomes.length === 1, 'the picker to leave');
    expect(outcomes[0]).toMatchObject({ login: { dbName: 'analytics' } });
  });

  it('opens a tunnel with t: connection string, password on demand, broker panel and session log', async () => {
    const { api, until, press, frame } = mount();
    await until('3 databases');
    press('t');
    await until('Open a tunnel to orders');
    press(ENTER); // the recent name, orders
    await until('Tunnel t1 to orders');
    expect(api.calls).toContain('openTunnel orders azdb-demo/orders');
    expect(frame()).toContain('uri       postgres://azdb-demo@127.0.0.1:40001/orders');
    expect(frame()).toContain('PGPASSWORD=<password> psql');
    expect(frame()).not.toContain('sekret-password-123');
    // Set up once: the password is kept for the database, the certificate verifiable.
    expect(frame()).toContain('password  •••••••• (p shows it; the same for every tunnel to orders, not your Azure credentials)');
    expect(frame()).toContain('kept in   /state/tunnel-passwords/orders.password');
    expect(frame()).toContain('tls       on request; CA /state/tls/ca.pem');
    expect(frame()).toContain('orders 127.0.0.1:40001 azdb-demo/orders · 0 sessions');
    press('p');
    await until('password  sekret-password-123');
    api.emit({ type: 'session.opened', tunnelId: 't1', name: 'orders', sessionId: 'abc', dbUser: 'azdb-demo', dbName: 'orders', client: '127.0.0.1:5555' });
    await until('1 session');
    await until('orders: session abc opened as azdb-demo/orders from 127.0.0.1:5555');
    // A session is open: x asks first; n keeps the tunnel.
    press('x');
    await until('Close the tunnel to orders? 1 open session through it will end. y/n');
    expect(api.calls).not.toContain('closeTunnel t1');
    press('n');
    await waitFor(() => !frame().includes('Close the tunnel to orders?'), 'the question to go');
    expect(frame()).toContain('Tunnel t1 to orders');
    press('x');
    await until('Close the tunnel to orders?');
    press('y');
    await until('Tunnel to orders closed.');
    expect(api.calls).toContain('closeTunnel t1');
    expect(frame()).toContain('Broker · no tunnels open');
  });

  it('shows a tunnel\'s pool in the broker panel and, with o, each key: who, clients, servers, logins; live', async () => {
    const api = fakeApi(DATABASES);
    const { until, press, frame } = mount(api, { poolsRefreshMs: 20 });
    await until('3 databases');
    press('o');
    await until('No pools: open a tunnel (t)');
    const key = { dbUser: 'azdb-demo', dbName: 'orders', identity: 'oid:2f9c41d0-7a51-4c1e-9d2e-0d6a4c2b9f11@72f988bf-86f1-41af-91ab-2d7cd011db47', clientsConnected: 1, clientsActive: 1, clientsWaiting: 0, clientsPinned: 0, serversActive: 1, serversIdle: 1, serversOpening: 0, logins: 2 };
    api.poolOf.set('t1', { name: 'orders', listener: '127.0.0.1:40001', mode: 'session', maxServerConnections: 20, keys: [key] });
    press('t');
    await until('Open a tunnel to orders');
    press(ENTER);
    await until('Tunnel t1 to orders');
    await until('orders 127.0.0.1:40001 azdb-demo/orders · 0 sessions · pool: servers 1 active, 1 idle; 0 waiting');
    expect(frame()).toContain('· l log · o pool');
    press('o');
    await until('Pools · server connections shared per database user, name and identity');
    expect(frame()).toContain('orders 127.0.0.1:40001 · session mode · at most 20 server connections per key');
    expect(frame()).toContain('  azdb-demo/orders as oid:2f9c41d0…@72f988bf…');
    expect(frame()).toContain('    clients 1 active, 0 waiting · servers 1 active, 1 idle, 0 opening · 2 logins');
    expect(frame()).toContain('esc back · ? help · Q quit');
    expect(frame()).not.toContain('pinned');
    // The counters move without an event: the overlay follows them.
    api.poolOf.set('t1', { name: 'orders', listener: '127.0.0.1:40001', mode: 'transaction', maxServerConnections: 20, keys: [{ ...key, clientsActive: 3, clientsWaiting: 2, serversActive: 2, serversIdle: 0, logins: 3, clientsPinned: 1 }] });
    await until('clients 3 active, 2 waiting · servers 2 active, 0 idle, 0 opening · 3 logins · 1 pinned');
    expect(frame()).toContain('· transaction mode ·');
    press(ESC);
    await waitFor(() => !frame().includes('Pools ·'), 'the pools to close');
    expect(frame()).toContain('pool: servers 2 active, 0 idle; 2 waiting');
  });

  it('copies the tunnel URI with its password with c (OSC 52), says how to enable it, and shows the password to select by hand', async () => {
    const { until, press, frame, screen } = mount();
    await until('3 databases');
    press('t');
    await until('Open a tunnel to orders');
    press(ENTER);
    await until('Tunnel t1 to orders');
    expect(frame()).toContain('c copy URI');
    press('c');
    await until('URI of orders (with password) sent via OSC 52; empty clipboard? tmux: set -g set-clipboard on');
    await until('password  sekret-password-123'); // shown to select by hand
    const written = screen.stdout.frames.join('');
    const osc = /\u001b\]52;c;([A-Za-z0-9+/=]+)\u0007/.exec(written);
    expect(osc).not.toBeNull();
    expect(Buffer.from(osc![1]!, 'base64').toString('utf8')).toBe('postgres://azdb-demo:sekret-password-123@127.0.0.1:40001/orders');
    // Before c the password was hidden; p hides it again.
    press('p');
    await waitFor(() => !frame().includes('sekret-password-123'), 'the password hidden again');
  });

  it('shows an error with its hint and what to press, and retries', async () => {
    const api = fakeApi(DATABASES);
    api.failNext.databases = Object.assign(new Error('config file /x/azdb.yaml does not exist'), { hint: 'Run `azdb setup`.' });
    const { until, press, frame } = mount(api);
    await until('Could not list the databases');
    expect(frame()).toContain('error: config file /x/azdb.yaml does not exist');
    expect(frame()).toContain('hint: Run `azdb setup`.');
    expect(frame()).toContain('Press r to retry, esc to go back, Q to quit.');
    expect(frame()).toContain('r retry · esc back · Q quit');
    press('r');
    await until('3 databases');
  });

  it('shows the failure of a tunnel and goes back with esc', async () => {
    const api = fakeApi(DATABASES);
    api.failNext.openTunnel = Object.assign(new Error('DefaultAzureCredential: failed to acquire a token'), { hint: 'Run `azdb creds`.' });
    const { until, press } = mount(api);
    await until('3 databases');
    press('t');
    await until('choose the database name');
    press(ENTER);
    await until('Could not open a tunnel to orders');
    await until('hint: Run `azdb creds`.');
    press(ESC);
    await until('enter connect');
  });

  it('shows help with ? and closes it with esc; Q quits', async () => {
    const { until, press, outcomes } = mount();
    await until('3 databases');
    press('?');
    await until('Tunnel details');
    await until('↑/k/ctrl+p');
    await until('Queries (q)');
    press(ESC);
    await until('enter connect');
    press('Q');
    await waitFor(() => outcomes.length === 1, 'the picker to quit');
    expect(outcomes[0]!.kind).toBe('quit');
  });

  it('l shows the broker log line by line; enter or v shows a cut line whole; esc goes back', async () => {
    const { api, until, press, frame } = mount();
    await until('3 databases');
    expect(frame()).toContain('Broker · no tunnels open (t opens one for GUI clients) · l log');
    press('l');
    await until('Nothing logged yet');
    press(ESC);
    await until('enter connect');
    const reason = `${'the server closed the connection unexpectedly; '.repeat(4)}END-OF-REASON`;
    api.emit({ type: 'session.closed', tunnelId: 't9', name: 'orders', sessionId: 'abc', result: 'error', error: reason });
    api.emit({ type: 'notice', level: 'info', message: 'a later line' });
    await until('a later line');
    expect(frame()).not.toContain('END-OF-REASON'); // cut to fit, above the picker
    press('l');
    await until('Broker log · 2 lines');
    expect(frame()).toMatch(/^▸ 12:00:00 a later line/m); // the newest, selected
    expect(frame()).toContain('enter/v details · ↑↓/jk move · esc back');
    press('k');
    await until(/^▸ 12:00:00 orders: session abc failed/m);
    press(ENTER);
    await until('Broker log, 12:00:00 (error)');
    await until('END-OF-REASON');
    expect(frame()).toContain('↑↓ scroll · PgUp/PgDn page · esc/q close · ? help · Q quit');
    press('?');
    await until('esc close help');
    press(ESC); // back to the line
    await until('END-OF-REASON');
    press('q');
    await until(/^▸ 12:00:00 orders: session abc failed/m);
    press(ESC);
    await until('enter connect');
  });

  it('ctrl+c quits too (Ink does not exit on it by itself)', async () => {
    const { until, press, outcomes } = mount();
    await until('3 databases');
    press('\u0003');
    await waitFor(() => outcomes[0]?.kind === 'quit', 'the picker to quit');
  });

  it('re-lays out on resize: the list window follows the terminal height', async () => {
    const many = Array.from({ length: 40 }, (_, i) => database(`db${String(i).padStart(2, '0')}`));
    const { screen, until, frame } = mount(fakeApi(many));
    await until('40 databases');
    expect(frame()).toMatch(/^ {2}NAME\s+★ PROTOCOL USERS\s+LABELS$/m); // column headings
    expect(frame()).toContain('db14'); // 24 rows by default: 15 in the list
    expect(frame()).not.toContain('db15');
    Object.defineProperty(screen.stdout, 'rows', { value: 12, configurable: true });
    screen.stdout.emit('resize');
    await waitFor(() => !frame().includes('db03') && frame(), 'a shorter list');
    expect(frame()).toContain('db02');
    expect(frame().split('\n').length).toBeLessThan(12);
  });

  it('honours NO_COLOR: no colour codes without colour, colour with it', async () => {
    const level = chalk.level;
    chalk.level = 3;
    try {
      const plain = mount(fakeApi(DATABASES), { color: false });
      await plain.until('3 databases');
      expect(plain.frame()).not.toMatch(/\u001b\[3\dm/);
      cleanup();
      const coloured = mount(fakeApi(DATABASES), { color: true });
      await coloured.until('3 databases');
      expect(coloured.frame()).toMatch(/\u001b\[3\dm/);
    } finally {
      chalk.level = level;
    }
  });

  it('comes back after a client with the log it missed and a notice', async () => {
    const api = fakeApi(DATABASES);
    api.emit({ type: 'tunnel.opened', tunnelId: 'c1', name: 'orders', host: '127.0.0.1', port: 1234, purpose: 'client' });
    let state = pickerReducer(initialPickerState(), { type: 'loaded', databases: DATABASES });
    state = pickerReducer(state, { type: 'client-exited', name: 'orders', exitCode: 0, client: 'psql' });
    const screen = render(<Picker api={api} initialState={state} />);
    await waitFor(() => (screen.lastFrame() ?? '').includes('psql for orders exited.'), 'the notice');
    await waitFor(() => screen.frames.join('').includes('orders: client tunnel c1 listening on 127.0.0.1:1234'), 'the missed log line');
  });
});

describe('picker: asking before ending sessions', () => {
  it('asks before quitting with open sessions; ctrl+c in a prompt cancels only the prompt', async () => {
    const { api, until, press, frame, outcomes } = mount();
    await until('3 databases');
    press('t');
    await until('Open a tunnel to orders');
    press('\u0003'); // ctrl+c in the database-name prompt: the prompt goes, the picker stays
    await waitFor(() => !frame().includes('Open a tunnel to orders'), 'the prompt to close');
    expect(outcomes).toEqual([]);
    press('t');
    await until('Open a tunnel to orders');
    press('\r');
    await until('Tunnel t1 to orders');
    api.emit({ type: 'session.opened', tunnelId: 't1', name: 'orders', sessionId: 'abc', dbUser: 'azdb-demo', dbName: 'orders', client: '127.0.0.1:5555' });
    await until('1 session');
    press('\u001b'); // back to the list
    await until('enter connect');
    press('Q');
    await until('Quit? 1 open session through 1 tunnel will end. y/n');
    press('n');
    await waitFor(() => !frame().includes('Quit?'), 'the question to go');
    expect(outcomes).toEqual([]);
    press('\u0003');
    await until('Quit? 1 open session');
    press('\u0003'); // a second ctrl+c quits without asking again
    await waitFor(() => outcomes[0]?.kind === 'quit', 'the picker to quit');
  });
});

describe('picker help', () => {
  it('fits 80×24: every heading and key on a line of its own, nothing overwritten', async () => {
    const screen = render(<Picker api={fakeApi(DATABASES)} onExit={() => {}} />);
    await waitFor(() => (screen.lastFrame() ?? '').includes('3 databases'), 'the list');
    // A terminal of 80×24.
    Object.defineProperty(screen.stdout, 'columns', { value: 80, configurable: true });
    Object.defineProperty(screen.stdout, 'rows', { value: 24, configurable: true });
    screen.stdout.emit('resize');
    screen.stdin.write('?');
    await waitFor(() => (screen.lastFrame() ?? '').includes('esc close help'), 'the help');
    const lines = (screen.lastFrame() ?? '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(lines).toContain('Databases (moving, ? and Q work alike on every screen)');
    expect(lines.some((l) => /^ {2}l\s+broker log\s+\?\s+help$/.test(l))).toBe(true);
    expect(lines.some((l) => /^ {2}End\/G\s+last\s+esc\s+clear filter$/.test(l))).toBe(true);
    expect(lines.some((l) => /^ {2}r\s+reload\s+o\s+pools$/.test(l))).toBe(true);
    // The other screens one section a line (or two), without the keys they share with the list.
    for (const heading of ['Filter (/)', 'Tunnel details (t, tab)', 'Broker log (l)', 'Details (enter/v)', 'Doctor (d)', 'Queries (q)']) {
      expect(lines.filter((l) => l.startsWith(`${heading}  `))).toHaveLength(1);
    }
    const text = lines.join(' ');
    for (const key of ['ctrl+u clear', 'x close tunnel', 'esc/q close', 'r re-run', 'T terminate session', 'y/Y confirm terminate']) expect(text).toContain(key);
    expect(lines.find((l) => l.startsWith('Broker log (l)'))).toBe('Broker log (l)  enter/v details · esc back');
    screen.unmount();
  });
});
