/**
 * Step 3's artifacts run for real on the emulated Azure, for each privilege level: `azdb setup`
 * (plain mode, the answers saved as the wizard saves them) writes principals-postgres.sql,
 * principals-mysql.sql and principals-commands.sh; the script runs with a fake `az` on PATH that
 * prints the Entra admin's token from the emulator's issuer, through Debian's psql and mariadb
 * clients with verified TLS; then setup's own check passes, and the created user, logged in
 * with its own token through the real clients, can do exactly what its level allows on real
 * PostgreSQL and real MariaDB behind the emulated fronts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLOUDS } from '../../src/azure/clouds.js';
import { renderConfig } from '../../src/config/generate.js';
import { createUserStateStore } from '../../src/config/user-state.js';
import type { PrivilegeLevel } from '../../src/core/api/setup.js';
import type { EmulatedAzure, EmulatedServerInfo } from '../../src/emulator/emulated-azure.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { BIN, emulatedDatabase, requireBuild } from '../helpers/cli.js';

const psql = await findTool('psql');
const mariadb = await findTool('mariadb', ['mysql']);
const mariadbd = await findTool('mariadbd');
const skip = psql.skip || mariadb.skip || mariadbd.skip;
const AUDIENCE = CLOUDS.AzureCloud.databaseResource;
const TOKEN = /eyJ[\w-]{4,}\.[\w-]{4,}/;

let azure: EmulatedAzure & { dir: string };
let work: string;
let env: Record<string, string>;
const suffix = randomBytes(3).toString('hex');
const users: Record<PrivilegeLevel, string> = { 'read-only': `ro-${suffix}`, 'read-write': `rw-${suffix}`, owner: `own-${suffix}` };

function server(name: string): EmulatedServerInfo {
  const found = azure.servers.find((s) => s.name === name);
  if (!found) throw new Error(`no emulated server ${name}`);
  return found;
}

/** `azdb setup --json` without a terminal, with the answers the wizard would have saved. */
async function setup(level: PrivilegeLevel, answers: Record<string, string> = {}) {
  createUserStateStore({ cwd: env.AZDB_STATE_DIR }).saveWizardProgress({
    step: 2,
    completed: ['credentials', 'iam'],
    answers: { types: 'postgres,mysql', regions: '*', subscriptions: '*', dbUser: users[level], privilege: level, pgDatabases: 'orders', mysqlDatabases: 'shop', adminUser: DEMO_IDENTITY.role, servers: '', ...answers },
  });
  const result = await execa('node', [BIN, '--config', join(work, `written-${level}.yaml`), '--json', 'setup'], { env, extendEnv: false, reject: false, timeout: 120_000 });
  const document = JSON.parse(result.stdout) as { steps: Array<{ id: string; status: string; detail: string; artifacts: Array<{ label: string; path: string }> }> };
  return document.steps.find((s) => s.id === 'users')!;
}

/** principals-commands.sh as the admin runs it, `az` being a stand-in that prints the admin's token. */
async function runCommandsScript(script: string, options: { adminToken: string }) {
  const bin = join(work, 'fake-az-bin');
  return execa('bash', [script], {
    env: { PATH: `${bin}:/usr/bin:/bin`, FAKE_AZ_TOKEN: options.adminToken, HOME: work },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
}

/** The created user, with its own token in the environment, through the real client. */
async function asUser(level: PrivilegeLevel, protocol: 'postgres' | 'mysql', sql: string, database = protocol === 'postgres' ? 'orders' : 'shop') {
  const token = await azure.issueToken({ audience: AUDIENCE });
  if (protocol === 'postgres') {
    const s = server('orders');
    return execa(psql.path!, ['-X', '-v', 'ON_ERROR_STOP=1', '-tA', '-c', sql], {
      env: { PGHOST: s.fqdn, PGHOSTADDR: s.host, PGPORT: String(s.port), PGUSER: users[level], PGDATABASE: database, PGSSLMODE: 'verify-full', PGSSLROOTCERT: azure.caFile, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' },
      extendEnv: false,
      reject: false,
      timeout: 30_000,
    });
  }
  const s = server('shopdb');
  return execa(mariadb.path!, ['--no-defaults', `--host=${s.host}`, `--port=${s.port}`, `--user=${users[level]}`, `--ssl-ca=${azure.caFile}`, '--ssl-verify-server-cert', '--batch', '--skip-column-names', `--database=${database}`, '-e', sql], {
    env: { MYSQL_PWD: token },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
}

beforeAll(async () => {
  if (skip) return;
  requireBuild();
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-setup-principals-'));
  const bin = join(work, 'fake-az-bin');
  await mkdir(bin);
  // Only the call the script makes is answered; anything else fails loudly.
  await writeFile(
    join(bin, 'az'),
    [
      '#!/bin/sh',
      '[ "$*" = "account get-access-token --resource-type oss-rdbms --query accessToken -o tsv" ] || { echo "fake az: unexpected arguments: $*" >&2; exit 2; }',
      'printf \'%s\\n\' "$FAKE_AZ_TOKEN"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: work,
    ...azure.identity.env(),
    NODE_EXTRA_CA_CERTS: azure.caFile,
    AZDB_STATE_DIR: join(work, 'state'),
    AZDB_CONFIG: join(work, 'azdb.yaml'),
    NO_COLOR: '1',
  };
  // The config in use: how the emulated servers are reached (their address, the emulator's CA) and ARM.
  await writeFile(
    env.AZDB_CONFIG!,
    renderConfig({
      version: 'v1',
      azure: { cloud: 'AzureCloud', resource_manager_endpoint: azure.armEndpoint },
      databases: azure.servers.map((s) => emulatedDatabase(azure, s)),
      roles: [{ version: 'v7', kind: 'role', metadata: { name: 'test' }, spec: { allow: { db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] }, deny: {} } }],
      broker: { roles: ['test'] },
    }),
  );
}, 180_000);

afterAll(async () => {
  if (azure) {
    for (const user of Object.values(users)) {
      for (const database of ['orders', 'postgres']) {
        await azure.realPostgres.query(`DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${user}') THEN EXECUTE 'DROP OWNED BY "${user}" CASCADE'; END IF; END $$`, [], database).catch(() => {});
      }
      await azure.realPostgres.query(`DROP ROLE IF EXISTS "${user}"`).catch(() => {});
      await azure.realPostgres.query('DELETE FROM pgaadauth.principals WHERE rolname = $1', [user]).catch(() => {});
      await azure.realMariaDb?.query("DROP USER IF EXISTS ?@'%'", [user]).catch(() => {});
      await azure.realMariaDb?.query('DELETE FROM azure_sys.aad_principals WHERE user_name = ?', [user]).catch(() => {});
    }
    await azure.stop();
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)(`step 3's SQL and commands, run on the emulated Azure${skip ? ` (${skip})` : ''}`, () => {
  const levels: PrivilegeLevel[] = ['read-only', 'read-write', 'owner'];
  const adminToken = () => azure.issueToken({ audience: AUDIENCE });

  for (const level of levels) {
    it(`makes a${level === 'owner' ? 'n' : ''} ${level} user on both engines with principals-commands.sh`, { timeout: 400_000 }, async () => {
      const before = await setup(level);
      expect(before.status).toBe('fail'); // the user does not exist yet
      const paths = Object.fromEntries(before.artifacts.map((a) => [a.label, a.path]));
      expect(Object.keys(paths)).toEqual(['SQL (PostgreSQL)', 'SQL (MySQL)', 'commands']);
      const script = paths['commands']!;
      expect((await stat(script)).mode & 0o777).toBe(0o755);
      const text = await readFile(script, 'utf8');
      expect(text).not.toContain('--enable-cleartext-plugin');
      expect(text).not.toMatch(/sslmode=require|--password/);
      expect(text).not.toMatch(TOKEN);
      const mysqlSql = await readFile(paths['SQL (MySQL)']!, 'utf8');
      expect(mysqlSql).not.toContain('*.*');
      expect(await readFile(paths['SQL (PostgreSQL)']!, 'utf8')).not.toContain('CREATE AADUSER');

      // Every server of the demo: orders, inventory and legacy share one PostgreSQL, shopdb and
      // legacy-mysql one MariaDB, so the later ones find the user made and still run the GRANTs.
      const ran = await runCommandsScript(script, { adminToken: await adminToken() });
      expect(ran.stderr).toBe('');
      expect(ran.exitCode).toBe(0);
      expect(ran.stdout).toContain(`== legacy: principals-postgres.sql as ${DEMO_IDENTITY.role}@legacy`);
      expect(ran.stdout).toContain(`== legacy-mysql: principals-mysql.sql as ${DEMO_IDENTITY.role}@legacy-mysql`);
      expect(ran.stdout).toContain(`done: ${users[level]} is ${level}`);
      expect(`${ran.stdout}${ran.stderr}`).not.toMatch(TOKEN);

      const after = await setup(level);
      expect(after.detail).toContain(`${users[level]} logs in through the broker`);
      expect(after.status).toBe('pass');

      // PostgreSQL, database orders: what the level allows, and no more.
      expect((await asUser(level, 'postgres', 'select count(*) > 0 from customers')).stdout).toBe('t');
      const pgInsert = await asUser(level, 'postgres', "begin; insert into customers (name, email) values ('setup test', 'setup-test@example.com'); rollback;");
      const pgCreate = await asUser(level, 'postgres', 'create table made_by_setup_test (id int); select schemaname from pg_tables where tablename = \'made_by_setup_test\'');
      // Nothing on the other database of the server.
      const pgOtherDb = await asUser(level, 'postgres', 'select count(*) from products', 'inventory');
      expect(pgOtherDb.stderr).toContain('permission denied for table products');
      // MySQL, database shop.
      expect((await asUser(level, 'mysql', 'select count(*) > 0 from customers')).stdout.trim()).toBe('1');
      const myInsert = await asUser(level, 'mysql', `begin; insert into customers values (${900_000 + levels.indexOf(level)}, 'setup test', 'setup-test-${suffix}@example.com'); rollback;`);
      const myCreate = await asUser(level, 'mysql', `create table made_by_setup_${suffix} (id int); drop table made_by_setup_${suffix};`);
      const myOtherDb = await asUser(level, 'mysql', 'create database made_by_setup_test');
      expect(myOtherDb.stderr).toMatch(/ERROR 1044 .*Access denied/);

      if (level === 'read-only') {
        expect(pgInsert.stderr).toContain('permission denied for table customers');
        expect(myInsert.stderr).toMatch(/ERROR 1142 .*INSERT command denied/);
      } else {
        expect(pgInsert.stderr).toBe('');
        expect(pgInsert.exitCode).toBe(0);
        expect(myInsert.stderr).toBe('');
        expect(myInsert.exitCode).toBe(0);
      }
      if (level === 'owner') {
        // Its own schema, first on its search_path.
        expect(pgCreate.stderr).toBe('');
        expect(pgCreate.stdout.trim().split('\n').at(-1)).toBe(users.owner);
        expect(myCreate.stderr).toBe('');
        expect(myCreate.exitCode).toBe(0);
      } else {
        expect(pgCreate.stderr).toContain('permission denied for schema public');
        expect(myCreate.stderr).toMatch(/ERROR 1142 .*CREATE command denied/);
      }
    });
  }

  it('fails, naming why, where the admin may not grant on a table (a GRANT there would only warn)', { timeout: 120_000 }, async () => {
    // A database of its own, whose table the admin did not make and holds no GRANT OPTION on.
    const database = `setup_nogrant_${suffix}`;
    await azure.realPostgres.query(`CREATE DATABASE "${database}"`);
    try {
      await azure.realPostgres.query(`CREATE TABLE secrets (id int); GRANT SELECT ON secrets TO "${DEMO_IDENTITY.role}"`, [], database);
      const step = await setup('read-only', { pgDatabases: database, servers: 'orders' });
      const script = step.artifacts.find((a) => a.label === 'commands')!.path;
      const ran = await runCommandsScript(script, { adminToken: await adminToken() });
      expect(ran.exitCode).toBe(1);
      expect(ran.stderr).toContain(`WARNING:  no privileges were granted for "secrets"`);
      expect(ran.stderr).toContain(`ERROR:  ${users['read-only']} did not get SELECT on every table of schema public in ${database}`);
      expect(ran.stderr).toMatch(/^failed on: orders$/m);
    } finally {
      await azure.realPostgres.query(`DROP DATABASE "${database}" WITH (FORCE)`);
    }
  });

  it('fails on a server that refuses the admin, names it, and leaks no token', { timeout: 120_000 }, async () => {
    const step = await setup('read-only');
    const script = step.artifacts.find((a) => a.label === 'commands')!.path;
    // A token of another identity: the fronts refuse it as a failed password.
    const stranger = await azure.issueToken({ audience: AUDIENCE, objectId: '0d5e6f70-1a2b-4c3d-8e9f-a0b1c2d3e4f5', appId: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d' });
    const ran = await runCommandsScript(script, { adminToken: stranger });
    expect(ran.exitCode).toBe(1);
    expect(ran.stderr).toMatch(/^failed on: /m);
    for (const name of ['orders', 'inventory', 'legacy', 'shopdb', 'legacy-mysql']) expect(ran.stderr.split('failed on: ')[1]!.split(/\s+/)).toContain(name);
    expect(`${ran.stdout}${ran.stderr}`).not.toMatch(TOKEN);
  });
});
