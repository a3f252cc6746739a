/**
 * `azdb serve` as an operator runs it: the built CLI as a child process with the emulated managed
 * identity, listeners from the config, pg and mysql2 as clients, /healthz /readyz /metrics over
 * HTTP, SIGHUP and SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { BIN, requireBuild, writeEmulatedConfig } from '../helpers/cli.js';
import type { ListenerInput } from '../../src/config/schema.js';
import { loadOrCreateCa } from '../../src/emulator/ca.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { JWT } from '../helpers/broker-fixtures.js';

const mariadbd = await findTool('mariadbd');
const USER = DEMO_IDENTITY.role;

let azure: EmulatedAzure & { dir: string };
let work: string;
let env: Record<string, string>;
let configCount = 0;

interface LogLine {
  time: string;
  level: string;
  event: string;
  [key: string]: unknown;
}

interface Serve {
  child: ResultPromise;
  logs: () => LogLine[];
  stderr: () => string;
  stdout: () => string;
  waitForLog(event: string, match?: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

function writeConfig(
  file: string,
  options: { listeners: ListenerInput[]; http?: string; names?: string[]; auditPath?: string; auditOnFailure?: 'block' | 'drop' },
): Promise<void> {
  return writeEmulatedConfig(file, azure, {
    role: 'svc',
    allow: { db_users: [USER], db_names: options.names ?? ['*'] },
    broker: {
      listeners: options.listeners,
      audit: { path: options.auditPath ?? join(work, 'audit.jsonl'), queries: true, ...(options.auditOnFailure ? { on_failure: options.auditOnFailure } : {}) },
      ...(options.http ? { http: { address: options.http } } : {}),
    },
  });
}

async function newConfig(options: Parameters<typeof writeConfig>[1]): Promise<string> {
  const file = join(work, `serve-${(configCount += 1)}.yaml`);
  await writeConfig(file, options);
  return file;
}

function startServe(config: string, args: string[] = [], extraEnv: Record<string, string> = {}): Serve {
  const child = execa('node', [BIN, '--config', config, 'serve', ...args], { env: { ...env, ...extraEnv }, reject: false });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const logs = (): LogLine[] =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  return {
    child,
    logs,
    stderr: () => stderr,
    stdout: () => stdout,
    waitForLog: (event, match = () => true, timeoutMs) =>
      waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`azdb serve exited ${child.exitCode} waiting for ${event}:\n${stderr}`);
          return logs().find((l) => l.event === event && match(l));
        },
        `log event ${event}\n${stderr}`,
        timeoutMs,
      ),
  };
}

async function stopServe(serve: Serve): Promise<number | undefined> {
  if (serve.child.exitCode === null) serve.child.kill('SIGTERM');
  return (await serve.child).exitCode;
}

async function http(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

async function metrics(port: number) {
  const response = await http(port, '/metrics');
  expect(response.status).toBe(200);
  expect(response.type).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(response.body);
}

async function generatedPassword(serve: Serve, database: string): Promise<{ path: string; password: string }> {
  const up = await serve.waitForLog('listener.up', (l) => l.database === database);
  const path = up.generated_password_file as string;
  expect(path).toContain(join(work, 'state', 'serve'));
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  return { path, password: (await readFile(path, 'utf8')).trim() };
}

function refused(port: number): Promise<string> {
  return new Promise((resolvePromise) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolvePromise('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolvePromise(error.code ?? 'error'));
  });
}

function pgClient(port: number, password: string, database = 'orders', extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: USER, database, password, ...extra });
}

beforeAll(async () => {
  requireBuild('cli/commands/serve.js');
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-serve-'));
  env = { ...azure.identity.env(), AZDB_STATE_DIR: join(work, 'state'), NO_COLOR: '1' };
});

afterAll(async () => {
  await azure?.stop();
});

describe('azdb serve', () => {
  it.skipIf(mariadbd.skip)('serves a PostgreSQL and a MySQL listener at once, with /healthz, /readyz and /metrics that move', async () => {
    const [pgPort, myPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const passwordFile = join(work, 'shopdb.password');
    const myPassword = 'correct horse battery staple';
    await writeFile(passwordFile, `${myPassword}\n`, { mode: 0o600 });
    const config = await newConfig({
      listeners: [
        { database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders' },
        { database: 'shopdb', host: '127.0.0.1', port: myPort, db_user: USER, db_name: 'shop', password_file: passwordFile },
      ],
      http: `127.0.0.1:${httpPort}`,
    });
    const serve = startServe(config);
    try {
      await serve.waitForLog('serve.start');
      const generated = await generatedPassword(serve, 'orders');
      await serve.waitForLog('listener.up', (l) => l.database === 'shopdb' && l.password_file === passwordFile);

      expect(await http(httpPort, '/healthz')).toMatchObject({ status: 200 });
      const ready = await waitFor(async () => {
        const r = await http(httpPort, '/readyz');
        return r.status === 200 && r;
      }, '/readyz 200');
      const readiness = JSON.parse(ready.body) as { ready: boolean; checks: { listeners: Array<{ listening: boolean }>; token: { ok: boolean } } };
      expect(readiness.ready).toBe(true);
      expect(readiness.checks.listeners).toHaveLength(2);
      expect(readiness.checks.listeners.every((l) => l.listening)).toBe(true);
      expect(readiness.checks.token.ok).toBe(true);
      expect((await http(httpPort, '/nope')).status).toBe(404);

      const before = await metrics(httpPort);
      expect(before.value('azdb_listener_up', { listener: `orders@127.0.0.1:${pgPort}`, database: 'orders' })).toBe(1);
      expect(before.value('azdb_listener_up', { listener: `shopdb@127.0.0.1:${myPort}`, database: 'shopdb' })).toBe(1);
      expect(before.sum('azdb_sessions_total')).toBe(0);
      expect(before.value('azdb_token_fetches_total', { reason: 'missing' })).toBe(1);
      expect(before.types.get('azdb_sessions_total')).toBe('counter');

      const c = pgClient(pgPort, generated.password);
      await c.connect();
      expect((await c.query('select count(*)::int as n from customers')).rows[0].n).toBe(50);
      const during = await metrics(httpPort);
      expect(during.value('azdb_sessions_open', { database: 'orders', protocol: 'postgres' })).toBe(1);
      await c.end();

      const my = await mysql.createConnection({ host: '127.0.0.1', port: myPort, user: USER, password: myPassword, database: 'shop' });
      const [rows] = await my.query('select count(*) as n from products');
      expect(Number((rows as Array<{ n: number }>)[0]!.n)).toBeGreaterThan(0);
      await my.end();

      const wrong = pgClient(pgPort, 'not the password');
      await expect(wrong.connect()).rejects.toMatchObject({ code: '28P01' });

      const after = await waitFor(async () => {
        const m = await metrics(httpPort);
        return m.value('azdb_sessions_total', { database: 'shopdb', protocol: 'mysql', result: 'ok' }) === 1 &&
          m.value('azdb_sessions_total', { database: 'orders', protocol: 'postgres', result: 'rejected' }) === 1 && m;
      }, 'session counters');
      expect(after.value('azdb_sessions_total', { database: 'orders', protocol: 'postgres', result: 'ok' })).toBe(1);
      expect(after.value('azdb_sessions_open', { database: 'orders', protocol: 'postgres' })).toBe(0);
      expect(after.value('azdb_client_received_bytes_total', { database: 'orders', protocol: 'postgres' })).toBeGreaterThan(0);
      expect(after.value('azdb_client_sent_bytes_total', { database: 'shopdb', protocol: 'mysql' })).toBeGreaterThan(0);
      expect(after.value('azdb_errors_total', { kind: 'session' })).toBe(1);
      // One fetch served every session: no token request on the connection path.
      expect(after.value('azdb_token_fetches_total', { reason: 'missing' })).toBe(1);
      expect(after.value('azdb_token_expiry_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000);

      const ends = await waitFor(() => serve.logs().filter((l) => l.event === 'session.end').length === 2 && serve.logs(), 'session.end logs');
      expect(ends.find((l) => l.event === 'session.end' && l.protocol === 'mysql')).toMatchObject({ result: 'ok', db_user: USER, db_name: 'shop' });
      expect(ends.find((l) => l.event === 'session.rejected')).toMatchObject({ database: 'orders' });

      expect(await stopServe(serve)).toBe(0);
      for (const text of [serve.stderr(), serve.stdout(), after.samples.size > 0 ? [...after.samples.keys()].join('\n') : '']) {
        expect(text).not.toContain(generated.password);
        expect(text).not.toContain(myPassword);
        expect(text).not.toMatch(JWT);
      }
      const audit = await readFile(join(work, 'audit.jsonl'), 'utf8');
      expect(audit).toContain('select count(*)::int as n from customers');
      expect(audit).not.toContain(generated.password);
    } finally {
      await stopServe(serve);
    }
  });

  it('reloads on SIGHUP: adds a listener, removes another, applies new roles, and rejects a broken config', async () => {
    const [portA, portB, httpPort] = [await freePort(), await freePort(), await freePort()];
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port: portA, db_user: USER }], http: `127.0.0.1:${httpPort}` });
    const serve = startServe(config);
    try {
      await serve.waitForLog('serve.start');
      const a = await generatedPassword(serve, 'orders');
      const c = pgClient(portA, a.password, 'postgres');
      await c.connect();
      await c.end();

      await writeConfig(config, { listeners: [{ database: 'inventory', host: '127.0.0.1', port: portB, db_user: USER }], http: `127.0.0.1:${httpPort}`, names: ['inventory'] });
      serve.child.kill('SIGHUP');
      await serve.waitForLog('reload');
      await serve.waitForLog('listener.down', (l) => l.database === 'orders' && l.why === 'removed');
      const b = await generatedPassword(serve, 'inventory');
      expect(await refused(portA)).toBe('ECONNREFUSED');
      const ok = pgClient(portB, b.password, 'inventory');
      await ok.connect();
      expect((await ok.query('select current_database() as db')).rows[0].db).toBe('inventory');
      await ok.end();
      // The new role allows only the inventory database.
      const denied = pgClient(portB, b.password, 'postgres');
      await expect(denied.connect()).rejects.toMatchObject({ code: '28000' });

      await writeFile(config, 'version: v1\nbroker: {listeners: [{database: nowhere, port: 0}]}\n');
      serve.child.kill('SIGHUP');
      const rejected = await serve.waitForLog('reload.rejected');
      expect(rejected.error).toMatch(/errors? in config/);
      const still = pgClient(portB, b.password, 'inventory');
      await still.connect();

      // A changed listener (same port, now to the orders server) is restarted; its open session drains on.
      await writeConfig(config, { listeners: [{ database: 'orders', host: '127.0.0.1', port: portB, db_user: USER }], http: `127.0.0.1:${httpPort}`, names: ['*'] });
      serve.child.kill('SIGHUP');
      await serve.waitForLog('listener.down', (l) => l.database === 'inventory' && l.why === 'changed' && l.draining_sessions === 1);
      await waitFor(() => serve.logs().filter((l) => l.event === 'reload').length === 2, 'the second reload');
      expect((await still.query('select current_database() as db, count(*)::int as n from stock')).rows[0]).toMatchObject({ db: 'inventory' });
      await still.end();
      const changed = pgClient(portB, b.password, 'orders');
      await changed.connect();
      expect((await changed.query('select count(*)::int as n from customers')).rows[0].n).toBe(50);
      await changed.end();

      const m = await metrics(httpPort);
      expect(m.value('azdb_config_reloads_total', { result: 'ok' })).toBe(2);
      expect(m.value('azdb_config_reloads_total', { result: 'error' })).toBe(1);
      expect(m.value('azdb_listener_up', { listener: `orders@127.0.0.1:${portA}`, database: 'orders' })).toBeUndefined();
      const readiness = JSON.parse((await http(httpPort, '/readyz')).body) as { checks: { config: { last_reload: { ok: boolean } } } };
      expect(readiness.checks.config.last_reload.ok).toBe(true);
      expect(await stopServe(serve)).toBe(0);
    } finally {
      await stopServe(serve);
    }
  });

  it('drains on SIGTERM: stops accepting, lets the running query finish, then exits 0', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const auditPath = join(work, 'drain-audit.jsonl');
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port, db_user: USER, db_name: 'orders' }], http: `127.0.0.1:${httpPort}`, auditPath });
    const serve = startServe(config);
    try {
      await serve.waitForLog('serve.start');
      const { password } = await generatedPassword(serve, 'orders');
      // The query waits on a lock this test holds, so it is still running however slow the machine.
      const holder = new pg.Client({ host: azure.realPostgres.socketDir, port: azure.realPostgres.port, user: 'postgres', database: 'orders' });
      await holder.connect();
      await holder.query('select pg_advisory_lock(4242)');
      const c = pgClient(port, password);
      await c.connect();
      let finished = false;
      const running = c.query('select pg_advisory_lock(4242), 42 as answer').finally(() => (finished = true));
      try {
        await waitFor(async () => existsSync(auditPath) && (await readFile(auditPath, 'utf8')).includes('pg_advisory_lock'), 'the query in the audit');
        serve.child.kill('SIGTERM');
        const shutdown = await serve.waitForLog('shutdown');
        expect(shutdown.open_sessions).toBe(1);
        expect(await refused(port)).toBe('ECONNREFUSED');
        expect((await http(httpPort, '/readyz')).status).toBe(503);
        expect((await http(httpPort, '/healthz')).status).toBe(200);
        expect(finished).toBe(false);
      } finally {
        await holder.query('select pg_advisory_unlock(4242)');
        await holder.end();
      }
      expect((await running).rows[0].answer).toBe(42);
      await c.end();
      expect((await serve.child).exitCode).toBe(0);
      expect(serve.logs().find((l) => l.event === 'shutdown.done')).toMatchObject({ sessions_cut: 0 });
    } finally {
      await stopServe(serve);
    }
  });

  it('--workers 2: spreads connections over both workers, sums /metrics, replaces a dead worker, and reloads and drains both', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port, db_user: USER, db_name: 'orders' }], http: `127.0.0.1:${httpPort}` });
    const serve = startServe(config, ['--workers', '2']);
    const clients: pg.Client[] = [];
    try {
      const start = await serve.waitForLog('serve.start');
      const workers = (start.workers as string[]).map(Number).sort();
      expect(new Set(workers).size).toBe(2);
      expect(workers).not.toContain(start.pid);
      // Each worker starts the listener; both accept the one password the primary wrote.
      const { password } = await generatedPassword(serve, 'orders');
      await waitFor(() => serve.logs().filter((l) => l.event === 'listener.up').length === 2, 'the listener up in both workers');
      const killed: unknown[] = [];
      for (let i = 0; i < 4; i += 1) {
        const c = pgClient(port, password);
        c.on('error', (error) => killed.push(error)); // the sessions of the worker killed below
        await c.connect();
        clients.push(c);
      }
      const starts = await waitFor(() => {
        const lines = serve.logs().filter((l) => l.event === 'session.start');
        return lines.length === 4 ? lines : undefined;
      }, 'four session.start lines');
      expect([...new Set(starts.map((l) => l.worker as number))].sort()).toEqual(workers);

      const m = await metrics(httpPort);
      expect(m.value('azdb_sessions_open', { database: 'orders', protocol: 'postgres' })).toBe(4);
      expect(m.value('azdb_listener_up', { listener: `orders@127.0.0.1:${port}`, database: 'orders' })).toBe(1);
      const ready = JSON.parse((await http(httpPort, '/readyz')).body) as { ready: boolean; checks: { sessions: { open: number }; workers: Array<{ worker: number; ready: boolean }> } };
      expect(ready.ready).toBe(true);
      expect(ready.checks.sessions.open).toBe(4);
      expect(ready.checks.workers.map((w) => w.worker).sort()).toEqual(workers);

      // A worker that dies is replaced; its sessions are gone, the other worker's go on.
      const [victim, survivor] = [starts[0]!.worker as number, workers.find((w) => w !== starts[0]!.worker)!];
      process.kill(victim, 'SIGKILL');
      const replaced = await serve.waitForLog('worker.start');
      expect(serve.logs().find((l) => l.event === 'worker.exit')).toMatchObject({ worker: victim, signal: 'SIGKILL' });
      await waitFor(() => killed.length === 2, 'the killed worker\'s two sessions cut');
      for (const c of clients.splice(0)) await c.end().catch(() => {});
      await waitFor(async () => (JSON.parse((await http(httpPort, '/readyz')).body) as { ready: boolean }).ready, 'ready again with a new worker');
      workers.splice(0, workers.length, ...[survivor, replaced.worker as number].sort());
      await waitFor(() => serve.logs().filter((l) => l.event === 'listener.up').length === 3, 'the listener up in the new worker');
      for (let i = 0; i < 4; i += 1) {
        const c = pgClient(port, password);
        await c.connect();
        clients.push(c);
      }
      await waitFor(() => serve.logs().filter((l) => l.event === 'session.start' && l.worker === replaced.worker).length > 0, 'a session in the new worker');

      serve.child.kill('SIGHUP');
      await waitFor(() => new Set(serve.logs().filter((l) => l.event === 'reload').map((l) => l.worker)).size === 2, 'a reload in each worker');
      expect((await metrics(httpPort)).value('azdb_config_reloads_total', { result: 'ok' })).toBe(2);

      serve.child.kill('SIGTERM');
      await waitFor(() => new Set(serve.logs().filter((l) => l.event === 'shutdown').map((l) => l.worker)).size === 2, 'a shutdown in each worker');
      expect(serve.logs().filter((l) => l.event === 'shutdown').map((l) => l.open_sessions)).toEqual([2, 2]);
      await waitFor(async () => (await refused(port)) === 'ECONNREFUSED', 'the listener closed');
      expect((await http(httpPort, '/readyz')).status).toBe(503);
      // Open sessions drain on: each still answers until its client ends it.
      for (const c of clients) expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      for (const c of clients.splice(0)) await c.end();
      expect((await serve.child).exitCode).toBe(0);
      expect(serve.logs().filter((l) => l.event === 'shutdown.done')).toHaveLength(2);
    } finally {
      for (const c of clients) await c.end().catch(() => {});
      await stopServe(serve);
    }
  });

  it('--workers 2 refuses `broker.audit.path: "-"` at start and on reload: the workers\' writes to one stdout pipe could interleave mid-line', async () => {
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port: await freePort(), db_user: USER }], auditPath: '-' });
    const refusedStart = await execa('node', [BIN, '--config', config, 'serve', '--workers', '2'], { env, reject: false });
    expect(refusedStart.exitCode).toBe(1);
    expect(refusedStart.stderr).toContain('broker.audit.path "-" (stdout) cannot be shared by 2 workers');
    expect(refusedStart.stderr).toContain('Give broker.audit.path a file');
    expect(refusedStart.stdout).toBe('');

    // Nor can a reload switch the workers' audit to it: each worker refuses it and keeps its file.
    const port = await freePort();
    const listeners = [{ database: 'orders', host: '127.0.0.1', port, db_user: USER }];
    const running = await newConfig({ listeners });
    const serve = startServe(running, ['--workers', '2']);
    try {
      // Two workers starting on a loaded machine: a generous deadline.
      await waitFor(() => serve.logs().filter((l) => l.event === 'listener.up').length === 2, 'the listener up in both workers', 60_000);
      await writeConfig(running, { listeners, auditPath: '-' });
      serve.child.kill('SIGHUP');
      const rejected = await waitFor(() => {
        const lines = serve.logs().filter((l) => l.event === 'reload.rejected');
        return lines.length === 2 ? lines : undefined;
      }, 'a rejected reload in each worker', 60_000);
      for (const line of rejected) expect(line.error).toContain('broker.audit.path "-" (stdout) cannot be shared by the workers of azdb serve --workers');
      expect(serve.stdout()).toBe('');
    } finally {
      await stopServe(serve);
    }
  });

  it('cuts sessions still open at the --drain-seconds deadline and exits 0', async () => {
    const port = await freePort();
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port, db_user: USER, db_name: 'orders' }] });
    const serve = startServe(config, ['--drain-seconds', '1']);
    try {
      await serve.waitForLog('serve.start');
      const { password } = await generatedPassword(serve, 'orders');
      const idle = pgClient(port, password);
      await idle.connect();
      const ended = new Promise<void>((r) => idle.on('error', () => r()).on('end', () => r()));
      serve.child.kill('SIGTERM');
      expect((await serve.child).exitCode).toBe(0);
      await ended;
      expect(serve.logs().find((l) => l.event === 'shutdown.done')).toMatchObject({ sessions_cut: 1 });
    } finally {
      await stopServe(serve);
    }
  });

  it.skipIf(mariadbd.skip)('refuses sessions over --max-connections with each protocol\'s own error', async () => {
    const [pgPort, myPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const passwordFile = join(work, 'cap.password');
    await writeFile(passwordFile, 'cap-password-of-this-test\n', { mode: 0o600 });
    const config = await newConfig({
      listeners: [
        { database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders', password_file: passwordFile },
        { database: 'shopdb', host: '127.0.0.1', port: myPort, db_user: USER, db_name: 'shop', password_file: passwordFile },
      ],
      http: `127.0.0.1:${httpPort}`,
    });
    const serve = startServe(config, ['--max-connections', '1']);
    try {
      await serve.waitForLog('serve.start');
      const first = pgClient(pgPort, 'cap-password-of-this-test');
      await first.connect();
      const second = pgClient(pgPort, 'cap-password-of-this-test');
      await expect(second.connect()).rejects.toMatchObject({ code: '53300', message: 'sorry, too many clients already' });
      await expect(mysql.createConnection({ host: '127.0.0.1', port: myPort, user: USER, password: 'cap-password-of-this-test', database: 'shop' })).rejects.toMatchObject({
        errno: 1040,
        sqlState: '08004',
      });
      // Counted once the refused client has hung up.
      const m = await waitFor(async () => {
        const now = await metrics(httpPort);
        return now.value('azdb_sessions_total', { database: 'shopdb', protocol: 'mysql', result: 'refused' }) === 1 && now;
      }, 'the refusals in /metrics');
      expect(m.value('azdb_sessions_total', { database: 'orders', protocol: 'postgres', result: 'refused' })).toBe(1);
      expect(m.sum('azdb_sessions_total', { result: 'ok' })).toBe(0);
      await first.end();
      const third = await waitFor(async () => {
        const c = pgClient(pgPort, 'cap-password-of-this-test');
        return c.connect().then(() => c, () => undefined);
      }, 'a free slot');
      await third.end();
    } finally {
      await stopServe(serve);
    }
  });

  it('refuses to start a listener beyond loopback without a password file and TLS, or with a password file others can read', async () => {
    const file = join(work, 'public.yaml');
    await writeFile(
      file,
      [
        'version: v1',
        'databases: [{name: orders, protocol: postgres, uri: "127.0.0.1:5432"}]',
        'broker:',
        '  listeners:',
        '    - {database: orders, host: 0.0.0.0, port: 15432}',
      ].join('\n'),
    );
    const open = await execa('node', [BIN, '--config', file, 'serve'], { env, reject: false });
    expect(open.exitCode).toBe(1);
    expect(open.stderr).toContain(`${file}:5:`);
    expect(open.stderr).toContain('needs a password_file and a cert_file/key_file for client TLS');
    expect(open.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['serve.failed']);

    // A weak password_file, as the issue found (`a`): refused by config check and serve, file named, password never.
    const weak = join(work, 'weak.password');
    await writeFile(weak, 'a\n', { mode: 0o600 });
    const weakConfig = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port: await freePort(), password_file: weak }] });
    for (const command of [['config', 'check'], ['serve']]) {
      const result = await execa('node', [BIN, '--config', weakConfig, ...command], { env, reject: false });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`password_file of listener orders@127.0.0.1:`);
      expect(result.stderr).toContain(`holds a weak password (1 characters, 1 different): ${weak}`);
      expect(result.stderr).toContain(`openssl rand -base64 24 > ${weak}`);
    }

    const loose = join(work, 'loose.password');
    await writeFile(loose, 'secret-loose\n');
    await chmod(loose, 0o644);
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port: await freePort(), password_file: loose }] });
    const readable = await execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    expect(readable.exitCode).toBe(1);
    expect(readable.stderr).toContain(`password_file of listener orders@127.0.0.1`);
    expect(readable.stderr).toContain(`chmod 600 ${loose}`);
    expect(readable.stderr).not.toContain('secret-loose');
  });

  it.skipIf(mariadbd.skip)('slows brute force per source on both protocols: counted, delayed after 5 failures, logged once', async () => {
    const [pgPort, myPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const config = await newConfig({
      listeners: [
        { database: 'orders', host: '127.0.0.1', port: pgPort, db_user: USER, db_name: 'orders' },
        { database: 'shopdb', host: '127.0.0.1', port: myPort, db_user: USER, db_name: 'shop' },
      ],
      http: `127.0.0.1:${httpPort}`,
    });
    const serve = startServe(config);
    try {
      await serve.waitForLog('listener.up', (l) => l.database === 'orders');
      await serve.waitForLog('listener.up', (l) => l.database === 'shopdb');
      // Six wrong passwords in a row from one source per protocol (sources apart: the backoff spans listeners).
      for (let i = 0; i < 6; i++) {
        await expect(pgClient(pgPort, 'not the password').connect()).rejects.toMatchObject({ code: '28P01' });
        const stream = () => connect({ port: myPort, host: '127.0.0.1', localAddress: '127.0.0.3' });
        await expect(mysql.createConnection({ host: '127.0.0.1', port: myPort, user: USER, password: 'not the password', stream })).rejects.toMatchObject({ errno: 1045 });
      }
      const pgLabel = `orders@127.0.0.1:${pgPort}`;
      const myLabel = `shopdb@127.0.0.1:${myPort}`;
      const pgBackoff = await serve.waitForLog('login.backoff', (l) => l.listener === pgLabel);
      expect(pgBackoff).toMatchObject({ level: 'warn', protocol: 'postgres', database: 'orders', source: '127.0.0.1', failures: 6, delay_ms: 500 });
      const myBackoff = await serve.waitForLog('login.backoff', (l) => l.listener === myLabel);
      expect(myBackoff).toMatchObject({ protocol: 'mysql', database: 'shopdb', source: '127.0.0.3', failures: 6, delay_ms: 500 });
      expect(serve.logs().filter((l) => l.event === 'login.backoff')).toHaveLength(2);

      const m = await metrics(httpPort);
      expect(m.value('azdb_login_failures_total', { listener: pgLabel, protocol: 'postgres' })).toBe(6);
      expect(m.value('azdb_login_failures_total', { listener: myLabel, protocol: 'mysql' })).toBe(6);
      expect(m.value('azdb_login_backoff_total', { listener: pgLabel, protocol: 'postgres', action: 'delayed' })).toBe(1);
      expect(m.value('azdb_login_backoff_total', { listener: myLabel, protocol: 'mysql', action: 'delayed' })).toBe(1);
    } finally {
      await stopServe(serve);
    }
  });

  it('serves clients TLS on a listener with cert_file and key_file, and only TLS', async () => {
    const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
    const issued = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const [certFile, keyFile, passwordFile] = [join(work, 'listener.crt'), join(work, 'listener.key'), join(work, 'tls.password')];
    await writeFile(certFile, issued.certPem);
    await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
    await writeFile(passwordFile, 'tls-password-of-this-test\n', { mode: 0o600 });
    const [port, myPort] = [await freePort(), await freePort()];
    const tlsFiles = { password_file: passwordFile, cert_file: certFile, key_file: keyFile };
    const config = await newConfig({
      listeners: [
        { database: 'orders', host: '127.0.0.1', port, db_name: 'orders', ...tlsFiles },
        ...(mariadbd.skip ? [] : [{ database: 'shopdb', host: '127.0.0.1', port: myPort, db_user: USER, db_name: 'shop', ...tlsFiles }]),
      ],
      auditPath: '-',
    });
    const serve = startServe(config);
    try {
      await serve.waitForLog('listener.up', (l) => l.tls === true);
      const c = pgClient(port, 'tls-password-of-this-test', 'orders', { ssl: { ca: ca.caPem, servername: 'localhost' } });
      await c.connect();
      expect((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted).toBe(true);
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      await c.end();
      const plain = pgClient(port, 'tls-password-of-this-test', 'orders', { ssl: false });
      await expect(plain.connect()).rejects.toMatchObject({ code: '28000', message: 'this azdb listener accepts TLS connections only' });
      if (!mariadbd.skip) {
        await expect(mysql.createConnection({ host: '127.0.0.1', port: myPort, user: USER, password: 'tls-password-of-this-test', database: 'shop' })).rejects.toMatchObject({ errno: 3159 });
        const secure = await mysql.createConnection({ host: '127.0.0.1', port: myPort, user: USER, password: 'tls-password-of-this-test', database: 'shop', ssl: { ca: ca.caPem, servername: 'localhost' } });
        const [rows] = await secure.query("show session status like 'Ssl_cipher'");
        expect(rows).toHaveLength(1);
        await secure.end();
      }
      // `audit.path: "-"`: audit lines on stdout, logs on stderr.
      const audit = await waitFor(() => serve.stdout().includes('"event":"session.end"') && serve.stdout(), 'audit on stdout');
      const events = audit.trim().split('\n').map((l) => JSON.parse(l) as { event: string; query?: string });
      expect(events.slice(0, 3).map((e) => e.event)).toEqual(['session.start', 'query', 'session.end']);
      expect(events[1]!.query).toBe('select 1 as one');
      expect(serve.stderr()).not.toContain('"event":"query"');
    } finally {
      await stopServe(serve);
    }
  });

  it('is not ready while no database token can be had, and becomes ready when the identity endpoint is back', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port, db_user: USER }], http: `127.0.0.1:${httpPort}` });
    await azure.identity.setMode('unreachable');
    const serve = startServe(config);
    try {
      await serve.waitForLog('serve.start');
      expect((await http(httpPort, '/healthz')).status).toBe(200);
      const notReady = await http(httpPort, '/readyz');
      expect(notReady.status).toBe(503);
      const body = JSON.parse(notReady.body) as { ready: boolean; reason: string; checks: { token: { ok: boolean } } };
      expect(body.ready).toBe(false);
      expect(body.reason).toMatch(/^no database token: /);
      expect(body.checks.token.ok).toBe(false);
      // Once the credential has failed (after @azure/identity's retries), the reason names the failing source.
      await serve.waitForLog('token.fetch_failed', undefined, 45_000);
      const failed = JSON.parse((await http(httpPort, '/readyz')).body) as { reason: string };
      expect(failed.reason).toMatch(/ManagedIdentityCredential/);
      expect((await metrics(httpPort)).value('azdb_token_fetch_failures_total')).toBeGreaterThanOrEqual(1);

      await azure.identity.setMode('up');
      await waitFor(async () => (await http(httpPort, '/readyz')).status === 200, '/readyz 200 after the identity endpoint is back', 30_000);
      expect(serve.stderr()).not.toMatch(JWT);
    } finally {
      await azure.identity.setMode('up');
      await stopServe(serve);
    }
  }, 90_000);
});

describe('azdb serve when the audit log fails', () => {
  /** Audit lines are held in a 1 MiB queue (DEFAULT_AUDIT_QUEUE_BYTES). */
  const QUEUE_LIMIT = 1024 * 1024;
  /** One audited query of ~16 KiB: a line of its own size. */
  const bigQuery = (marker: string, n: number): string => `select ${n} as n /* ${marker} ${'x'.repeat(16_000)} */`;

  async function serveOrders(options: { auditPath: string; auditOnFailure?: 'block' | 'drop' }) {
    const [port, httpPort] = [await freePort(), await freePort()];
    const config = await newConfig({ listeners: [{ database: 'orders', host: '127.0.0.1', port, db_user: USER }], http: `127.0.0.1:${httpPort}`, ...options });
    const serve = startServe(config);
    await serve.waitForLog('serve.start');
    const { password } = await generatedPassword(serve, 'orders');
    return { serve, httpPort, client: () => pgClient(port, password) };
  }

  async function readiness(httpPort: number) {
    const response = await http(httpPort, '/readyz');
    return { status: response.status, ...(JSON.parse(response.body) as { ready: boolean; reason?: string; checks: { audit: Record<string, unknown> } }) };
  }

  /** Runs `count` big queries one after another on one session; `done()` says how many finished. */
  function runQueries(c: pg.Client, marker: string, count: number) {
    let done = 0;
    const finished = (async () => {
      for (let n = 0; n < count; n += 1) {
        await c.query(bigQuery(marker, n));
        done += 1;
      }
    })();
    return { finished, done: () => done };
  }

  it('on a full disk (/dev/full) serves sessions, logs the failure, counts it, and is not ready under block', async () => {
    const { serve, httpPort, client } = await serveOrders({ auditPath: '/dev/full' });
    try {
      const c = client();
      await c.connect();
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      const failing = await serve.waitForLog('audit.failing');
      expect(failing).toMatchObject({ level: 'error', output: '/dev/full', policy: 'block', error: expect.stringContaining('ENOSPC') });
      const notReady = await waitFor(async () => {
        const r = await readiness(httpPort);
        return r.status === 503 && r;
      }, '/readyz 503 while the audit log cannot be written');
      expect(notReady.reason).toMatch(/^audit log \/dev\/full cannot be written: ENOSPC/);
      expect(notReady.checks.audit).toMatchObject({ output: '/dev/full', policy: 'block', state: 'failing' });
      const m = await metrics(httpPort);
      expect(m.value('azdb_audit_failing')).toBe(1);
      expect(m.value('azdb_audit_write_errors_total')).toBeGreaterThanOrEqual(1);
      expect(m.value('azdb_errors_total', { kind: 'audit' })).toBe(1);
      await c.end();
      expect(await stopServe(serve)).toBe(0);
    } finally {
      await stopServe(serve);
    }
  });

  it('on a full disk under drop stays ready, drops what does not fit in the queue and counts it', async () => {
    const { serve, httpPort, client } = await serveOrders({ auditPath: '/dev/full', auditOnFailure: 'drop' });
    try {
      const c = client();
      await c.connect();
      const queries = runQueries(c, 'full-disk-drop', 100);
      await queries.finished;
      await c.end();
      const dropped = await serve.waitForLog('audit.dropped');
      expect(dropped).toMatchObject({ level: 'warn', output: '/dev/full' });
      const m = await metrics(httpPort);
      expect(m.value('azdb_audit_dropped_lines_total')).toBeGreaterThan(0);
      expect(m.value('azdb_audit_queue_bytes')).toBeLessThanOrEqual(QUEUE_LIMIT);
      const ready = await readiness(httpPort);
      expect(ready.status).toBe(200);
      expect(ready.checks.audit).toMatchObject({ policy: 'drop', state: 'failing' });
      expect(await stopServe(serve)).toBe(0);
    } finally {
      await stopServe(serve);
    }
  });

  it('to a stdout reader that stops: under block, sessions wait with the queue bounded, and nothing is lost when it reads again', async () => {
    const { serve, httpPort, client } = await serveOrders({ auditPath: '-' });
    try {
      const c = client();
      await c.connect();
      serve.child.stdout!.pause();
      const count = 200;
      const queries = runQueries(c, 'stopped-reader-block', count);
      const full = await waitFor(async () => {
        const r = await readiness(httpPort);
        return r.status === 503 && r;
      }, '/readyz 503 with the audit queue full', 60_000);
      expect(full.reason).toBe('audit queue for stdout is full: sessions wait for it (broker.audit.on_failure: block)');
      // The session is held: its next query is not read while the queue is full.
      expect(queries.done()).toBeLessThan(count);
      const m = await metrics(httpPort);
      expect(m.value('azdb_audit_queue_bytes')).toBeGreaterThanOrEqual(QUEUE_LIMIT);
      expect(m.value('azdb_audit_queue_bytes')).toBeLessThan(QUEUE_LIMIT + 64 * 1024);
      expect(m.value('azdb_audit_dropped_lines_total')).toBe(0);
      await serve.waitForLog('audit.full', (l) => l.output === 'stdout' && l.policy === 'block');
      // A new session waits too, and is served once there is room.
      const late = client();
      let lateIn = false;
      const lateConnect = late.connect().then(() => (lateIn = true));
      expect((await readiness(httpPort)).status).toBe(503);
      expect(lateIn).toBe(false);

      serve.child.stdout!.resume();
      await queries.finished;
      await lateConnect;
      expect((await late.query('select 3 as three')).rows[0].three).toBe(3);
      await Promise.all([c.end(), late.end()]);
      await waitFor(async () => (await readiness(httpPort)).status === 200, '/readyz 200 once the reader reads again');
      await waitFor(() => serve.stdout().split('stopped-reader-block').length - 1 === count, 'every query line on stdout', 30_000);
      expect((await metrics(httpPort)).value('azdb_audit_dropped_lines_total')).toBe(0);
      expect(await stopServe(serve)).toBe(0);
    } finally {
      serve.child.stdout!.resume();
      await stopServe(serve);
    }
  }, 120_000);

  it('to a stdout reader that stops: under drop, sessions go on, the queue stays bounded and the drops are counted', async () => {
    const { serve, httpPort, client } = await serveOrders({ auditPath: '-', auditOnFailure: 'drop' });
    try {
      const c = client();
      await c.connect();
      serve.child.stdout!.pause();
      await runQueries(c, 'stopped-reader-drop', 200).finished;
      await c.end();
      const m = await metrics(httpPort);
      expect(m.value('azdb_audit_queue_bytes')).toBeLessThanOrEqual(QUEUE_LIMIT);
      expect(m.value('azdb_audit_dropped_lines_total')).toBeGreaterThan(0);
      expect((await readiness(httpPort)).status).toBe(200);
      await serve.waitForLog('audit.dropped', (l) => l.output === 'stdout');
      serve.child.stdout!.resume();
      expect(await stopServe(serve)).toBe(0);
    } finally {
      serve.child.stdout!.resume();
      await stopServe(serve);
    }
  }, 120_000);

  it('to a stdout reader that closes (`azdb serve | head`): keeps serving, logs EPIPE and counts', async () => {
    const { serve, httpPort, client } = await serveOrders({ auditPath: '-', auditOnFailure: 'drop' });
    try {
      serve.child.stdout!.destroy();
      const first = client();
      await first.connect();
      await runQueries(first, 'closed-reader', 100).finished;
      const failing = await serve.waitForLog('audit.failing');
      expect(failing).toMatchObject({ output: 'stdout', error: expect.stringContaining('EPIPE') });
      // Still serving: another session after the pipe broke.
      const second = client();
      await second.connect();
      expect((await second.query('select 2 as two')).rows[0].two).toBe(2);
      await Promise.all([first.end(), second.end()]);
      const m = await waitFor(async () => {
        const current = await metrics(httpPort);
        return (current.value('azdb_audit_dropped_lines_total') ?? 0) > 0 && current;
      }, 'dropped audit lines counted');
      expect(m.value('azdb_audit_failing')).toBe(1);
      expect(m.value('azdb_audit_write_errors_total')).toBeGreaterThanOrEqual(1);
      expect(serve.child.exitCode).toBeNull();
      expect(await stopServe(serve)).toBe(0);
    } finally {
      await stopServe(serve);
    }
  }, 120_000);
});
