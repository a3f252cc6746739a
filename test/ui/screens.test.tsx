/**
 * The doctor and queries screens inside the picker, over the fake core API, driven with
 * ink-testing-library: every step waits for the frame it expects (no sleeps).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import chalk from 'chalk';
import { Picker } from '../../src/ui/picker/picker.js';
import type { PickerOutcome } from '../../src/ui/picker/hooks.js';
import { DoctorScreen } from '../../src/ui/doctor/views.js';
import { waitFor } from '../helpers/wait.js';
import { check, database, fakeApi, session, type FakeApi } from './fake-api.js';

const DATABASES = [
  database('inventory', { labels: { env: 'staging' } }),
  database('orders', { recent: [{ dbUser: 'azdb-demo', dbName: 'orders', at: '2025-01-02T00:00:00Z' }] }),
  database('legacy', { dbUsers: ['alice', 'bob'], dbNames: ['legacy'] }),
];

const ESC = '\u001b';
const DOWN = '\u001b[B';

afterEach(() => cleanup());

function mount(api: FakeApi = fakeApi(DATABASES), props: { queriesRefreshMs?: number } = {}) {
  const outcomes: PickerOutcome[] = [];
  const screen = render(<Picker api={api} {...props} onExit={(o) => outcomes.push(o)} />);
  const frame = () => screen.lastFrame() ?? '';
  const until = (text: string | RegExp, what = String(text)) =>
    waitFor(() => (typeof text === 'string' ? frame().includes(text) : text.test(frame())) && frame(), `a frame with ${what}:\n${frame()}`, 5_000);
  const gone = (text: string) => waitFor(() => !frame().includes(text) && frame(), `a frame without ${text}:\n${frame()}`, 5_000);
  return { api, screen, frame, until, gone, outcomes, press: (keys: string) => screen.stdin.write(keys) };
}

describe('doctor screen', () => {
  it('d opens the doctor on the selected database: checks stream in, a spinner on the running one', async () => {
    const api = fakeApi(DATABASES);
    api.manualDoctor = true;
    api.doctorResults = [
      check('config', 'pass', '/x/azdb.yaml: 3 databases'),
      check('credential', 'warn', 'the Azure CLI is slow', 'Run `azdb creds`.'),
      check('tcp', 'fail', 'connection refused by 127.0.0.1:5432', 'Check the firewall rules of the server.'),
      check('login', 'skip', 'not run: needs a TCP connection'),
    ];
    const { until, press, frame } = mount(api);
    await until('3 databases');
    press('d');
    await until('Doctor · orders');
    await waitFor(() => api.calls.includes('doctor orders'), 'the doctor to start');
    await until(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] RUN  Config file/);
    expect(frame()).toMatch(/· WAIT Entra credential/);
    expect(frame()).toContain('Checking orders: 0 of 4 checks done…');
    expect(frame()).toContain('enter details · r re-run · ↑↓ move · ? help · esc back · Q quit');
    api.releaseCheck();
    await until('✓ PASS Config file');
    await until(/RUN  Entra credential/);
    api.releaseCheck();
    await until('! WARN Entra credential');
    await until('hint: Run `azdb creds`.');
    api.releaseCheck();
    api.releaseCheck();
    await until('1 check failed: TCP connect. 1 warning.');
    expect(frame()).toContain('✗ FAIL TCP connect');
    expect(frame()).toContain('connection refused by 127.0.0.1:5432');
    expect(frame()).toContain('hint: Check the firewall rules of the server.');
    expect(frame()).toContain('- SKIP Login through the broker');
    expect(frame()).not.toMatch(/RUN /);
  });

  it('r re-runs (stopping the run in flight); esc goes back to the list', async () => {
    const api = fakeApi(DATABASES);
    const { until, press, frame } = mount(api);
    await until('3 databases');
    press('j'); // inventory
    press('d');
    await until('No problems found with inventory.');
    expect(frame()).toContain('✓ PASS Login through the broker');
    api.manualDoctor = true;
    press('r');
    await until('Checking inventory: 0 of 4 checks done…');
    // The screen shows the new run before its effect starts it.
    await waitFor(() => api.doctorRuns.started === 2, 'the second run to start');
    press('r'); // again while running: the first re-run is stopped
    await waitFor(() => api.doctorRuns.started === 3, 'a third run');
    api.releaseCheck();
    api.releaseCheck();
    await waitFor(() => api.doctorRuns.aborted === 1, 'the second run to stop');
    await until('✓ PASS Config file');
    api.manualDoctor = false;
    for (let i = 0; i < 4; i++) api.releaseCheck();
    await until('No problems found with inventory.');
    press(ESC);
    await until('enter connect');
    expect(frame()).toContain('▸ inventory');
  });

  it('shows a check cut to fit whole with enter (or v), scrolled when longer than the screen; esc and q close it; ? lists the keys', async () => {
    const api = fakeApi(DATABASES);
    const chain = Array.from({ length: 40 }, (_, i) => `intermediate-${i}`).join(' ');
    api.doctorResults = [check('config', 'pass', '/x/azdb.yaml: 3 databases'), check('credential', 'pass', `uses ${chain} END-OF-CHAIN`, 'Nothing to do.')];
    const screen = render(<DoctorScreen api={api} name="orders" columns={60} rows={12} onLeave={() => {}} />);
    const frame = () => screen.lastFrame() ?? '';
    const until = (text: string | RegExp) => waitFor(() => (typeof text === 'string' ? frame().includes(text) : text.test(frame())) && frame(), `a frame with ${String(text)}:\n${frame()}`, 5_000);
    await until('No problems found with orders.');
    expect(frame()).not.toContain('END-OF-CHAIN'); // cut to fit
    expect(frame()).toMatch(/^▸ ✓ PASS Config file/m);
    screen.stdin.write('j');
    await until(/^▸ ✓ PASS Entra credential/m);
    screen.stdin.write('v');
    await until('Entra credential · orders');
    expect(frame()).toContain('✓ PASS  uses intermediate-0');
    expect(frame()).toMatch(/lines 1–\d+ of \d+ · ↓ PgDn more/);
    expect(frame()).toContain('↑↓ scroll · PgUp/PgDn page · esc/q close');
    screen.stdin.write('G');
    await until('END-OF-CHAIN');
    await until('hint: Nothing to do.');
    const lines = frame().split('\n');
    expect(lines.length).toBeLessThan(12);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(60);
    screen.stdin.write('q');
    await until('No problems found with orders.');
    expect(frame()).toMatch(/^▸ ✓ PASS Entra credential/m); // the selection stayed
    screen.stdin.write('?');
    await until('Keys of the doctor screen');
    expect(frame()).toMatch(/enter\/v\s+details/);
    screen.stdin.write('\u001b');
    await until('No problems found with orders.');
    screen.unmount();
  });

  it('Q quits from the doctor', async () => {
    const { until, press, outcomes } = mount();
    await until('3 databases');
    press('d');
    await until('No problems found');
    press('Q');
    await waitFor(() => outcomes[0]?.kind === 'quit', 'the picker to quit');
  });

  it('fits 80×24 and reads without colour (NO_COLOR): text markers, no colour codes', async () => {
    const level = chalk.level;
    chalk.level = 3;
    try {
      const api = fakeApi(DATABASES);
      api.doctorResults = [check('config', 'pass', 'x'.repeat(300)), check('credential', 'fail', 'no token', 'y'.repeat(200))];
      const screen = render(<DoctorScreen api={api} name="orders" columns={80} rows={24} onLeave={() => {}} />);
      await waitFor(() => (screen.lastFrame() ?? '').includes('1 check failed'), 'the summary');
      const raw = screen.lastFrame() ?? '';
      expect(raw).not.toMatch(/\u001b\[3\dm/);
      // eslint-disable-next-line no-control-regex
      const frame = raw.replace(/\u001b\[\d+m/g, ''); // bold stays without colour
      expect(frame).toContain('✗ FAIL Entra credential');
      expect(frame.split('\n').length).toBeLessThan(24);
      expect(Math.max(...frame.split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);
    } finally {
      chalk.level = level;
    }
  });
});

describe('queries screen', () => {
  const SESSIONS = [
    session(4242, { state: 'active', durationMs: 42_000, query: 'select pg_sleep(60)' }),
    session(4243, { user: 'bob', state: 'idle', durationMs: 600_000, query: 'select count(*) from customers' }),
  ];

  it('q lists the sessions with the last login; c cancels the selected query and shows the result', async () => {
    const api = fakeApi(DATABASES);
    api.sessions = SESSIONS.map((s) => ({ ...s }));
    const { until, press, frame } = mount(api);
    await until('3 databases');
    press('q');
    await until('Queries · orders as azdb-demo/orders');
    // The header names the login before the screen's effect opens it; the listing comes after.
    await until('2 other sessions');
    expect(api.calls).toContain('openQueries orders azdb-demo/orders');
    expect(frame()).toMatch(/PID\s+USER\s+DATABASE\s+STATE\s+DURATION\s+QUERY/);
    expect(frame()).toMatch(/▸ 4242\s+azdb-demo\s+orders\s+active\s+42 s\s+select pg_sleep\(60\)/);
    expect(frame()).toMatch(/4243\s+bob\s+orders\s+idle\s+10 min 0 s\s+select count/);
    expect(frame()).toContain('c cancel · T terminate · enter details · r refresh · ? help · esc back · Q quit');
    press('c');
    await until('Done: the running query of pid 4242 was cancelled.');
    expect(api.calls).toContain('cancel 4242');
    await until(/▸ 4242\s+azdb-demo\s+orders\s+idle/); // listed again
  });

  it('T asks before terminating; n keeps the session, y ends it; a refusal shows its hint; k only moves', async () => {
    const api = fakeApi(DATABASES);
    api.sessions = SESSIONS.map((s) => ({ ...s }));
    api.actAnswers.set(4243, { status: 'refused', message: 'azdb-demo may not terminate pid 4243: permission denied', hint: 'grant the role pg_signal_backend' });
    const { until, gone, press, frame } = mount(api);
    await until('3 databases');
    press('q');
    await until('2 other sessions');
    press('T');
    await until('Terminate session 4242 (azdb-demo · select pg_sleep(60))? y/n');
    expect(frame()).toContain('y terminate · n keep it');
    press('n');
    await gone('? y/n');
    expect(api.calls).not.toContain('terminate 4242');
    press(DOWN);
    await until(/▸ 4243/);
    press('T');
    await until('Terminate session 4243');
    press('y');
    await until('Refused: azdb-demo may not terminate pid 4243: permission denied');
    await until('hint: grant the role pg_signal_backend');
    press('k'); // k moves up, as everywhere
    await until(/▸ 4242/);
    expect(frame()).not.toContain('? y/n');
    press('T');
    await until('Terminate session 4242');
    press('y');
    await until('Done: session 4242 was terminated.');
    await until('1 other session');
    expect(frame()).not.toContain('pg_sleep');
  });

  it('shows the selected session\'s whole query with enter, wrapped; the selection stays on its pid across refreshes; q goes back', async () => {
    const long = `select o.id, c.name from orders o join customers c on c.id = o.customer_id where ${"o.status = 'shipped' and ".repeat(6)}true -- END`;
    const api = fakeApi(DATABASES);
    api.sessions = [session(4242, { state: 'active', query: 'select pg_sleep(60)' }), session(4243, { user: 'bob', query: long })];
    const { until, press, frame } = mount(api, { queriesRefreshMs: 50 });
    await until('3 databases');
    press('q');
    await until('2 other sessions');
    expect(frame()).not.toContain('-- END'); // cut to fit
    press(DOWN);
    await until(/▸ 4243/);
    press('\r');
    await until('Session 4243, as listed at');
    expect(frame()).toContain('user     bob');
    await until('-- END');
    // Wrapped, not cut: every line fits the 100 columns, and the query's words are all there.
    expect(Math.max(...frame().split('\n').map((l) => l.length))).toBeLessThanOrEqual(100);
    expect(frame().replace(/\s+/g, ' ')).toContain(long.replace(/\s+/g, ' '));
    expect(frame()).toContain('↑↓ scroll · PgUp/PgDn page · esc/q close · ? help · Q quit');
    // Refreshes go on behind it (a new session sorts first); the selection follows pid 4243.
    api.sessions = [session(1, { query: 'select 1' }), ...api.sessions];
    const listings = api.calls.filter((c) => c === 'list').length;
    await waitFor(() => api.calls.filter((c) => c === 'list').length > listings + 1, 'refreshes');
    await until('3 other sessions');
    press('q');
    await until(/▸ 4243\s+bob/);
    expect(frame()).toMatch(/^ {2}1\s+azdb-demo/m);
    press('v');
    await until('Session 4243');
    press('\u001b');
    await until(/▸ 4243\s+bob/);
  });

  it('refreshes by itself and with r', async () => {
    const api = fakeApi(DATABASES);
    const { until, press } = mount(api, { queriesRefreshMs: 50 });
    await until('3 databases');
    press('q');
    await until('No other sessions on the server.');
    api.sessions = [session(7, { query: 'select now()' })];
    await until('1 other session'); // the timer
    api.sessions = [];
    press('r');
    await until('No other sessions on the server.');
  });

  it('asks for the login where the roles leave a choice', async () => {
    const { api, until, press } = mount();
    await until('3 databases');
    press('G'); // legacy, last
    await until(/▸ legacy/);
    press('q');
    await until('List the sessions of legacy: choose the database user');
    press('j');
    await until(/▸ bob/);
    press('\r');
    await until('Queries · legacy as bob/legacy');
    // The header names the login before the screen's effect opens it.
    await waitFor(() => api.calls.includes('openQueries legacy bob/legacy'), 'the queries screen to log in as bob/legacy');
  });

  it('shows a failed login with its hint; r logs in again; esc goes back and closes the login', async () => {
    const api = fakeApi(DATABASES);
    api.failNext.openQueries = Object.assign(new Error('could not log in to orders as azdb-demo: password authentication failed'), { hint: 'Run `azdb doctor orders`.' });
    const { until, press } = mount(api);
    await until('3 databases');
    press('q');
    await until('Could not log in to orders: could not log in to orders as azdb-demo: password authentication failed');
    await until('hint: Run `azdb doctor orders`. (r retries)');
    press('r');
    await until('No other sessions on the server.');
    expect(api.openHandles).toBe(1);
    press(ESC);
    await until('enter connect');
    await waitFor(() => api.openHandles === 0, 'the login closed');
  });
});
