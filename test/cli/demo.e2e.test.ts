/**
 * `azdb demo --no-tui` as a person runs it: the built CLI in its own state folder brings up the
 * emulated Azure over its own embedded PostgreSQL, another shell reaches it through the env file
 * it writes, and SIGINT stops everything it started.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { BIN } from '../helpers/cli.js';
import { isAlive } from '../../src/process/alive.js';

const psql = await findTool('psql');
const mariadbd = await findTool('mariadbd');
const MYSQL_SERVERS = mariadbd.skip ? [] : ['legacy-mysql', 'shopdb'];

interface DemoDocument {
  config: string;
  env_file: string;
  state_dir: string;
  arm_endpoint: string;
  servers: Array<{ name: string; protocol: string; host: string; port: number; user: string }>;
}

let state: string;
/** The environment a person has: nothing of the emulator's, only where the state goes. */
let baseEnv: Record<string, string | undefined>;

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'azdb-demo-state-'));
  await chmod(state, 0o755); // run as root, PostgreSQL runs as `postgres` and must enter it
  baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, AZDB_STATE_DIR: state, NO_COLOR: '1' };
});

afterAll(async () => {
  await rm(state, { recursive: true, force: true });
});

function startDemo(): { child: ResultPromise; document: Promise<DemoDocument>; stderr: () => string } {
  const child = execa('node', [BIN, '--json', 'demo', '--no-tui'], { env: baseEnv, extendEnv: false, reject: false });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const document = new Promise<DemoDocument>((resolveDocument, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      try {
        resolveDocument(JSON.parse(stdout) as DemoDocument);
      } catch {
        // not whole yet
      }
    });
    child.then((r) => reject(new Error(`demo exited (${r.exitCode}) before it was up:\n${stderr}`)));
  });
  return { child, document, stderr: () => stderr };
}

/** The variables of the env file the demo writes for other shells (`export K='V'` lines). */
async function envFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    const match = /^export (\w+)='(.*)'$/.exec(line);
    if (match) env[match[1]!] = match[2]!.replace(/'\\''/g, "'");
  }
  return env;
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolvePort(true);
    });
    socket.once('error', () => resolvePort(false));
  });
}

describe('azdb demo --no-tui', () => {
  it.skipIf(psql.skip)('comes up, serves another shell through its env file, and leaves nothing running after SIGINT', { timeout: 120_000 }, async () => {
    const demo = startDemo();
    const document = await demo.document;
    expect(document.state_dir).toBe(join(state, 'demo'));
    expect(document.servers.filter((s) => s.protocol === 'postgres').map((s) => s.name).sort()).toEqual(['inventory', 'legacy', 'orders']);
    expect(document.servers.filter((s) => s.protocol === 'mysql').map((s) => s.name).sort()).toEqual(MYSQL_SERVERS);
    const postmasterPid = Number((await readFile(join(state, 'demo', 'postgres', 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    expect(isAlive(postmasterPid)).toBe(true);
    const mariadbPid = mariadbd.skip ? undefined : Number(await readFile(join(state, 'demo', 'mariadb', 'run', 'mariadbd.pid'), 'utf8'));
    if (mariadbPid === undefined) expect(demo.stderr()).toContain('No MySQL servers: MariaDB is not installed (Debian/Ubuntu: apt-get install mariadb-server).');
    else expect(isAlive(mariadbPid)).toBe(true);

    // Another shell: `source env.sh`, then azdb as usual.
    const env = { ...baseEnv, ...(await envFile(document.env_file)) };
    expect(env.AZDB_CONFIG).toBe(document.config);
    expect(env.AZDB_STATE_DIR).toBe(state);
    const ls = await execa('node', [BIN, 'db', 'ls', '--json'], { env, extendEnv: false });
    expect((JSON.parse(ls.stdout) as Array<{ name: string }>).map((d) => d.name)).toEqual(['inventory', 'legacy', 'orders', ...MYSQL_SERVERS].sort());
    const connected = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], {
      env,
      extendEnv: false,
      input: 'select count(*) > 0 as has_customers from customers;\n',
    });
    expect(connected.stdout).toMatch(/has_customers\s*\n-+\s*\n\s*t\s*\n/);
    // The emulator's identity header is a secret of the env file (0600), never printed.
    expect(env.IDENTITY_HEADER).toMatch(/\S{8,}/);
    expect(demo.stderr()).not.toContain(env.IDENTITY_HEADER!);
    expect((await import('node:fs')).statSync(document.env_file).mode & 0o777).toBe(0o600);

    // A second demo on the same state folder leaves the first one alone and says how to use it.
    const envBefore = await readFile(document.env_file, 'utf8');
    const rival = await execa('node', [BIN, 'demo', '--no-tui'], { env: baseEnv, extendEnv: false, reject: false });
    expect(rival.exitCode).toBe(1);
    expect(rival.stderr).toContain(`error: a demo is already running (pid ${demo.child.pid}) in ${join(state, 'demo')}`);
    expect(rival.stderr).toContain(`source ${document.env_file}`);
    expect(isAlive(postmasterPid)).toBe(true);
    if (mariadbPid !== undefined) expect(isAlive(mariadbPid)).toBe(true);
    expect(await readFile(document.env_file, 'utf8')).toBe(envBefore);
    expect((await execa('node', [BIN, 'db', 'ls', '--json'], { env, extendEnv: false })).exitCode).toBe(0);

    demo.child.kill('SIGINT');
    const result = await demo.child;
    expect(result.exitCode).toBe(0);
    expect(demo.stderr()).toMatch(/Demo stopped/);
    expect(isAlive(postmasterPid)).toBe(false);
    if (mariadbPid !== undefined) expect(isAlive(mariadbPid)).toBe(false);
    expect(existsSync(join(state, 'demo', 'postgres', 'data', 'postmaster.pid'))).toBe(false);
    for (const server of document.servers) expect(await portOpen(server.host, server.port)).toBe(false);

    // A second start reuses the cluster and comes up again, at the same addresses: a config or a
    // shell set up against the first start keeps working.
    const again = startDemo();
    const second = await again.document;
    expect(second.servers).toHaveLength(3 + MYSQL_SERVERS.length);
    const addresses = (d: DemoDocument) => d.servers.map((s) => `${s.name} ${s.host}:${s.port}`).sort();
    expect(addresses(second)).toEqual(addresses(document));
    expect(second.arm_endpoint).toBe(document.arm_endpoint);
    expect(await readFile(second.env_file, 'utf8')).toBe(envBefore);
    const afterRestart = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], { env, extendEnv: false, input: 'select 1 as still_there;\n' });
    expect(afterRestart.stdout).toContain('still_there');
    again.child.kill('SIGTERM');
    expect((await again.child).exitCode).toBe(0);
  });

  // Only root hands the servers to the `postgres` and `mysql` users, whom root's own TMPDIR shuts out.
  it.skipIf(process.getuid?.() !== 0)('starts both servers when TMPDIR is closed to their users (as root)', { timeout: 180_000 }, async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'azdb-demo-tmpdir-'));
    const closedTmp = await mkdtemp(join(tmpdir(), 'azdb-root-tmp-'));
    try {
      await chmod(fresh, 0o755);
      await chmod(closedTmp, 0o700); // like pam_tmpdir's /tmp/user/0
      const child = execa('node', [BIN, '--json', 'demo', '--no-tui'], { env: { ...baseEnv, AZDB_STATE_DIR: fresh, TMPDIR: closedTmp }, extendEnv: false, reject: false });
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      let exited = false;
      void child.then(() => (exited = true));
      const document = await waitFor(() => {
        if (exited) throw new Error(`the demo exited before it was up: ${stdout}`);
        try {
          return JSON.parse(stdout) as DemoDocument;
        } catch {
          return undefined;
        }
      }, 'the demo to start with a closed TMPDIR', 150_000);
      expect(document.servers.filter((s) => s.protocol === 'postgres')).toHaveLength(3);
      expect(document.servers.filter((s) => s.protocol === 'mysql')).toHaveLength(MYSQL_SERVERS.length);
      child.kill('SIGTERM');
      expect((await child).exitCode).toBe(0);
    } finally {
      await rm(fresh, { recursive: true, force: true });
      await rm(closedTmp, { recursive: true, force: true });
    }
  });

  // Only root hands PostgreSQL to the `postgres` user, so only then can it fail to enter the folder.
  it.skipIf(process.getuid?.() !== 0)('says what to do when PostgreSQL could not enter the state folder, and exits 1 (as root)', async () => {
    const closed = await mkdtemp(join(tmpdir(), 'azdb-demo-closed-'));
    try {
      await chmod(closed, 0o700);
      const result = await execa('node', [BIN, 'demo', '--no-tui'], { env: { ...baseEnv, AZDB_STATE_DIR: closed }, extendEnv: false, reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`cannot enter ${closed}`);
      expect(result.stderr).toContain(`chmod o+x ${closed}`);
    } finally {
      await rm(closed, { recursive: true, force: true });
    }
  });
});
