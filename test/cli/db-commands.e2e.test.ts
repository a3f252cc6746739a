/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout` as a user runs them: the built CLI as a
 * child process, a config pointing at the emulated Azure, real psql.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import pg from 'pg';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { BIN, cliEnv, emulatedDatabase, requireBuild, runAzdb, startProxy as startProxyIn, writeEmulatedConfig } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';

const psql = await findTool('psql');
const script = await findTool('script');

let azure: EmulatedAzure & { dir: string };
let work: string;
let env: Record<string, string>;

function writeConfig(file: string, roles: { users: string[]; names: string[]; labels?: Record<string, string> }): Promise<void> {
  return writeEmulatedConfig(file, azure, {
    databases: azure.servers.filter((s) => s.protocol === 'postgres').map((s) => emulatedDatabase(azure, s)),
    role: 'dev',
    allow: { db_labels: roles.labels, db_users: roles.users, db_names: roles.names },
    broker: { audit: { path: join(work, 'audit.jsonl'), queries: true } },
  });
}

const startProxy = (args: string[]) => startProxyIn(args, env);

beforeAll(async () => {
  requireBuild();
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-cli-'));
  env = cliEnv(azure.identity.env(), work);
  await writeConfig(env.AZDB_CONFIG!, { users: [DEMO_IDENTITY.role], names: ['*'] });
});

afterAll(async () => {
  await azure?.stop();
});

describe('azdb db ls', () => {
  it('prints the contract JSON: sorted, with labels and what the roles allow', async () => {
    const result = await runAzdb(['db', 'ls', '--json'], env);
    expect(result.exitCode).toBe(0);
    const listing = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(listing.map((d) => d.name)).toEqual(['inventory', 'legacy', 'orders']);
    expect(Object.keys(listing[0]!)).toEqual(['name', 'protocol', 'uri', 'labels', 'db_users', 'db_names']);
    expect(listing[2]).toMatchObject({ protocol: 'postgres', labels: { env: 'test' }, db_users: [DEMO_IDENTITY.role], db_names: ['*'] });
  });

  it('leaves out databases no role allows and prints a table for people', async () => {
    const file = join(work, 'prod-only.yaml');
    await writeConfig(file, { users: [DEMO_IDENTITY.role], names: ['*'], labels: { env: 'prod' } });
    const json = await runAzdb(['--config', file, 'db', 'ls', '--json'], env);
    expect(JSON.parse(json.stdout)).toEqual([]);
    const human = await runAzdb(['db', 'ls'], env);
    expect(human.stdout.split('\n')[0]).toMatch(/^Name\s+Protocol\s+URI\s+Allowed Users\s+Database Names\s+Labels$/);
    expect(human.stdout).toContain('orders');
  });
});

describe('azdb proxy db', () => {
  it('prints exactly the contract JSON line, serves a pg client, and stops cleanly on SIGINT', async () => {
    const { child, info, stdout } = await startProxy(['orders', '--db-name', 'orders']);
    expect(Object.keys(info)).toEqual(['name', 'protocol', 'host', 'port', 'user', 'database', 'password', 'uri']);
    expect(info).toMatchObject({ name: 'orders', protocol: 'postgres', host: '127.0.0.1', user: DEMO_IDENTITY.role, database: 'orders' });
    expect(info.uri).toBe(`postgres://${DEMO_IDENTITY.role}@127.0.0.1:${info.port}/orders`);
    const c = new pg.Client({ host: info.host as string, port: info.port as number, user: info.user as string, database: info.database as string, password: info.password as string });
    await c.connect();
    expect((await c.query('select count(*)::int as n from customers')).rows[0].n).toBe(50);
    await c.end();
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(stdout().trim().split('\n')).toHaveLength(1);
    const audit = await readFile(join(work, 'audit.jsonl'), 'utf8');
    expect(audit).toContain('"event":"session.start"');
    expect(audit).toContain('select count(*)::int as n from customers');
    expect(audit).not.toContain(info.password as string);
    expect(audit).not.toMatch(/eyJ[A-Za-z0-9_-]+\./);
  });

  it('with broker.audit.path "-" writes the audit to stderr (stdout is the JSON line), not to a file named "-"', async () => {
    const file = join(work, 'audit-dash.yaml');
    await writeEmulatedConfig(file, azure, {
      databases: azure.servers.filter((s) => s.protocol === 'postgres').map((s) => emulatedDatabase(azure, s)),
      role: 'dev',
      allow: { db_users: [DEMO_IDENTITY.role], db_names: ['*'] },
      broker: { audit: { path: '-', queries: true } },
    });
    const cwd = await mkdtemp(join(tmpdir(), 'azdb-cwd-'));
    const child = execa('node', [BIN, '--config', file, 'proxy', 'db', 'orders', '--db-name', 'orders', '--json'], { env, cwd, reject: false });
    let [stdout, stderr] = ['', ''];
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const info = JSON.parse(await waitFor(() => stdout.includes('\n') && stdout.split('\n')[0], 'the JSON line of proxy db')) as Record<string, unknown>;
    const c = new pg.Client({ host: info.host as string, port: info.port as number, user: info.user as string, database: 'orders', password: info.password as string });
    await c.connect();
    await c.query('select 42 as audited_on_stderr');
    await c.end();
    await waitFor(() => stderr.includes('"event":"session.end"'), 'the audit on stderr');
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    expect(stderr).toContain('select 42 as audited_on_stderr');
    expect(stdout.trim().split('\n')).toHaveLength(1);
    await expect(stat(join(cwd, '-'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('defaults --db-name to postgres when the roles allow any name', async () => {
    const { child, info } = await startProxy(['orders']);
    expect(info.database).toBe('postgres');
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
  });

  it('exits 2 listing the allowed users when the roles allow several', async () => {
    const file = join(work, 'two-users.yaml');
    await writeConfig(file, { users: [DEMO_IDENTITY.role, 'reporting'], names: ['*'] });
    const result = await runAzdb(['--config', file, 'proxy', 'db', 'orders', '--json'], env);
    expect(result.exitCode).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, error: { message: expect.stringContaining('reporting') } });
    expect(result.stderr).toContain('reporting');
    expect(result.stderr).toContain(DEMO_IDENTITY.role);
  });

  it('exits 2 for an unknown database, naming the known ones', async () => {
    const result = await runAzdb(['proxy', 'db', 'nope', '--json'], env);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('orders');
  });

  it('says a port in use is in use, with what to do, instead of calling it a bug', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const result = await runAzdb(['proxy', 'db', 'orders', '--port', String(port)], env);
      expect(result.stderr).toContain(`error: cannot listen on 127.0.0.1:${port}: it is already in use`);
      expect(result.stderr).toContain('hint: Pick another port');
      expect(result.stderr).not.toContain('bug');
      expect(result.exitCode).toBe(1);
    } finally {
      holder.close();
    }
  });

  it('is closed by `azdb db logout NAME` from another process', async () => {
    const { child } = await startProxy(['orders']);
    const logout = await runAzdb(['db', 'logout', 'orders'], env);
    expect(logout.exitCode).toBe(0);
    expect(logout.stdout).toContain('Closed 1 tunnel');
    expect((await child).exitCode).toBe(0);
    const again = await runAzdb(['db', 'logout'], env);
    expect(again.stdout).toContain('No open tunnels');
  });
});

describe.skipIf(psql.skip)('azdb proxy db for GUI clients: TLS on request', () => {
  /** psql's own account of the connection (`\\conninfo`), or its error. */
  async function psqlConninfo(info: Record<string, unknown>, conninfo: string): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
    const result = await execa(psql.path!, ['-X', '-c', '\\conninfo', '-c', 'select 6 * 7 as answer', `host=${info.host as string} port=${info.port as number} user=${info.user as string} dbname=${info.database as string} ${conninfo}`], {
      env: { PATH: process.env.PATH, PGPASSWORD: info.password as string, PGCONNECT_TIMEOUT: '20' },
      reject: false,
    });
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  it('serves psql with sslmode=require, verify-full against the local CA, and plain', async () => {
    const { child, info } = await startProxy(['orders', '--db-name', 'orders']);
    try {
      const required = await psqlConninfo(info, 'sslmode=require');
      expect(required.stderr).toBe('');
      expect(required.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      expect(required.stdout).toContain('42');

      const ca = join(work, 'state', 'tls', 'ca.pem');
      for (const host of ['127.0.0.1', 'localhost']) {
        const verified = await psqlConninfo({ ...info, host }, `sslmode=verify-full sslrootcert=${ca}`);
        expect(verified.stderr).toBe('');
        expect(verified.stdout).toMatch(/SSL connection/);
      }
      // The verification is real: another CA (the emulated Azure's) does not vouch for the tunnel.
      const wrongCa = await psqlConninfo(info, `sslmode=verify-full sslrootcert=${azure.caFile}`);
      expect(wrongCa.exitCode).not.toBe(0);
      expect(wrongCa.stderr).toMatch(/certificate verify failed/);

      const plain = await psqlConninfo(info, 'sslmode=disable');
      expect(plain.stderr).toBe('');
      expect(plain.stdout).not.toMatch(/SSL connection/);
      expect(plain.stdout).toContain('42');

      // The CA's and the certificate's keys are the user's alone.
      expect((await stat(join(work, 'state', 'tls', 'ca-key.pem'))).mode & 0o777).toBe(0o600);
      expect((await stat(join(work, 'state', 'tls', 'localhost-key.pem'))).mode & 0o777).toBe(0o600);
    } finally {
      child.kill('SIGINT');
      await child;
    }
  });

  it('keeps the CA across runs, so a client set up with sslrootcert once keeps verifying', async () => {
    const ca = await readFile(join(work, 'state', 'tls', 'ca.pem'), 'utf8');
    const { child, info } = await startProxy(['orders', '--db-name', 'orders']);
    try {
      expect(await readFile(join(work, 'state', 'tls', 'ca.pem'), 'utf8')).toBe(ca);
      const c = new pg.Client({ host: '127.0.0.1', port: info.port as number, user: info.user as string, database: 'orders', password: info.password as string, ssl: { ca, servername: 'localhost' } });
      await c.connect();
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      await c.end();
    } finally {
      child.kill('SIGINT');
      await child;
    }
  });
});

describe('azdb proxy db --password-file and --port: a tunnel set up once', () => {
  it('writes a new password 0600 on the first run and uses it (and the port) again on the next', async () => {
    const file = join(work, 'kept', 'orders.password');
    const port = await freePort();
    const args = ['orders', '--db-name', 'orders', '--port', String(port), '--password-file', file];

    const first = await startProxy(args);
    expect(first.info.port).toBe(port);
    expect(await readFile(file, 'utf8')).toBe(`${first.info.password as string}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    first.child.kill('SIGINT');
    const firstRun = await first.child;
    expect(firstRun.exitCode).toBe(0);
    expect(firstRun.stderr).toContain(`Wrote a new random password for this tunnel to ${file} (mode 0600)`);

    const second = await startProxy(args);
    try {
      expect(second.info).toMatchObject({ port, password: first.info.password });
      const c = new pg.Client({ host: '127.0.0.1', port, user: second.info.user as string, database: 'orders', password: (await readFile(file, 'utf8')).trim() });
      await c.connect();
      expect((await c.query('select 2 as two')).rows[0].two).toBe(2);
      await c.end();
    } finally {
      second.child.kill('SIGINT');
      const secondRun = await second.child;
      expect(secondRun.stderr).not.toContain('Wrote a new random password');
    }
  });

  it.each([
    ['0640', 0o640, 'accessible to its group (mode 0640)'],
    ['0644', 0o644, 'accessible to every user (mode 0644)'],
  ])('refuses a password file of mode %s, with the chmod to run and never the password', async (_label, mode, said) => {
    const file = join(work, `loose-${mode.toString(8)}.password`);
    await writeFile(file, 'a-long-enough-password-for-a-tunnel\n');
    await chmod(file, mode);
    const result = await runAzdb(['proxy', 'db', 'orders', '--password-file', file], env);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`error: the password file of the tunnel to orders is ${said}: ${file}`);
    expect(result.stderr).toContain(`hint: Run \`chmod 600 ${file}\``);
    expect(result.stdout + result.stderr).not.toContain('a-long-enough-password');
  });

  it('refuses a weak password file', async () => {
    const file = join(work, 'weak.password');
    await writeFile(file, 'hunter2\n', { mode: 0o600 });
    const result = await runAzdb(['proxy', 'db', 'orders', '--password-file', file], env);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('holds a weak password (7 characters');
    expect(result.stdout + result.stderr).not.toContain('hunter2');
  });
});

describe('azdb proxy db without --json: the password only to a terminal', () => {
  it('leaves the password out when stdout is a file or a pipe, and says how to get it', async () => {
    const child = execa('node', [BIN, 'proxy', 'db', 'orders', '--db-name', 'orders'], { env, reject: false });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    await waitFor(() => stdout.includes('Ctrl+C to stop.'), 'the tunnel description');
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(stdout).toContain('password  not printed: stdout is not a terminal (`--json` prints it; `--password-file FILE` keeps it in a file)');
    expect(stdout).toContain(`tls       for clients that ask; certificate from azdb's local CA ${join(work, 'state', 'tls', 'ca.pem')}`);
    expect(stdout).toContain('PGPASSWORD=<password> psql');
    // No random password (32 base64url characters) anywhere: not on stdout, not on stderr.
    expect(stdout + result.stderr).not.toMatch(/[A-Za-z0-9_-]{32}/);
  });

  it.skipIf(script.skip)('shows it on a terminal, and it is the tunnel\'s password', async () => {
    // `script` gives azdb a pseudo-terminal as a person's shell would.
    const child = execa(script.path!, ['-qefc', `node ${BIN} proxy db orders --db-name orders`, '/dev/null'], { env, reject: false });
    let screen = '';
    child.stdout!.on('data', (d: Buffer) => (screen += d.toString()));
    try {
      await waitFor(() => screen.includes('Ctrl+C to stop.'), 'the tunnel description');
      const password = /password {2}([A-Za-z0-9_-]{32}) {3}\(random for this tunnel/.exec(screen)?.[1];
      const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(screen)?.[1]);
      expect(password).toBeDefined();
      const c = new pg.Client({ host: '127.0.0.1', port, user: DEMO_IDENTITY.role, database: 'orders', password });
      await c.connect();
      await c.end();
    } finally {
      await runAzdb(['db', 'logout', 'orders'], env);
      await child;
    }
  });
});

describe.skipIf(psql.skip)('azdb db connect', () => {
  /** A psql in front of the real one that records its argv, whether PGPASSWORD came by env, and the names of its variables. */
  async function psqlSpy(): Promise<{ path: string; log: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'azdb-psql-spy-'));
    const log = join(dir, 'argv.log');
    const path = join(dir, 'psql');
    await writeFile(
      path,
      `#!/bin/sh\necho "$$ ARGV:$*" >> '${log}'\n[ -n "$PGPASSWORD" ] && echo "ENV:PGPASSWORD-set" >> '${log}'\nenv | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/ENVNAME:\\1/p' >> '${log}'\nexec '${psql.path}' "$@"\n`,
    );
    await chmod(path, 0o755);
    return { path: dir, log };
  }

  it('runs psql through an in-process tunnel with the password in its environment only', async () => {
    const spy = await psqlSpy();
    const result = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], {
      // azdb's own credentials (the managed identity's IDENTITY_HEADER, a service principal's secret) are not psql's.
      env: { ...env, AZURE_CLIENT_SECRET: 'not-for-psql', PATH: `${spy.path}:${process.env.PATH}` },
      input: 'select 6 * 7 as answer;\n\\q\n',
      reject: false,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('42');
    const log = await readFile(spy.log, 'utf8');
    expect(log).toContain('ENV:PGPASSWORD-set');
    expect(log).toMatch(/ARGV:-h 127\.0\.0\.1 -p \d+ -U azdb-demo -d orders\n/);
    const names = log.split('\n').filter((line) => line.startsWith('ENVNAME:')).map((line) => line.slice('ENVNAME:'.length));
    expect(names).toEqual(expect.arrayContaining(['PATH', 'PGPASSWORD', 'PGSSLMODE', 'PGAPPNAME']));
    expect(env.IDENTITY_HEADER).toBeDefined();
    for (const secret of ['AZURE_CLIENT_SECRET', 'IDENTITY_HEADER', 'IDENTITY_ENDPOINT', 'AZDB_CONFIG']) expect(names).not.toContain(secret);
  });

  it('carries COPY both ways through psql', async () => {
    const values = Array.from({ length: 50_000 }, (_, i) => `${i * 7}\n`).join('');
    const script = ['create temp table copied (n int);', '\\copy copied from stdin', `${values}\\.`, "select 'sum=' || sum(n) || ' count=' || count(*) from copied;", '\\copy (select n from copied order by n) to stdout', ''].join('\n');
    const result = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], { env, input: script, reject: false, stripFinalNewline: false });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`sum=${7 * (49_999 * 50_000) / 2} count=50000`);
    expect(result.stdout.endsWith(values)).toBe(true);
  });

  it('passes psql exit codes through', async () => {
    const result = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], { env, input: '\\set ON_ERROR_STOP on\nselect nonsense;\n', reject: false });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain('column "nonsense" does not exist');
  });

  it('cancels a running query when psql gets Ctrl+C, and azdb survives it', async () => {
    const spy = await psqlSpy();
    const marker = `db-connect-cancel-${Date.now()}`;
    const child = execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], {
      env: { ...env, PATH: `${spy.path}:${process.env.PATH}` },
      input: `select pg_sleep(60) /* ${marker} */;\n`,
      reject: false,
    });
    await waitFor(async () => {
      const { rows } = await azure.realPostgres.query('select 1 from pg_stat_activity where query like $1 and state = $2', [`%${marker}%`, 'active']);
      return rows.length > 0;
    }, 'the query to run');
    const psqlPid = Number((await readFile(spy.log, 'utf8')).split(' ')[0]);
    // Ctrl+C in a terminal reaches the whole foreground group: psql and azdb.
    process.kill(psqlPid, 'SIGINT');
    child.kill('SIGINT');
    const result = await child;
    expect(result.stderr).toContain('canceling statement due to user request');
    // psql stops a script cancelled with Ctrl+C with its code 3; azdb outlived the SIGINT to pass it on.
    expect(result.signal).toBeUndefined();
    expect(result.exitCode).toBe(3);
  });
});
