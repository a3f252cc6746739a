/**
 * `azdb setup` as a person walks it, in tmux, against the emulated Azure of `azdb demo --no-tui`
 * (started in the background with its own state folder): the shell sources the demo's env.sh,
 * runs `azdb setup` with a fresh config path and goes through the five steps by keys, making a
 * new database user on every server with `x` (the SQL run as the Entra admin); the artifacts are written, the config is valid, the test connection passes, and a second
 * `azdb setup` resumes at "done". Every step polls the pane with a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { processesOf, tmuxPane } from '../helpers/tmux.js';
import { loadConfig } from '../../src/config/load.js';
import { BIN } from '../helpers/cli.js';

const tmux = await findTool('tmux');
const psql = await findTool('psql');
const SOCKET = `azdb-setup-e2e-${process.pid}`;
const PANE = 'setup';

let state: string;
let demo: ResultPromise | undefined;

const pane = tmuxPane(tmux.path!, SOCKET, PANE);
const { run: tmuxRun, screen, keys, type } = pane;
const until = (text: string | RegExp, timeoutMs = 30_000, capture?: () => Promise<string>) =>
  pane.until((s) => (typeof text === 'string' ? s.includes(text) : text.test(s)), String(text), timeoutMs, capture);

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'azdb-setup-state-'));
  await chmod(state, 0o755); // as root, PostgreSQL runs as `postgres` and must enter it
});

afterAll(async () => {
  if (!tmux.skip) await tmuxRun('kill-server');
  if (demo && demo.exitCode === null) {
    demo.kill('SIGTERM');
    await demo.catch(() => {});
  }
  if (state) {
    await waitFor(async () => (await processesOf(state)).length === 0, 'the demo to stop', 60_000).catch(() => {});
    await rm(state, { recursive: true, force: true });
  }
});

describe.skipIf(tmux.skip || psql.skip)(`azdb setup in tmux${tmux.skip ? ` (${tmux.skip})` : psql.skip ? ` (${psql.skip})` : ''}`, () => {
  it('walks the five steps against the emulator, writes the artifacts and a valid config, and resumes at done', { timeout: 300_000 }, async () => {
    demo = execa('node', [BIN, '--json', 'demo', '--no-tui'], { env: { AZDB_STATE_DIR: state, NO_COLOR: '1' }, reject: false });
    let out = '';
    demo.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const started = await waitFor(() => {
      try {
        return JSON.parse(out) as { env_file: string };
      } catch {
        return undefined;
      }
    }, 'the demo to start', 180_000);

    const configFile = join(state, 'fresh', 'azdb.yaml');
    await pane.startShell(120, 40, state);
    await type(`source ${started.env_file}; node ${BIN} --config ${configFile} setup; echo "setup exit status $?"`);
    await keys('Enter');

    await until('PASS DefaultAzureCredential uses ManagedIdentityCredential', 60_000);
    await keys('Enter');
    await until(/PASS discovery lists \d+ server\(s\)/, 60_000);
    await keys('Enter');
    await until(/PASS azdb-demo logs in through the broker/, 60_000);
    // The server's Entra admin, as a person names it: tab to the field, e, type, enter (the check
    // runs again). The demo identity is the emulated servers' admin.
    await keys('Tab');
    await keys('e');
    await until('Entra admin: ▏', 10_000);
    await type('azdb-demo');
    await keys('Enter');
    await pane.until((s) => /Entra admin: azdb-demo(?!▏)/.test(s) && !s.includes('Checking database users') && /PASS azdb-demo logs in/.test(s), 'the check to pass again with the admin set', 60_000);
    await keys('Tab');
    await keys('Tab'); // back to the database user
    // A database user that does not exist yet: the check fails, x runs the SQL as the Entra admin
    // and the check passes.
    // e and the backspaces in one write reach Ink as one chunk, as fast typing over SSH does.
    await keys('e', ...Array<string>('azdb-demo'.length).fill('BSpace'));
    await until('database user: ▏', 10_000);
    await type('azdb-app');
    await until('database user: azdb-app▏', 10_000);
    await keys('Enter');
    await until(/FAIL \d+ of \d+ server\(s\) refuse azdb-app/, 60_000);
    await keys('x');
    await until(/PASS azdb-app logs in through the broker/, 90_000);
    const ran = await screen();
    // The emulated servers of one engine share a real server: the first makes the user, the rest find it.
    expect(ran).toMatch(/(inventory|legacy|orders): ran 1 statement\(s\) as azdb-demo/);
    expect(ran).toMatch(/(shopdb|legacy-mysql): ran 2 statement\(s\) as azdb-demo/);
    expect(ran).not.toContain('could not run the SQL');
    await keys('Enter');
    await until('config check OK', 30_000);
    await keys('Enter');
    await until('PASS connected to', 60_000);
    await keys('Enter');
    await until('Setup is complete', 10_000);
    await keys('q');
    await until(/^setup exit status 0/m, 20_000, screen);

    // Artifacts: named files, the sensitive one 0600, no token anywhere.
    const dir = join(state, 'setup');
    const role = JSON.parse(await readFile(join(dir, 'role.json'), 'utf8')) as { properties: { assignableScopes: string[]; permissions: Array<{ actions: string[] }> } };
    expect(role.properties.permissions[0]!.actions).toContain('Microsoft.DBforPostgreSQL/flexibleServers/read');
    expect(role.properties.assignableScopes[0]).toMatch(/^\/subscriptions\/[0-9a-f-]{36}$/);
    const principals = await readFile(join(dir, 'principals.sql'), 'utf8');
    expect(principals).toContain("pgaadauth_create_principal_with_oid('azdb-app', ");
    expect(principals).toContain("CREATE AADUSER 'azdb-app' IDENTIFIED BY ");
    // The admin's token goes to the clients through the environment, never onto a command line.
    const adminCommands = await readFile(join(dir, 'principals-commands.sh'), 'utf8');
    expect(adminCommands).toContain('MYSQL_PWD=$TOKEN mysql ');
    expect(adminCommands).toContain('azdb-demo@legacy-mysql');
    expect(adminCommands).not.toContain('--password');
    // The managed identity works: no exports.sh with a placeholder secret to source over it.
    expect(await readdir(dir)).not.toContain('exports.sh');
    for (const file of await readdir(dir)) expect(await readFile(join(dir, file), 'utf8')).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
    const config = await loadConfig(configFile);
    expect(config.databases.length).toBeGreaterThan(0);
    expect(config.broker.roles).toEqual(['azure-database-access']);
    expect(config.roles[0]!.spec.allow?.db_users).toContain('azdb-app');

    // A second run resumes at "done" and can open the picker on the new config.
    await keys('clear', 'Enter');
    await type(`node ${BIN} --config ${configFile} setup; echo "second exit status $?"`);
    await keys('Enter');
    await until('Setup is complete', 30_000);
    await keys('o');
    await until(/\d+ databases/, 60_000);
    await keys('C-c'); // the picker's own quit key is the picker's business; Ctrl+C always leaves it
    await until(/^second exit status 0/m, 30_000, screen);
  });
});
