/**
 * `azdb proxy db`, `azdb db connect` and `azdb db logout` as a user runs them: the built CLI as a
 * child process, a config pointing at the emulated Azure, real psql.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import pg from 'pg';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { BIN, cliEnv, emulatedDatabase, requireBuild, runAzdb, startProxy as startProxyIn, writeEmulatedConfig } from '../helpers/cli.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';

const psql = await findTool('psql');

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

describe.skipIf(psql.skip)('azdb db connect', () => {
  /** A psql in front of the real one that records its argv and whether PGPASSWORD came by env. */
  async function psqlSpy(): Promise<{ path: string; log: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'azdb-psql-spy-'));
    const log = join(dir, 'argv.log');
    const path = join(dir, 'psql');
    await writeFile(path, `#!/bin/sh\necho "$$ ARGV:$*" >> '${log}'\n[ -n "$PGPASSWORD" ] && echo "ENV:PGPASSWORD-set" >> '${log}'\nexec '${psql.path}' "$@"\n`);
    await chmod(path, 0o755);
    return { path: dir, log };
  }

  it('runs psql through an in-process tunnel with the password in its environment only', async () => {
    const spy = await psqlSpy();
    const result = await execa('node', [BIN, 'db', 'connect', 'orders', '--db-name', 'orders'], {
      env: { ...env, PATH: `${spy.path}:${process.env.PATH}` },
      input: 'select 6 * 7 as answer;\n\\q\n',
      reject: false,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('42');
    const log = await readFile(spy.log, 'utf8');
    expect(log).toContain('ENV:PGPASSWORD-set');
    expect(log).toMatch(/ARGV:-h 127\.0\.0\.1 -p \d+ -U azdb-demo -d orders\n/);
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
