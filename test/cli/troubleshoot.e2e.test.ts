/**
 * `azdb creds`, `azdb doctor` and `azdb queries` as a user runs them: the built CLI as a child
 * process against the emulated Azure (identity endpoint, PostgreSQL and MySQL fronts over the
 * run's real servers). Every network target is on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';
import { emulatorTarget } from '../helpers/targets.js';
import { BIN, cliEnv, emulatedDatabase, requireBuild, writeEmulatedConfig } from '../helpers/cli.js';
import { DEMO_IDENTITY, DEMO_TENANT_ID } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { loadOrCreateCa } from '../../src/emulator/ca.js';
import { createCredential } from '../../src/azure/credential.js';
import { TokenCache } from '../../src/azure/token-cache.js';
import { CLOUDS, databaseScope } from '../../src/azure/clouds.js';
import { openTunnel, type Tunnel } from '../../src/broker/tunnel.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import { JWT } from '../helpers/broker-fixtures.js';

const mariadbd = await findTool('mariadbd');

let azure: EmulatedAzure & { dir: string };
let work: string;
let baseEnv: Record<string, string>;
let closedPort: number;
let blackHole: Server;
const held: Socket[] = [];
const tunnels: Tunnel[] = [];
let tokens: TokenCache;

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function azdb(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const result = await execa(process.execPath, [BIN, ...args], { env: { ...baseEnv, ...env }, extendEnv: false, reject: false, timeout: 60_000 });
  const run = { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  // Never a token, whatever the command says.
  expect(run.stdout).not.toMatch(JWT);
  expect(run.stderr).not.toMatch(JWT);
  return run;
}

function writeConfig(file: string, users: string[] = [DEMO_IDENTITY.role]): Promise<void> {
  const orders = emulatedDatabase(azure, azure.servers.find((s) => s.name === 'orders')!);
  return writeEmulatedConfig(file, azure, {
    databases: [
      ...azure.servers.map((s) => emulatedDatabase(azure, s)),
      { ...orders, name: 'closed', uri: `127.0.0.1:${closedPort}` },
      { ...orders, name: 'blackhole', uri: `127.0.0.1:${(blackHole.address() as { port: number }).port}` },
    ],
    role: 'dev',
    allow: { db_users: users, db_names: ['*'] },
  });
}

function json<T>(run: Run): T {
  return JSON.parse(run.stdout) as T;
}

interface DoctorDoc {
  ok: boolean;
  checks: Array<{ id: string; title: string; status: string; detail: string; hint: string }>;
}
const check = (doc: DoctorDoc, id: string) => doc.checks.find((c) => c.id === id)!;

beforeAll(async () => {
  requireBuild();
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-troubleshoot-'));
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closedPort = (probe.address() as { port: number }).port;
  probe.close();
  await once(probe, 'close');
  // Accepts and never answers: the doctor must still end and name the check that waited.
  blackHole = createServer((socket) => held.push(socket));
  blackHole.listen(0, '127.0.0.1');
  await once(blackHole, 'listening');
  baseEnv = { PATH: process.env.PATH ?? '', HOME: work, ...cliEnv(azure.identity.env(), work) };
  await writeConfig(baseEnv.AZDB_CONFIG!);
  Object.assign(process.env, azure.identity.env());
  tokens = new TokenCache({ credential: createCredential() });
});

afterAll(async () => {
  await Promise.all(tunnels.map((t) => t.close(0)));
  for (const socket of held) socket.destroy();
  blackHole?.close();
  await azure?.stop();
});

describe('azdb creds', () => {
  it('uses the managed identity, shows its claims and says why the other sources do not work', async () => {
    const run = await azdb(['creds', '--json']);
    expect(run.exitCode).toBe(0);
    const doc = json<{ ok: boolean; used: string; sources: Array<{ name: string; ok: boolean; detail: string; hint: string }> }>(run);
    expect(Object.keys(doc)).toEqual(['ok', 'used', 'sources']);
    expect(doc.ok).toBe(true);
    expect(doc.used).toBe('ManagedIdentityCredential');
    expect(doc.sources.map((s) => s.name)).toEqual(['EnvironmentCredential', 'WorkloadIdentityCredential', 'ManagedIdentityCredential', 'AzureCliCredential', 'AzurePowerShellCredential', 'AzureDeveloperCliCredential']);
    for (const source of doc.sources) expect(Object.keys(source)).toEqual(['name', 'ok', 'detail', 'hint']);
    const [env, workload, mi] = doc.sources;
    expect(env!.ok).toBe(false);
    expect(env!.detail).toContain('AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET');
    expect(workload!.detail).toContain('AZURE_FEDERATED_TOKEN_FILE');
    expect(mi!.ok).toBe(true);
    expect(mi!.detail).toContain(`tenant ${DEMO_TENANT_ID}`);
    expect(mi!.detail).toContain(`object id ${DEMO_IDENTITY.objectId}`);
    expect(mi!.detail).toContain(`app id ${DEMO_IDENTITY.clientId}`);
    expect(mi!.detail).toContain('audience https://ossrdbms-aad.database.windows.net');
    // Under --json, stderr carries progress only: no source lines, no summary.
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Probing DefaultAzureCredential's sources one by one .*\.\.\.$/)]);
  });

  it('doctor --json puts only its progress on stderr', async () => {
    const run = await azdb(['doctor', 'orders', '--json']);
    expect(run.stderr.trim().split('\n')).toEqual(['Checking "orders"...']);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true });
  });

  it('prints the same for people', async () => {
    const run = await azdb(['creds']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/ok\s+ManagedIdentityCredential/);
    expect(run.stdout).toContain(DEMO_IDENTITY.objectId);
    expect(run.stdout).toContain('DefaultAzureCredential would use ManagedIdentityCredential.');
  });

  it('names the one missing variable of a half-set environment', async () => {
    const run = await azdb(['creds', '--json'], { AZURE_TENANT_ID: DEMO_TENANT_ID, AZURE_CLIENT_ID: DEMO_IDENTITY.clientId });
    const doc = json<{ used: string; sources: Array<{ name: string; detail: string }> }>(run);
    expect(doc.sources[0]!.detail).toMatch(/^incomplete: AZURE_CLIENT_SECRET \(or AZURE_CLIENT_CERTIFICATE_PATH\) is not set/);
    // DefaultAzureCredential takes AZURE_CLIENT_ID as the user-assigned identity: the emulator knows it.
    expect(doc.used).toBe('ManagedIdentityCredential');
  });

  it('reports an identity endpoint that answers 500, then one that is unreachable, and exits 1', async () => {
    try {
      await azure.identity.setMode('error-500');
      const failing = await azdb(['creds', '--json']);
      expect(failing.exitCode).toBe(1);
      const doc = json<{ ok: boolean; used: string | null; sources: Array<{ name: string; detail: string }> }>(failing);
      expect(doc).toMatchObject({ ok: false, used: null });
      expect(doc.sources[2]!.detail).toContain(`the identity endpoint ${azure.identity.endpoint} answered with an error`);

      await azure.identity.setMode('unreachable');
      const gone = await azdb(['creds', '--json']);
      expect(gone.exitCode).toBe(1);
      expect(json<{ sources: Array<{ detail: string }> }>(gone).sources[2]!.detail).toContain(`the identity endpoint ${azure.identity.endpoint} is unreachable`);
    } finally {
      await azure.identity.setMode('up');
    }
  });
});

describe('azdb doctor', () => {
  it('without a name checks the config and the credential and lists the databases', async () => {
    const run = await azdb(['doctor', '--json']);
    expect(run.exitCode).toBe(0);
    const doc = json<DoctorDoc>(run);
    expect(Object.keys(doc)).toEqual(['ok', 'checks']);
    expect(doc.checks.map((c) => [c.id, c.status])).toEqual([['config', 'pass'], ['credential', 'pass'], ['databases', 'pass']]);
    for (const c of doc.checks) expect(Object.keys(c)).toEqual(['id', 'title', 'status', 'detail', 'hint']);
    expect(check(doc, 'databases').detail).toContain('orders');
  });

  it('passes on a healthy PostgreSQL database, with a real login through the broker', async () => {
    const run = await azdb(['doctor', 'orders', '--json']);
    const doc = json<DoctorDoc>(run);
    expect(doc.checks.map((c) => c.id)).toEqual(['config', 'credential', 'dns', 'tcp', 'tls', 'token', 'login', 'client']);
    expect(doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(check(doc, 'tls').detail).toContain('orders.postgres.database.azure.com');
    expect(check(doc, 'login').status).toBe('pass');
    expect(check(doc, 'login').detail).toContain(`current user ${DEMO_IDENTITY.role}`);
  });

  it.skipIf(mariadbd.skip)('passes on a healthy MySQL database', async () => {
    const run = await azdb(['doctor', 'shopdb', '--json']);
    const doc = json<DoctorDoc>(run);
    expect(doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(check(doc, 'tls').status).toBe('pass');
    expect(check(doc, 'login').detail).toContain(DEMO_IDENTITY.role);
    expect(run.exitCode).toBe(0);
  });

  it('names the TCP check for a closed port', async () => {
    const run = await azdb(['doctor', 'closed', '--json']);
    expect(run.exitCode).toBe(1);
    const doc = json<DoctorDoc>(run);
    expect(check(doc, 'tcp')).toMatchObject({ status: 'fail' });
    expect(check(doc, 'tcp').detail).toContain('refused');
    expect(check(doc, 'tls').status).toBe('skip');
    expect(check(doc, 'login').status).toBe('skip');
  });

  it('ends on a black-holed port and says which check timed out', async () => {
    const run = await azdb(['doctor', 'blackhole', '--json']);
    expect(run.exitCode).toBe(1);
    const doc = json<DoctorDoc>(run);
    expect(check(doc, 'tcp').status).toBe('pass');
    expect(check(doc, 'tls').status).toBe('fail');
    expect(check(doc, 'tls').detail).toMatch(/accepted the connection but did not answer the SSLRequest .* within 3 s/);
    expect(check(doc, 'login').status).toBe('skip');
  });

  it('names the TLS check for a wrong certificate name and for an expired certificate', async () => {
    const front = azure.fronts.get('inventory')!;
    const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
    const fqdn = azure.servers.find((s) => s.name === 'inventory')!.fqdn;
    try {
      const wrong = await ca.issueServerCertificate({ dnsNames: ['elsewhere.example.com'] });
      front.setCertificate(wrong.certPem, wrong.keyPem);
      const named = json<DoctorDoc>(await azdb(['doctor', 'inventory', '--json']));
      expect(named.ok).toBe(false);
      expect(check(named, 'tls').status).toBe('fail');
      expect(check(named, 'tls').detail).toContain(`does not carry the name "${fqdn}": it is for elsewhere.example.com`);
      expect(check(named, 'login').status).toBe('skip');

      const day = 86_400_000;
      const expired = await ca.issueServerCertificate({ dnsNames: [fqdn], notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) });
      front.setCertificate(expired.certPem, expired.keyPem);
      const old = json<DoctorDoc>(await azdb(['doctor', 'inventory', '--json']));
      expect(check(old, 'tls').status).toBe('fail');
      expect(check(old, 'tls').detail).toContain('expired on');
    } finally {
      const good = await ca.issueServerCertificate({ dnsNames: [fqdn, '*.postgres.database.azure.com'] });
      front.setCertificate(good.certPem, good.keyPem);
    }
  });

  it('names the login check for a missing Entra user and gives the SQL with the ids from the token', async () => {
    const file = join(work, 'nobody.yaml');
    await writeConfig(file, ['nobody']);
    const run = await azdb(['--config', file, 'doctor', 'orders', '--json']);
    expect(run.exitCode).toBe(1);
    const doc = json<DoctorDoc>(run);
    expect(check(doc, 'tls').status).toBe('pass');
    const login = check(doc, 'login');
    expect(login.status).toBe('fail');
    expect(login.detail).toContain('password authentication failed for user "nobody"');
    expect(login.hint).toContain(`select * from pgaadauth_create_principal_with_oid('nobody', '${DEMO_IDENTITY.objectId}', 'service', false, false);`);
    if (!mariadbd.skip) {
      const my = json<DoctorDoc>(await azdb(['--config', file, 'doctor', 'shopdb', '--json']));
      expect(check(my, 'login'), JSON.stringify(my.checks)).toMatchObject({ status: 'fail' });
      expect(check(my, 'login').hint).toContain(`CREATE AADUSER 'nobody' IDENTIFIED BY '${DEMO_IDENTITY.clientId}';`);
    }
  });

  it('under a role that allows any user, says the login was not checked, and checks the one --db-user names', async () => {
    const file = join(work, 'any-user.yaml');
    await writeConfig(file, ['*']);
    const unnamed = await azdb(['--config', file, 'doctor', 'orders']);
    expect(unnamed.exitCode).toBe(0);
    expect(unnamed.stdout).toContain('No problems found, but the login was not checked: the roles name no database user for this database (only "*")');
    expect(unnamed.stdout).toContain(`\`azdb --config ${file} doctor orders --db-user USER\``);
    const named = json<DoctorDoc>(await azdb(['--config', file, 'doctor', 'orders', '--db-user', DEMO_IDENTITY.role, '--db-name', 'orders', '--json']));
    expect(check(named, 'login')).toMatchObject({ status: 'pass', detail: expect.stringContaining(`logged in as ${DEMO_IDENTITY.role} to orders`) });
    const refused = json<DoctorDoc>(await azdb(['doctor', 'orders', '--db-user', 'someone-else', '--json']));
    expect(check(refused, 'login').status).toBe('fail');
    expect(check(refused, 'login').detail).toContain('someone-else');
    expect(check(refused, 'login').hint).not.toContain('bug');
  });

  it('prints a report for people', async () => {
    const run = await azdb(['doctor', 'closed']);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/FAIL\s+TCP connect\s+connection to 127\.0\.0\.1:\d+ refused/);
    expect(run.stdout).toContain('1 check(s) failed: tcp.');
  });
});

describe('azdb queries (PostgreSQL)', () => {
  async function sleeper(marker: string): Promise<{ client: pg.Client; running: Promise<unknown> }> {
    const t = await openTunnel({
      target: emulatorTarget(azure, 'orders'),
      host: '127.0.0.1',
      port: 0,
      dbUser: DEMO_IDENTITY.role,
      dbName: 'orders',
      authorize: () => ({ allowed: true }),
      getToken: () => tokens.getToken(databaseScope(CLOUDS.AzureCloud)),
      audit: NO_AUDIT,
    });
    tunnels.push(t);
    const client = new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password });
    client.on('error', () => {});
    await client.connect();
    const running = client.query(`select pg_sleep(60) /* ${marker} */`).then(() => 'finished', (e: Error & { code?: string }) => e);
    await waitFor(async () => (await azure.realPostgres.query("select 1 from pg_stat_activity where state = 'active' and query like $1", [`%${marker}%`])).rows.length > 0, 'the sleeping query');
    return { client, running };
  }

  it('lists a running pg_sleep in the contract shape and cancels it', async () => {
    const { client, running } = await sleeper('azdb-cancel-me');
    const list = await azdb(['queries', 'orders', '--db-name', 'orders', '--json']);
    expect(list.exitCode).toBe(0);
    const sessions = json<Array<Record<string, unknown>>>(list);
    for (const s of sessions) expect(Object.keys(s)).toEqual(['pid', 'user', 'database', 'state', 'duration_ms', 'query']);
    const mine = sessions.find((s) => String(s.query).includes('azdb-cancel-me'))!;
    expect(mine).toMatchObject({ user: DEMO_IDENTITY.role, database: 'orders', state: 'active' });
    expect(typeof mine.pid).toBe('number');
    expect(typeof mine.duration_ms).toBe('number');

    const human = await azdb(['queries', 'orders']);
    expect(human.stdout.split('\n')[0]).toMatch(/^PID\s+User\s+Database\s+State\s+Duration\s+Query$/);
    expect(human.stdout).toContain('azdb-cancel-me');

    const cancel = await azdb(['queries', 'orders', '--cancel', String(mine.pid)]);
    expect(cancel.stdout).toContain(`the running query of pid ${mine.pid} was cancelled`);
    expect(cancel.exitCode).toBe(0);
    const outcome = (await running) as Error & { code?: string };
    expect(outcome.code).toBe('57014');
    // The session survives a cancel.
    expect((await client.query('select 1 as one')).rows[0].one).toBe(1);
    await client.end();
  });

  it('terminates a session', async () => {
    const { running } = await sleeper('azdb-terminate-me');
    const sessions = json<Array<{ pid: number; query: string }>>(await azdb(['queries', 'orders', '--json']));
    const mine = sessions.find((s) => s.query.includes('azdb-terminate-me'))!;
    const terminate = await azdb(['queries', 'orders', '--terminate', String(mine.pid)]);
    expect(terminate.stdout).toContain(`session ${mine.pid} was terminated`);
    expect(terminate.exitCode).toBe(0);
    expect(await running).toBeInstanceOf(Error);
  });

  it('refuses clearly without the privilege, and for a pid that does not exist', async () => {
    const marker = 'azdb-superuser-sleep';
    const superuser = azure.realPostgres.query(`select pg_sleep(60) /* ${marker} */`).catch(() => undefined);
    const pid = await waitFor(async () => (await azure.realPostgres.query<{ pid: number }>("select pid from pg_stat_activity where state = 'active' and query like $1 and query not like '%pg_stat_activity%'", [`%${marker}%`])).rows[0]?.pid, 'the superuser query');
    try {
      const denied = await azdb(['queries', 'orders', '--cancel', String(pid)]);
      expect(denied.exitCode).toBe(1);
      expect(denied.stderr).toContain(`${DEMO_IDENTITY.role} may not cancel the query of pid ${pid}`);
      expect(denied.stderr).toContain('hint:');
    } finally {
      await azure.realPostgres.query('select pg_cancel_backend($1)', [pid]);
      await superuser;
    }
    const missing = await azdb(['queries', 'orders', '--terminate', '2147483000']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no session with pid 2147483000');
  });
});

describe.skipIf(mariadbd.skip)('azdb queries (MySQL)', () => {
  async function sleeper(marker: string): Promise<{ connection: mysql.Connection; running: Promise<unknown> }> {
    const t = await openTunnel({
      target: emulatorTarget(azure, 'shopdb'),
      host: '127.0.0.1',
      port: 0,
      dbUser: DEMO_IDENTITY.role,
      dbName: '',
      authorize: () => ({ allowed: true }),
      getToken: () => tokens.getToken(databaseScope(CLOUDS.AzureCloud)),
      audit: NO_AUDIT,
    });
    tunnels.push(t);
    const connection = await mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password });
    connection.on('error', () => {});
    const running = connection.query(`select sleep(60) /* ${marker} */`).then(([rows]) => rows, (e: Error) => e);
    await waitFor(async () => ((await azure.realMariaDb!.query<unknown[]>("select id from information_schema.processlist where command = 'Query' and info like ? and info not like '%processlist%'", [`%${marker}%`])).length > 0), 'the sleeping query');
    return { connection, running };
  }

  it('lists a running sleep, cancels it with KILL QUERY and terminates with KILL', async () => {
    const { connection, running } = await sleeper('azdb-mysql-cancel');
    const sessions = json<Array<{ pid: number; user: string; state: string; duration_ms: number; query: string }>>(await azdb(['queries', 'shopdb', '--json']));
    const mine = sessions.find((s) => (s.query ?? '').includes('azdb-mysql-cancel'))!;
    expect(mine.state).toMatch(/^active/);
    expect(Object.keys(mine)).toEqual(['pid', 'user', 'database', 'state', 'duration_ms', 'query']);
    const cancel = await azdb(['queries', 'shopdb', '--cancel', String(mine.pid)]);
    expect(cancel.stdout).toContain(`the running query of session ${mine.pid} was cancelled`);
    expect(cancel.exitCode).toBe(0);
    // MariaDB ends the statement with ER_QUERY_INTERRUPTED; the connection lives on.
    expect(await running).toMatchObject({ errno: 1317 });
    const [rows] = await connection.query('select 1 as one');
    expect((rows as Array<{ one: number }>)[0]!.one).toBe(1);
    await connection.end();

    const second = await sleeper('azdb-mysql-kill');
    const again = json<Array<{ pid: number; query: string }>>(await azdb(['queries', 'shopdb', '--json']));
    const victim = again.find((s) => (s.query ?? '').includes('azdb-mysql-kill'))!;
    const kill = await azdb(['queries', 'shopdb', '--terminate', String(victim.pid)]);
    expect(kill.stdout).toContain(`session ${victim.pid} was terminated`);
    expect(kill.exitCode).toBe(0);
    await second.running;
    await expect(second.connection.query('select 1')).rejects.toThrow();
  });

  it('refuses clearly for an id that does not exist', async () => {
    const run = await azdb(['queries', 'shopdb', '--cancel', '987654321']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('no session with id 987654321');
  });
});
