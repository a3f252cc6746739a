/**
 * The emulated "Azure Database for PostgreSQL" front as Azure's users meet it: real psql with
 * verify-full TLS and an Entra token in PGPASSWORD (what people do today with
 * `az account get-access-token`), against the run's real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { CLOUDS } from '../../src/azure/clouds.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { loadSampleData } from '../../src/emulator/sample-data.js';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';

const psql = await findTool('psql');
const DB_AUDIENCE = CLOUDS.AzureCloud.databaseResource;

let azure: EmulatedAzure & { dir: string };

beforeAll(async () => {
  azure = await startTestAzure();
});

afterAll(async () => {
  await azure?.stop();
});

async function runPsql(token: string, options: { server?: string; user?: string; sslmode?: string; sql?: string } = {}) {
  const server = azure.servers.find((s) => s.name === (options.server ?? 'orders'))!;
  const conninfo = [
    `host=${server.fqdn}`,
    'hostaddr=127.0.0.1',
    `port=${server.port}`,
    `user=${options.user ?? server.loginUser}`,
    'dbname=postgres',
    `sslmode=${options.sslmode ?? 'verify-full'}`,
    `sslrootcert=${azure.caFile}`,
  ].join(' ');
  return execa(psql.path!, [conninfo, '-XAt', '-v', 'ON_ERROR_STOP=1', '-c', options.sql ?? 'select current_user'], {
    env: { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' },
    reject: false,
  });
}

describe.skipIf(psql.skip)('psql straight to the emulated Azure front', () => {
  it('logs in with a valid database token as the mapped principal', async () => {
    const result = await runPsql(await azure.issueToken({ audience: DB_AUDIENCE }));
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(DEMO_IDENTITY.role);
  });

  it('lets the Entra admin make a principal with pgaadauth_create_principal_with_oid, which then logs in with its own token', async () => {
    const role = `app_${randomBytes(4).toString('hex')}`;
    const objectId = randomUUID();
    const admin = await azure.issueToken({ audience: DB_AUDIENCE });
    const made = await runPsql(admin, { server: 'legacy', sql: `select * from pgaadauth_create_principal_with_oid('${role}', '${objectId}', 'service', false, false)` });
    expect(made.stderr).toBe('');
    expect(made.stdout.trim()).toBe(`Created role for "${role}"`);

    const token = await azure.issueToken({ audience: DB_AUDIENCE, objectId, appId: randomUUID() });
    const used = await runPsql(token, { user: role });
    expect(used.stderr).toBe('');
    expect(used.stdout.trim()).toBe(role);
    // Another identity's token does not open it.
    expect((await runPsql(admin, { user: role })).stderr).toContain(`password authentication failed for user "${role}"`);

    // Only the admin may make principals; the new role is not one.
    const denied = await runPsql(token, { user: role, sql: `select pgaadauth_create_principal_with_oid('sneaky', '${randomUUID()}', 'service', true, false)` });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toContain('permission denied for function pgaadauth_create_principal_with_oid');
    const again = await runPsql(admin, { sql: `select pgaadauth_create_principal_with_oid('${role}', '${objectId}', 'service', false, false)` });
    expect(again.stderr).toContain(`role "${role}" already exists`);
  });

  it('brings a principal of an older cluster up to admin when the demo asks for it', async () => {
    const role = `old_${randomBytes(4).toString('hex')}`;
    const objectId = randomUUID();
    await azure.realPostgres.query("select pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", [role, objectId]);
    const isAdmin = async () =>
      (await azure.realPostgres.query<{ member: boolean; flagged: boolean }>("select pg_has_role($1, 'azure_pg_admin', 'member') as member, is_admin as flagged from pgaadauth.principals where rolname = $1", [role])).rows[0];
    expect(await isAdmin()).toEqual({ member: false, flagged: false });
    await loadSampleData(azure.realPostgres, [{ role, objectId, type: 'service', isAdmin: true }]);
    expect(await isAdmin()).toEqual({ member: true, flagged: true });
  });

  it("refuses bytes sent along with SSLRequest over TLS, after 'S' and the handshake, as PostgreSQL does (CVE-2021-23214)", async () => {
    const front = azure.fronts.get('orders')!;
    const server = azure.servers.find((s) => s.name === 'orders')!;
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80877103, 4);
    const socket = connect({ host: front.host, port: front.port });
    await once(socket, 'connect');
    socket.write(Buffer.concat([sslRequest, Buffer.from('injected')]));
    const [answer] = (await once(socket, 'data')) as [Buffer];
    expect(answer.toString('latin1')).toBe('S');
    const secure = tlsConnect({ socket, ca: await readFile(azure.caFile, 'utf8'), servername: server.fqdn });
    const received: Buffer[] = [];
    secure.on('data', (chunk: Buffer) => received.push(chunk));
    secure.on('error', () => {});
    await once(secure, 'close');
    const error = Buffer.concat(received).toString('latin1');
    expect(error[0]).toBe('E');
    expect(error).toContain('received unencrypted data after SSL request');
    expect(error).toContain('man-in-the-middle');
  });

  it('takes `user@server` on a single server and refuses the bare name as Azure did', async () => {
    const token = await azure.issueToken({ audience: DB_AUDIENCE });
    const ok = await runPsql(token, { server: 'legacy' });
    expect(ok.stdout.trim()).toBe(DEMO_IDENTITY.role);
    const bare = await runPsql(token, { server: 'legacy', user: DEMO_IDENTITY.role });
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr).toContain('Invalid Username format. Please use username format <username@legacy>');
  });

  it('refuses an expired token with the error Azure gives', async () => {
    const expired = await azure.issueToken({ audience: DB_AUDIENCE, ttlSeconds: 3600, notBefore: new Date(Date.now() - 3 * 3_600_000) });
    const result = await runPsql(expired);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('FATAL:  The access token has expired');
  });

  it('refuses a token for another audience, naming the one it wants', async () => {
    const armToken = await azure.issueToken({ audience: CLOUDS.AzureCloud.resourceManagerEndpoint });
    const result = await runPsql(armToken);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`does not have a valid audience claim. Please acquire a new token for the resource "${DB_AUDIENCE}"`);
  });

  it('refuses a token with a forged signature, and one for a principal it does not know, as a failed password', async () => {
    const [header, payload, signature] = (await azure.issueToken({ audience: DB_AUDIENCE })).split('.');
    const forged = [header, payload, randomBytes(Buffer.from(signature!, 'base64url').length).toString('base64url')].join('.');
    const stranger = await azure.issueToken({ audience: DB_AUDIENCE, objectId: '00000000-0000-0000-0000-00000000beef' });
    for (const token of [forged, stranger]) {
      const result = await runPsql(token);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`FATAL:  password authentication failed for user "${DEMO_IDENTITY.role}"`);
      expect(result.stderr).not.toContain(token);
    }
  });

  it('refuses a connection without TLS before asking for a password', async () => {
    const result = await runPsql(await azure.issueToken({ audience: DB_AUDIENCE }), { sslmode: 'disable' });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "azdb-demo", database "postgres", no encryption/);
  });

  it('fails verify-full for a name the certificate does not carry', async () => {
    const server = azure.servers.find((s) => s.name === 'orders')!;
    const result = await execa(psql.path!, [`host=127.0.0.1 port=${server.port} user=x dbname=postgres sslmode=verify-full sslrootcert=${azure.caFile}`, '-c', 'select 1'], {
      env: { PGPASSWORD: 'unused' },
      reject: false,
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/server certificate for "[^"]+" (\(and \d+ other names?\) )?does not match host name "127.0.0.1"/);
  });
});
