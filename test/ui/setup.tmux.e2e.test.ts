/**
 * `azdb setup` as a person walks it, in tmux, against the emulated Azure of `azdb demo --no-tui`
 * (started in the background with its own state folder): the shell sources the demo's env.sh,
 * runs `azdb setup` with a fresh config path and goes through the five steps by keys, choosing a
 * privilege level and the databases of each engine, and making a new database user on every
 * server with `x` (the SQL run as the Entra admin); the artifacts are written, the config is
 * valid, the test connection passes, and a second
 * `azdb setup` resumes at "done". Every step polls the pane with a deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
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
/** The screen shows `answer` (in the frame that starts its check) and that check's result. */
const settled = (answer: RegExp) =>
  pane.until((s) => answer.test(s) && !s.includes('Checking database users') && /^\s*(PASS|FAIL) /m.test(s), `${String(answer)} and its check`, 60_000);

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
    // No MySQL database named yet: the user could log in but use nothing there.
    await until(/FAIL azdb-demo logs in but may use nothing on MySQL: no database named/, 60_000);
    // What the user may do, on which databases: the privilege level is chosen with the arrows.
    await keys('Tab');
    await keys('e');
    await until('(↑/↓ choose, enter save, esc cancel)', 10_000);
    await keys('Down');
    await until('● read-write', 10_000);
    await keys('Enter');
    // Each saved answer runs the check again, and keys wait for it (while it runs, e and tab do
    // nothing and letters are commands).
    await settled(/privilege level: read-write — /);
    await keys('Tab');
    await keys('e', ...Array<string>('postgres'.length).fill('BSpace'));
    await until('PostgreSQL databases: ▏', 10_000);
    await type('orders');
    await keys('Enter');
    await settled(/PostgreSQL databases: orders(?!▏)/);
    await keys('Tab');
    await keys('e');
    await until('MySQL databases: ▏', 10_000);
    await type('shop');
    await keys('Enter');
    await settled(/MySQL databases: shop(?!▏)/);
    await until(/PASS azdb-demo logs in/, 10_000);
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
    // The emulated servers of one engine share a real server: the first makes the user, the rest
    // find it and still grant. read-write: the create, 6 GRANTs and the check on PostgreSQL; the
    // create and one GRANT on MySQL.
    expect(ran).toMatch(/(inventory|legacy|orders): ran 8 statement\(s\) as azdb-demo/);
    expect(ran).toMatch(/(inventory|legacy|orders): azdb-app exists already \(not made again\); ran 8 statement/);
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
    // One SQL file per engine, each for its own client, with the level asked for on the databases named.
    expect(await readdir(dir)).not.toContain('principals.sql');
    const pg = await readFile(join(dir, 'principals-postgres.sql'), 'utf8');
    expect(pg).toContain("pgaadauth_create_principal_with_oid('azdb-app', ");
    expect(pg).toContain('\\connect orders');
    expect(pg).toContain('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "azdb-app";');
    expect(pg).not.toContain('AADUSER');
    const mysql = await readFile(join(dir, 'principals-mysql.sql'), 'utf8');
    expect(mysql).toContain("CREATE AADUSER 'azdb-app' IDENTIFIED BY ");
    expect(mysql).toContain("GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO 'azdb-app'@'%';");
    expect(mysql).not.toMatch(/\*\.\*|pgaadauth/);
    // A script that runs (test/core/setup-principals.e2e runs one); the admin's token goes to the
    // clients through the environment, never onto a command line.
    const commands = join(dir, 'principals-commands.sh');
    expect((await stat(commands)).mode & 0o111).not.toBe(0);
    const adminCommands = await readFile(commands, 'utf8');
    expect(adminCommands).toContain('MYSQL_PWD=$TOKEN "$mysql_client"');
    expect(adminCommands).toMatch(/^run_mysql legacy-mysql 127\.0\.0\.1 \d+ azdb-demo@legacy-mysql /m);
    expect(adminCommands).toMatch(/^run_postgres orders orders\.postgres\.database\.azure\.com 127\.0\.0\.1 \d+ azdb-demo /m);
    expect(adminCommands).not.toMatch(/--password|--enable-cleartext-plugin|sslmode=require/);
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
