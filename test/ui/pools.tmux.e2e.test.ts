/**
 * The picker's pools view as a person uses it, in tmux: `azdb demo`, a tunnel to the pooled
 * `inventory`, one psql through it and then a long query from a second: the broker panel and `o`
 * show the one server connection both clients used (idle, then active), never a second login;
 * the long query is cancelled, and Q quits leaving nothing running. Every step polls the pane.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { processesOf, tmuxPane } from '../helpers/tmux.js';
import { BIN } from '../helpers/cli.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';

const tmux = await findTool('tmux');
const psql = await findTool('psql');
const SOCKET = `azdb-pools-e2e-${process.pid}`;
const PANE = 'azdb';

let state: string;
const pane = tmuxPane(tmux.path!, SOCKET, PANE);
const untilText = (text: string | RegExp, timeoutMs = 20_000) =>
  pane.until((s) => (typeof text === 'string' ? s.includes(text) : text.test(s)), String(text), timeoutMs);

async function stopAll(): Promise<void> {
  await pane.run('kill-server');
  await waitFor(async () => (await processesOf(state)).length === 0, 'the demo to stop', 60_000);
}

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'azdb-pools-tui-'));
  await chmod(state, 0o755); // as root, PostgreSQL runs as `postgres` and must enter it
});

afterAll(async () => {
  if (!tmux.skip && state) await stopAll();
  if (state) await rm(state, { recursive: true, force: true });
});

describe.skipIf(tmux.skip || psql.skip)(`the pools view in tmux${tmux.skip ? ` (${tmux.skip})` : psql.skip ? ` (${psql.skip})` : ''}`, () => {
  it('shows the pooled tunnel\'s server connection in the broker panel and with o, live, one login for two clients', { timeout: 240_000 }, async () => {
    await pane.startShell(110, 32, state);
    await pane.type(`node ${BIN} demo; echo "azdb exit status $?"`);
    await pane.keys('Enter');
    await untilText('enter connect · t tunnel', 180_000);

    // A tunnel to inventory (the demo's pooled database), its database named in the prompt.
    await pane.keys('/');
    await pane.type('inventory');
    await untilText(/1 of \d+ databases/);
    await pane.keys('Enter');
    await untilText('enter connect · t tunnel');
    await pane.keys('t');
    await untilText('Open a tunnel to inventory as azdb-demo: choose the database name');
    await pane.type('inventory');
    await pane.keys('Enter');
    const details = await untilText(/uri\s+postgres:\/\/azdb-demo@127\.0\.0\.1:\d+\/inventory/, 60_000);
    const port = /port\s+(\d+)/.exec(details)![1]!;
    await pane.keys('p');
    const password = /password\s+([A-Za-z0-9_-]{20,})/.exec(await untilText(/password\s+[A-Za-z0-9_-]{20,}/))![1]!;
    await pane.keys('p');
    // The panel has the pool from the start, with no server connection yet.
    await untilText(`inventory 127.0.0.1:${port} azdb-demo/inventory · 0 sessions · pool: servers 0 active, 0 idle; 0 waiting`);

    const env = { PGPASSWORD: password, PGSSLMODE: 'disable', PATH: process.env.PATH };
    const psqlArgs = ['-h', '127.0.0.1', '-p', port, '-U', DEMO_IDENTITY.role, '-d', 'inventory'];
    const first = await execa(psql.path!, [...psqlArgs, '-tAc', 'select 1'], { env, extendEnv: false });
    expect(first.stdout.trim()).toBe('1');
    await untilText('pool: servers 0 active, 1 idle; 0 waiting');

    await pane.keys('o');
    await untilText('Pools · server connections shared per database user, name and identity');
    const pools = await untilText('clients 0 active, 0 waiting · servers 0 active, 1 idle, 0 opening · 1 login');
    expect(pools).toContain(`inventory 127.0.0.1:${port} · session mode · at most 5 server connections per key`);
    expect(pools).toMatch(/azdb-demo\/inventory as oid:[0-9a-f]{8}…@[0-9a-f]{8}…/);
    expect(pools).toContain('esc back · ? help · Q quit');
    expect(pools).not.toContain(password);

    // A second client gets the same server connection (still one login), shown while it runs.
    const sleeper = execa(psql.path!, [...psqlArgs, '-c', 'select pg_sleep(60)'], { env, extendEnv: false, reject: false });
    await untilText('clients 1 active, 0 waiting · servers 1 active, 0 idle, 0 opening · 1 login', 30_000);
    sleeper.kill('SIGINT'); // psql cancels its query and exits
    const cancelled = await sleeper;
    expect(cancelled.stderr).toContain('canceling statement due to user request');
    await untilText('clients 0 active, 0 waiting · servers 0 active, 1 idle, 0 opening · 1 login', 30_000);

    // esc back to the list (the panel still sums the pool), Q quits (no session is open).
    await pane.keys('Escape');
    await untilText('enter connect · t tunnel');
    await pane.keys('Q');
    const end = await pane.until((s) => /^azdb exit status \d+/m.test(s), 'azdb to exit', 60_000, pane.screen);
    expect(/^azdb exit status (\d+)/m.exec(end)![1]).toBe('0');
    await waitFor(async () => (await processesOf(state)).length === 0, 'everything the demo started to stop', 60_000);
  });
});
