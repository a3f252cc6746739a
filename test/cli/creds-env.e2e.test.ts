/**
 * `azdb creds` with the environment credential (AZURE_TENANT_ID / AZURE_CLIENT_ID /
 * AZURE_CLIENT_SECRET) as a user runs it: the built CLI as a child process, the real
 * @azure/identity EnvironmentCredential → ClientSecretCredential → MSAL, against the emulated
 * Entra authority. MSAL knows login.microsoftonline.com's endpoints without asking, so it posts
 * straight to /{tenant}/oauth2/v2.0/token; the child reaches the emulator through HTTPS_PROXY
 * (a loopback CONNECT proxy that tunnels only to Entra) and trusts its CA through
 * NODE_EXTRA_CA_CERTS. A preloaded guard fails any socket to a non-loopback host, loudly, and
 * logs it: the tests assert that log is empty.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { startTestAzure } from '../harness/emulator.js';
import { renderConfig } from '../../src/config/generate.js';
import { DEMO_APP, type EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { DEMO_IDENTITY, DEMO_TENANT_ID } from '../../src/emulator/demo-identity.js';
import { JWT } from '../helpers/broker-fixtures.js';
import { BIN, requireBuild } from '../helpers/cli.js';

const GUARD = resolve(import.meta.dirname, '../helpers/loopback-only.mjs');
const TOKEN_PATH = `/${DEMO_TENANT_ID}/oauth2/v2.0/token`;

let azure: EmulatedAzure & { dir: string };
let work: string;
let blockedLog: string;
let baseEnv: Record<string, string>;
let secret: string;

interface CredsDoc {
  ok: boolean;
  used: string | null;
  sources: Array<{ name: string; ok: boolean; detail: string; hint: string }>;
}

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function azdb(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const result = await execa(process.execPath, ['--import', GUARD, BIN, ...args], { env: { ...baseEnv, ...env }, extendEnv: false, reject: false, timeout: 60_000 });
  const run = { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  expect(run.stdout).not.toMatch(JWT);
  expect(run.stderr).not.toMatch(JWT);
  expect(run.stdout + run.stderr).not.toContain(secret);
  return run;
}

/** Nothing left 127.0.0.1: no socket to another host, no proxy target but Entra. */
async function expectLoopbackOnly(): Promise<void> {
  const blocked = existsSync(blockedLog) ? (await readFile(blockedLog, 'utf8')).trim() : '';
  expect(blocked, `connections that would have left 127.0.0.1:\n${blocked}`).toBe('');
  expect(azure.entraAuthority.refused, 'proxy targets other than Entra').toEqual([]);
}

function tokenRequests() {
  return azure.entraAuthority.requests.filter((r) => r.path === TOKEN_PATH);
}

function servicePrincipalEnv(clientSecret: string, clientId: string = DEMO_APP.clientId): Record<string, string> {
  return { AZURE_TENANT_ID: DEMO_TENANT_ID, AZURE_CLIENT_ID: clientId, AZURE_CLIENT_SECRET: clientSecret };
}

beforeAll(async () => {
  requireBuild();
  azure = await startTestAzure({ realMariaDb: null });
  secret = azure.entraAuthority.apps[0]!.secrets[0]!;
  work = await mkdtemp(join(tmpdir(), 'azdb-creds-env-'));
  blockedLog = join(work, 'blocked.log');
  const config = join(work, 'azdb.yaml');
  // The managed identity is named in the config, so it still works while AZURE_CLIENT_ID names
  // the app: a refused secret must end the chain even though a later source would yield a token.
  await writeFile(
    config,
    renderConfig({
      version: 'v1',
      azure: { cloud: 'AzureCloud', managed_identity_client_id: DEMO_IDENTITY.clientId },
      databases: [],
      roles: [],
    }),
  );
  baseEnv = {
    PATH: process.env.PATH ?? '',
    HOME: work,
    AZDB_CONFIG: config,
    AZDB_STATE_DIR: join(work, 'state'),
    NO_COLOR: '1',
    AZDB_TEST_BLOCKED_LOG: blockedLog,
    NODE_EXTRA_CA_CERTS: azure.caFile,
    ...azure.identity.env(),
    ...azure.entraAuthority.env(),
  };
});

beforeEach(async () => {
  await rm(blockedLog, { force: true });
  azure.entraAuthority.resetLog();
});

afterAll(async () => {
  await azure?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('azdb creds with a service principal in the environment', () => {
  it('uses EnvironmentCredential and shows the app\'s claims', async () => {
    const run = await azdb(['creds', '--json'], servicePrincipalEnv(secret));
    expect(run.exitCode, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as CredsDoc;
    expect(doc.ok).toBe(true);
    expect(doc.used).toBe('EnvironmentCredential');
    const env = doc.sources[0]!;
    expect(env).toMatchObject({ name: 'EnvironmentCredential', ok: true });
    expect(env.detail).toContain(`tenant ${DEMO_TENANT_ID}`);
    expect(env.detail).toContain(`object id ${DEMO_APP.objectId}`);
    expect(env.detail).toContain(`app id ${DEMO_APP.clientId}`);
    expect(env.detail).toContain('audience https://ossrdbms-aad.database.windows.net');
    // The managed identity works too; the environment comes first.
    expect(doc.sources[2]).toMatchObject({ name: 'ManagedIdentityCredential', ok: true });

    // One token request, to the public cloud's authority, and no discovery: MSAL has
    // login.microsoftonline.com's endpoints built in.
    expect(azure.entraAuthority.requests.map((r) => [r.method, r.host, r.path, r.status])).toEqual([['POST', 'login.microsoftonline.com', TOKEN_PATH, 200]]);
    await expectLoopbackOnly();
  });

  it('prints the same for people', async () => {
    const run = await azdb(['creds'], servicePrincipalEnv(secret));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/ok\s+EnvironmentCredential/);
    expect(run.stdout).toContain(DEMO_APP.objectId);
    expect(run.stdout).toContain('DefaultAzureCredential would use EnvironmentCredential.');
    await expectLoopbackOnly();
  });

  it('reports a wrong secret with Entra\'s AADSTS7000215 and the fix, and the chain stops there', async () => {
    const run = await azdb(['creds', '--json'], servicePrincipalEnv('not-the-secret'));
    expect(run.exitCode).toBe(1);
    const doc = JSON.parse(run.stdout) as CredsDoc;
    expect(doc.ok).toBe(false);
    expect(doc.used).toBeNull();
    const env = doc.sources[0]!;
    expect(env.ok).toBe(false);
    expect(env.detail).toMatch(/^the service principal's secret was refused: AADSTS7000215: Invalid client secret provided\./);
    expect(env.detail).toContain(`for a secret added to app '${DEMO_APP.clientId}'`);
    expect(env.hint).toContain(`AZURE_CLIENT_SECRET is wrong or expired: create a new one (\`az ad app credential reset --id ${DEMO_APP.clientId}\`)`);
    // A later source would work, but DefaultAzureCredential does not get there.
    expect(doc.sources[2]).toMatchObject({ name: 'ManagedIdentityCredential', ok: true });
    expect(tokenRequests().map((r) => [r.status, r.error])).toEqual([[401, 'invalid_client']]);
    await expectLoopbackOnly();

    const human = await azdb(['creds'], servicePrincipalEnv('not-the-secret'));
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toContain('(DefaultAzureCredential stops here: later sources are not tried)');
    expect(human.stdout).toContain('DefaultAzureCredential gets no token: DefaultAzureCredential stops at EnvironmentCredential');
  });

  it('reports an unknown client id with AADSTS700016', async () => {
    const stranger = '0f0f0f0f-1e1e-4d2d-8c3c-4b4b4b4b4b4b';
    const run = await azdb(['creds', '--json'], servicePrincipalEnv(secret, stranger));
    expect(run.exitCode).toBe(1);
    const doc = JSON.parse(run.stdout) as CredsDoc;
    expect(doc.used).toBeNull();
    expect(doc.sources[0]!.detail).toMatch(new RegExp(`^no such application in the tenant: AADSTS700016: Application with identifier '${stranger}' was not found`));
    expect(doc.sources[0]!.hint).toContain("check AZURE_CLIENT_ID (the app registration's Application (client) ID) and AZURE_TENANT_ID");
    expect(tokenRequests().map((r) => [r.status, r.error])).toEqual([[400, 'unauthorized_client']]);
    await expectLoopbackOnly();
  });

  it('with AZURE_AUTHORITY_HOST at a host Entra does not know, says the authority is not accepted', async () => {
    // MSAL validates an authority it has no metadata for with Entra's instance discovery (on
    // login.microsoftonline.com, here the emulator); Entra answers invalid_instance for such a host.
    const run = await azdb(['creds', '--json'], { ...servicePrincipalEnv(secret), AZURE_AUTHORITY_HOST: azure.entraAuthority.directUrl });
    expect(run.exitCode).toBe(1);
    const doc = JSON.parse(run.stdout) as CredsDoc;
    expect(doc.used).toBeNull();
    const env = doc.sources[0]!;
    expect(env.detail).toContain(`Entra ID does not accept AZURE_AUTHORITY_HOST=${azure.entraAuthority.directUrl} as an authority`);
    expect(env.hint).toContain('set AZURE_AUTHORITY_HOST to your cloud\'s Entra authority');
    expect(azure.entraAuthority.requests.map((r) => [r.method, r.path, r.status, r.error])).toEqual([['GET', '/common/discovery/instance', 400, 'invalid_instance']]);
    expect(tokenRequests()).toEqual([]);
    await expectLoopbackOnly();
  });
});
