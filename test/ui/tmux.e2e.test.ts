/**
 * The picker as a person uses it, in tmux: `azdb demo` opens the picker on the emulated Azure;
 * filter, pick the database from the names the server lists and connect with psql, run a query,
 * come back, open a tunnel and connect a second psql (outside tmux) with the shown host, port,
 * user and the password shown on demand, run the doctor on the database, read the whole query of
 * a running `pg_sleep` of a third psql on the queries screen and cancel it, read a broker log line
 * whole, then quit and check that nothing the demo started is still running; on MariaDB, pick
 * `shop` for shopdb. Every step polls the pane with a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { processesOf, tmuxPane } from '../helpers/tmux.js';
import { BIN } from '../helpers/cli.js';
import { isAlive } from '../../src/process/alive.js';

const tmux = await findTool('tmux');
const psql = await findTool('psql');
const mariadbd = await findTool('mariadbd');
const mariadb = await findTool('mariadb', ['mysql']);
const SOCKET = `azdb-e2e-${process.pid}`;
const PANE = 'azdb';

let state: string;

const pane = tmuxPane(tmux.path!, SOCKET, PANE);
const { run: tmuxRun, screen, visible, keys, type } = pane;
/** Polls what is on screen now (the picker's live area is at the bottom), or `capture`. */
const until = (check: (text: string) => boolean, what: string, timeoutMs = 20_000, capture?: () => Promise<string>) => pane.until(check, what, timeoutMs, capture);

const untilText = (text: string | RegExp, timeoutMs?: number) =>
  until((s) => (typeof text === 'string' ? s.includes(text) : text.test(s)), String(text), timeoutMs);

/**
 * `azdb demo` typed into an interactive shell in a fresh tmux server, as a person starts it: with
 * job control, so azdb is the terminal's foreground process group and the shell prints its exit
 * status afterwards.
 */
async function startDemo(): Promise<void> {
  await stopAll();
  await pane.startShell(100, 30, state);
  await type(`node ${BIN} demo; echo "azdb exit status $?"`);
  await keys('Enter');
}

/** Ends the tmux server (SIGHUP to azdb) and waits until nothing of the state folder runs. */
async function stopAll(): Promise<void> {
  await tmuxRun('kill-server');
  await waitFor(async () => (await processesOf(state)).length === 0, 'the previous demo to stop', 60_000);
}

/**
 * Moves the ▸ selection with the arrows onto the row `row` matches, as a person would: `row('▸')`
 * matches it selected, `row('[▸ ]')` selected or not.
 */
async function selectRow(row: (marker: string) => RegExp, what: string): Promise<string> {
  for (let attempt = 0; attempt < 5 && !row('▸').test(await visible()); attempt++) {
    const lines = (await visible()).split('\n');
    const at = lines.findIndex((l) => l.startsWith('▸ '));
    const target = lines.findIndex((l) => row('[▸ ]').test(l));
    for (let i = 0; i < Math.abs(target - at) && at >= 0 && target >= 0; i++) await keys(target > at ? 'Down' : 'Up');
    await until((text) => row('▸').test(text), what, 5_000).catch(() => undefined);
  }
  return until((text) => row('▸').test(text), what, 10_000);
}

/** The picker with its list loaded. */
const pickerReady = (timeoutMs = 120_000) => until((s) => /\d+ databases/.test(s) && s.includes('enter connect · t tunnel'), 'the picker', timeoutMs);

/** Waits for azdb to exit and returns its exit status. */
async function exited(): Promise<string> {
  const text = await until((s) => /^azdb exit status \d+/m.test(s), 'azdb to exit', 60_000, screen);
  return /^azdb exit status (\d+)/m.exec(text)![1]!;
}

/** The pid of the demo's picker process (found by its arguments and state folder). */
async function demoPid(): Promise<number> {
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    try {
      const [cmdline, environ] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/environ`, 'utf8')]);
      const args = cmdline.split('\0').filter(Boolean);
      // `node BIN demo`: the picker's process, not the emulator child (`--json demo --no-tui`) nor tmux.
      if (args[1] === BIN && args.slice(2).join(' ') === 'demo' && environ.split('\0').includes(`AZDB_STATE_DIR=${state}`)) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error('the demo process was not found');
}

async function expectNothingRunning(postmasterPid: number): Promise<void> {
  expect(isAlive(postmasterPid)).toBe(false);
  expect(existsSync(join(state, 'demo', 'postgres', 'data', 'postmaster.pid'))).toBe(false);
  expect(await processesOf(state)).toEqual([]);
}

const postmaster = async () => Number((await readFile(join(state, 'demo', 'postgres', 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'azdb-tui-state-'));
  await chmod(state, 0o755); // as root, PostgreSQL runs as `postgres` and must enter it
});

afterAll(async () => {
  if (!tmux.skip && state) await stopAll();
  if (state) await rm(state, { recursive: true, force: true });
});

describe.skipIf(tmux.skip || psql.skip)(`azdb demo in tmux${tmux.skip ? ` (${tmux.skip})` : psql.skip ? ` (${psql.skip})` : ''}`, () => {
  it('filters, picks a database the server lists, connects with psql, returns, opens a tunnel for a second psql, runs the doctor, reads a pg_sleep query whole and cancels it, reads a log line whole, and quits leaving nothing running', { timeout: 240_000 }, async () => {
    await startDemo();

    // The picker over the emulated Azure (the first start creates the clusters).
    await pickerReady(180_000);
    const postmasterPid = await postmaster();
    expect(isAlive(postmasterPid)).toBe(true);
    const listed = await visible();
    for (const name of ['inventory', 'legacy', 'orders']) expect(listed).toMatch(new RegExp(`${name}\\s+(★ )?\\s*postgres azdb-demo`));

    // Filter, then connect with enter: psql takes over the terminal.
    await keys('/');
    await untilText('filter /');
    await type('orders');
    await untilText(/1 of \d+ databases\s+filter \/orders/);
    await keys('Enter'); // apply the filter
    await until((s) => s.includes('enter connect') && !s.includes('apply filter'), 'the filter applied');
    await keys('Enter');
    await untilText('Connect to orders as azdb-demo: choose the database name');
    // The server's own databases, asked through the broker as azdb-demo: pick orders from them.
    const names = await untilText(/\d+ databases on the server you may use, recent first/, 60_000);
    for (const name of ['postgres', 'inventory', 'orders']) expect(names).toMatch(new RegExp(`^[▸ ] ${name}\\s*$`, 'm'));
    expect(names).not.toMatch(/template/);
    await selectRow((m) => new RegExp(`^${m} orders\\s*$`, 'm'), 'orders selected in the prompt');
    await keys('Enter');
    await untilText('orders=>');
    await type('select count(*) as customers from customers;');
    await keys('Enter');
    const result = await untilText('(1 row)');
    expect(result).toMatch(/customers\s*\n-+\s*\n\s*\d+\s*\n\(1 row\)/);
    await type('\\q');
    await keys('Enter');
    await untilText('psql for orders exited.');
    await untilText('enter connect · t tunnel');

    // A tunnel: its connection details, the password on demand, a second psql outside tmux.
    await keys('t');
    await untilText('Open a tunnel to orders as azdb-demo: choose the database name');
    await until((s) => /▸ orders/.test(s), 'orders suggested first (recent)');
    await keys('Enter');
    const details = await untilText(/uri\s+postgres:\/\/azdb-demo@127\.0\.0\.1:\d+\/orders/);
    expect(details).toMatch(/password\s+•+/);
    const host = /host\s+(\S+)/.exec(details)![1]!;
    const port = /port\s+(\d+)/.exec(details)![1]!;
    const user = /user\s+(\S+)/.exec(details)![1]!;
    const database = /database\s+(\S+)/.exec(details)![1]!;
    expect([host, user, database]).toEqual(['127.0.0.1', 'azdb-demo', 'orders']);
    await keys('p');
    const shown = await untilText(/password\s+[A-Za-z0-9_-]{20,}/);
    const password = /password\s+([A-Za-z0-9_-]{20,})/.exec(shown)![1]!;
    const second = await execa(psql.path!, ['-h', host, '-p', port, '-U', user, '-d', database, '-tAc', 'select count(*) from customers'], {
      env: { PGPASSWORD: password, PGSSLMODE: 'disable', PATH: process.env.PATH },
      extendEnv: false,
    });
    expect(second.stdout.trim()).toMatch(/^\d+$/);
    await keys('p'); // hide it again
    await until((s) => !s.includes(password), 'the password hidden');
    // The broker log (above the live area) saw the session open and close; never the password.
    const log = await until((s) => /orders: session \w+ opened as azdb-demo\/orders/.test(s) && /orders: session \w+ closed/.test(s), 'the session in the broker log', 20_000, screen);
    expect(log).toMatch(/orders: tunnel \w+ listening on 127\.0\.0\.1:\d+/);
    expect(log.split(password).length).toBe(1);

    // The doctor on orders: the checks stream in and pass.
    await keys('Escape');
    await untilText('enter connect · t tunnel');
    await until((s) => /▸ orders/.test(s), 'orders selected');
    await keys('d');
    await untilText('Doctor · orders');
    const doctor = await untilText('No problems found with orders.', 60_000);
    for (const check of ['Config file', 'Entra credential', 'TCP connect', 'TLS and certificate', 'Token audience', 'Login through the broker']) {
      expect(doctor).toMatch(new RegExp(`✓ PASS ${check}`));
    }
    await keys('Escape');
    await untilText('enter connect · t tunnel');

    // A long query from a third psql (outside tmux, through the open tunnel), cancelled from the
    // queries screen: psql gets PostgreSQL's own cancel error.
    const longQuery = `select pg_sleep(60) /* ${'a comment long enough to be cut at the edge of the screen; '.repeat(3)}END-OF-QUERY */`;
    const sleeper = execa(psql.path!, ['-h', host, '-p', port, '-U', user, '-d', database, '-c', longQuery], {
      env: { PGPASSWORD: password, PGSSLMODE: 'disable', PATH: process.env.PATH },
      extendEnv: false,
      reject: false,
    });
    await keys('q');
    await untilText('Queries · orders as azdb-demo/orders');
    const listing = await until((s) => /^[▸ ] \d+\s+azdb-demo\s+\S+\s+active\s.*select pg_sleep\(60\)/m.test(s), 'the pg_sleep session listed', 30_000);
    const pid = /^[▸ ] (\d+)\s+azdb-demo\s+\S+\s+active\s.*select pg_sleep\(60\)/m.exec(listing)![1]!;
    // Move the selection onto it as a person would: the arrows, as many rows as it is away.
    const sleeping = new RegExp(`^▸ ${pid}\\s`, 'm');
    expect(listing).not.toContain('END-OF-QUERY'); // the row is cut to fit
    await selectRow((m) => new RegExp(`^${m} ${pid}\\s`, 'm'), 'the selection on the pg_sleep session');
    // enter: the whole query, wrapped; q back to the table, the selection still on it.
    await keys('Enter');
    const whole = await untilText(`Session ${pid}, as listed at`);
    expect(whole).toMatch(/state\s+active/);
    const wholeQuery = await untilText('END-OF-QUERY */');
    expect(wholeQuery.replace(/\s+/g, ' ')).toContain(longQuery.replace(/\s+/g, ' '));
    await keys('q');
    await untilText(sleeping);
    await keys('c');
    await untilText(`Done: the running query of pid ${pid} was cancelled.`, 30_000);
    const cancelled = await sleeper;
    expect(cancelled.exitCode).not.toBe(0);
    expect(cancelled.stderr).toContain('canceling statement due to user request');
    await until((s) => !/select pg_sleep\(60\)/.test(s.split('\n').filter((l) => /\bactive\b/.test(l)).join('\n')), 'the session no longer active', 15_000);

    // The broker log line by line (l): the newest selected; v shows it whole; q and esc go back.
    await keys('Escape');
    await untilText('enter connect · t tunnel');
    await keys('l');
    const logView = await untilText(/Broker log · \d+ lines/);
    const newest = /^▸ \d\d:\d\d:\d\d (.+?)\s*$/m.exec(logView)![1]!.replace(/…$/, '');
    await keys('v');
    const logLine = await untilText(/Broker log, \d\d:\d\d:\d\d/);
    expect(logLine.replace(/\s+/g, ' ')).toContain(newest.replace(/\s+/g, ' '));
    expect(logLine).toContain('esc/q close');
    await keys('q');
    await untilText(/Broker log · \d+ lines/);
    await keys('Escape');

    // Quit: Q; the demo stops everything it started.
    await untilText('enter connect · t tunnel');
    await keys('Q');
    expect(await exited()).toBe('0');
    const end = await screen();
    expect(end).toContain('Closed 1 tunnel.');
    expect(end).toContain('Stopping the demo...');
    expect(end).not.toContain('SIGTERM'); // the user pressed Q; azdb's own signal to its child is no news
    expect(end).toContain('Demo stopped');
    await expectNothingRunning(postmasterPid);
    const refused = await execa(psql.path!, ['-h', host, '-p', port, '-U', user, '-d', database, '-c', 'select 1'], {
      env: { PGPASSWORD: password, PGSSLMODE: 'disable', PATH: process.env.PATH },
      extendEnv: false,
      reject: false,
    });
    expect(refused.exitCode).not.toBe(0);
  });
  it('ctrl+c in the picker stops the demo', { timeout: 120_000 }, async () => {
    await startDemo();
    await pickerReady();
    const postmasterPid = await postmaster();
    await keys('C-c');
    expect(await exited()).toBe('0');
    expect(await screen()).toContain('Demo stopped');
    await expectNothingRunning(postmasterPid);
  });

  it('SIGTERM while psql has the terminal ends psql and stops the demo; Ctrl+C inside psql does not', { timeout: 120_000 }, async () => {
    await startDemo();
    await pickerReady();
    const postmasterPid = await postmaster();
    await keys('Enter');
    await untilText('choose the database name');
    await keys('Enter'); // the first suggestion
    await untilText(/\w+=> $/m);
    await keys('C-c'); // psql's: the picker stays away, psql stays up
    await type('select 42 as answer;');
    await keys('Enter');
    await untilText(/answer\s*\n-+\s*\n\s*42/);
    process.kill(await demoPid(), 'SIGTERM');
    expect(await exited()).toBe('0');
    expect(await screen()).toContain('Demo stopped');
    await expectNothingRunning(postmasterPid);
  });

  // Last: it makes shopdb the most recent database, first in the list.
  it.skipIf(mariadbd.skip || mariadb.skip)('offers shopdb\'s own databases in the name prompt (MariaDB): shop, then mariadb on it', { timeout: 180_000 }, async () => {
    await startDemo();
    await pickerReady(180_000);
    await keys('/');
    await type('shopdb');
    await untilText(/1 of \d+ databases\s+filter \/shopdb/);
    await keys('Enter'); // apply the filter
    await until((s) => s.includes('enter connect') && !s.includes('apply filter'), 'the filter applied');
    await keys('Enter');
    await untilText('Connect to shopdb as azdb-demo: choose the database name');
    await untilText(/\d+ databases? on the server you may use/, 60_000);
    // "No default database" is still there, and shop with it.
    expect(await visible()).toContain('(no default database)');
    await selectRow((m) => new RegExp(`^${m} shop\\s*$`, 'm'), 'shop selected in the prompt');
    await keys('Enter');
    await untilText(/\[shop\]>/);
    await type('select count(*) as customers from customers;');
    await keys('Enter');
    await untilText(/\|\s+50\s+\|/);
    await type('exit');
    await keys('Enter');
    await untilText(/for shopdb exited\./);
    await keys('Q');
    expect(await exited()).toBe('0');
  });
});
