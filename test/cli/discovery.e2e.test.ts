/**
 * `azdb db ls`, `azdb config create` and `azdb proxy db` with ARM discovery, as a user runs them:
 * the built CLI as a child process, DefaultAzureCredential on the emulated managed identity
 * endpoint, ARM's TLS trusted through NODE_EXTRA_CA_CERTS.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { parseDocument } from 'yaml';
import { renderConfig } from '../../src/config/generate.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { BIN, cliEnv, requireBuild, startProxy } from '../helpers/cli.js';
import { SUB_DENIED, SUB_PROD, startArmWorld, type ArmWorld } from '../helpers/arm-world.js';

const TOKEN = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}/;

let world: ArmWorld;
let work: string;
let env: Record<string, string>;

function config(extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    version: 'v1',
    azure: { cloud: 'AzureCloud', resource_manager_endpoint: world.arm.endpoint },
    discovery: [{ types: ['postgres', 'mysql'] }],
    databases: [{ name: 'static-one', protocol: 'postgres', uri: '127.0.0.1:6543', labels: { env: 'prod', engine: 'static' } }],
    roles: [
      {
        metadata: { name: 'dev' },
        spec: {
          allow: { db_labels: { env: ['prod', 'dev'] }, db_users: ['teleport', 'alice'], db_names: ['*'] },
          deny: { db_labels: { region: 'westeurope' } },
        },
      },
    ],
    broker: { roles: ['dev'] },
    ...extra,
  };
}

async function azdb(args: string[], extraEnv: Record<string, string> = {}) {
  return execa('node', [BIN, ...args], { env: { ...env, ...extraEnv }, reject: false, timeout: 60_000 });
}

beforeAll(async () => {
  requireBuild();
  world = await startArmWorld();
  work = await mkdtemp(join(tmpdir(), 'azdb-discovery-cli-'));
  env = cliEnv(world.env(), work);
  await writeFile(env.AZDB_CONFIG!, renderConfig(config()));
});

afterAll(async () => {
  await world?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('azdb db ls with discovery', () => {
  it('prints the contract JSON for static and discovered databases, and warns about failed scopes on stderr', async () => {
    const result = await azdb(['db', 'ls', '--json']);
    expect(result.exitCode).toBe(0);
    const listing = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    // Denied by region westeurope: legacy, devpg. Not Ready: paused. 403 / 429: secret, oldshop.
    expect(listing.map((d) => d.name)).toEqual(['devmysql', 'orders', 'shop-mysql', 'shop-postgres', 'static-one']);
    for (const entry of listing) expect(Object.keys(entry)).toEqual(['name', 'protocol', 'uri', 'labels', 'db_users', 'db_names']);
    expect(listing.find((d) => d.name === 'orders')).toEqual({
      name: 'orders',
      protocol: 'postgres',
      uri: 'orders.postgres.database.azure.com:5432',
      labels: {
        env: 'prod',
        team: 'shop',
        engine: 'Microsoft.DBforPostgreSQL/flexibleServers',
        'engine-version': '16',
        region: 'eastus',
        'resource-group': 'rg-shop',
        'subscription-id': SUB_PROD,
      },
      db_users: ['alice', 'teleport'],
      db_names: ['*'],
    });
    expect(listing.find((d) => d.name === 'shop-mysql')).toMatchObject({ protocol: 'mysql', uri: 'shop.mysql.database.azure.com:3306', db_names: ['*'] });
    expect(listing.find((d) => d.name === 'static-one')).toMatchObject({ uri: '127.0.0.1:6543', labels: { env: 'prod', engine: 'static' } });

    expect(result.stderr).toContain(`subscription ${SUB_DENIED}`);
    expect(result.stderr).toMatch(/403 AuthorizationFailed/);
    expect(result.stderr).toContain('needs Microsoft.DBforPostgreSQL/flexibleServers/read');
    expect(result.stderr).toMatch(/Microsoft\.DBforMySQL\/servers.*throttled by ARM after 3 retries/);
    expect(`${result.stdout}\n${result.stderr}`).not.toMatch(TOKEN);
  });

  it('prints a table for people, with the same warnings, from the cache the first run left', async () => {
    const before = world.arm.requests;
    const result = await azdb(['db', 'ls']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^Name\s+Protocol\s+URI\s+Allowed Users\s+Database Names\s+Labels$/);
    expect(result.stdout).toMatch(/^orders\s+postgres\s+orders\.postgres\.database\.azure\.com:5432\s+alice, teleport\s+\*\s+.*engine=Microsoft\.DBforPostgreSQL\/flexibleServers/m);
    expect(result.stderr).toMatch(/warning: discovery could not list/);
    // The first run's result had only 403s and throttling: throttling is not cached, so ARM is asked again.
    expect(world.arm.requests).toBeGreaterThan(before);
    expect(`${result.stdout}\n${result.stderr}`).not.toMatch(TOKEN);
  });

  it('keeps a static database over a discovered one of the same name and says so', async () => {
    const file = join(work, 'shadow.yaml');
    await writeFile(file, renderConfig(config({ databases: [{ name: 'orders', protocol: 'postgres', uri: '127.0.0.1:6543', labels: { env: 'prod' } }] })));
    const result = await azdb(['--config', file, 'db', 'ls', '--json']);
    const orders = (JSON.parse(result.stdout) as Array<{ name: string; uri: string }>).filter((d) => d.name === 'orders');
    expect(orders).toEqual([expect.objectContaining({ uri: '127.0.0.1:6543' })]);
    expect(result.stderr).toContain('discovered server "orders" is not listed');
  });

  it('lists static databases and warns once when the credential cannot get an ARM token', async () => {
    // A user-assigned identity the endpoint does not know: it answers 400 at once.
    const file = join(work, 'unknown-identity.yaml');
    await writeFile(file, renderConfig(config({ azure: { cloud: 'AzureCloud', resource_manager_endpoint: world.arm.endpoint, managed_identity_client_id: '99999999-0000-4000-8000-000000000000' } })));
    const before = world.arm.requests;
    const result = await azdb(['--config', file, 'db', 'ls', '--json'], { AZDB_STATE_DIR: join(work, 'state-nocred') });
    expect(world.arm.requests).toBe(before);
    expect(result.exitCode).toBe(0);
    expect((JSON.parse(result.stdout) as Array<{ name: string }>).map((d) => d.name)).toEqual(['static-one']);
    expect(result.stderr.match(/discovery could not list/g)).toHaveLength(1);
    expect(result.stderr).toMatch(/could not list credential/);
  });
});

describe('azdb db ls when discovery fails entirely', () => {
  it('exits 1 saying why, instead of an empty list', async () => {
    const file = join(work, 'only-discovery.yaml');
    await writeFile(file, renderConfig(config({ databases: [], azure: { cloud: 'AzureCloud', resource_manager_endpoint: world.arm.endpoint, managed_identity_client_id: '99999999-0000-4000-8000-000000000000' } })));
    const result = await azdb(['--config', file, 'db', 'ls', '--json'], { AZDB_STATE_DIR: join(work, 'state-nothing') });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/error: no databases: discovery could not list any server \(\d+ scopes? failed\)/);
    expect(result.stderr).toContain(`azdb --config ${file} doctor`);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, error: { message: expect.stringContaining('discovery could not list any server') } });
  });
});

describe('azdb proxy db with a discovered database', () => {
  it('opens a tunnel for it (the same lookup db connect uses)', async () => {
    const { child, info } = await startProxy(['orders', '--db-user', 'teleport'], env, 30_000); // discovery lists ARM first
    expect(info).toMatchObject({ name: 'orders', protocol: 'postgres', user: 'teleport', database: 'postgres' });
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
  });

  it('names the known databases, discovered ones included, for an unknown name', async () => {
    const result = await azdb(['proxy', 'db', 'nope']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no database named "nope" .* or found by discovery/);
    expect(result.stderr).toMatch(/Known databases: .*orders.*shop-mysql/);
  });
});

describe('azdb doctor with discovery', () => {
  it('reads the config once for a name that is not static: its warnings are printed once', async () => {
    const file = join(work, 'insecure.yaml');
    await writeFile(file, renderConfig(config({ databases: [{ name: 'static-one', protocol: 'postgres', uri: '127.0.0.1:6543', tls: { mode: 'insecure' } }] })));
    const result = await azdb(['--config', file, 'doctor', 'nope']);
    expect(result.stderr.split('uses tls.mode insecure').length - 1).toBe(1);
    expect(result.stderr + result.stdout).toMatch(/no database named "nope"/);
  });
});

describe('azdb config create', () => {
  it('writes two discovery entries and the starter role; the file passes config check and discovers', async () => {
    const file = join(work, 'created', 'azdb.yaml');
    const created = await azdb([
      'config', 'create', '-o', file,
      '--azure-postgres-discovery', 'East US', '--azure-mysql-discovery', 'eastus',
      '--subscription', SUB_PROD, '--tag', 'env=prod',
    ]);
    expect(created.exitCode, created.stderr).toBe(0);
    expect(created.stdout).toContain(`Wrote ${file}`);
    const doc = parseDocument(await readFile(file, 'utf8'));
    expect(doc.toJS()).toEqual({
      version: 'v1',
      azure: { cloud: 'AzureCloud' },
      discovery: [
        { types: ['mysql'], regions: ['eastus'], subscriptions: [SUB_PROD], resource_groups: ['*'], tags: { env: 'prod' } },
        { types: ['postgres'], regions: ['eastus'], subscriptions: [SUB_PROD], resource_groups: ['*'], tags: { env: 'prod' } },
      ],
      roles: [
        {
          version: 'v7',
          kind: 'role',
          metadata: { name: 'azure-database-access' },
          spec: {
            allow: {
              db_labels: {
                engine: ['Microsoft.DBforMySQL/servers', 'Microsoft.DBforMySQL/flexibleServers', 'Microsoft.DBforPostgreSQL/servers', 'Microsoft.DBforPostgreSQL/flexibleServers'],
              },
              db_names: ['*'],
              db_users: ['teleport'],
            },
          },
        },
      ],
      broker: { roles: ['azure-database-access'] },
    });

    const check = await azdb(['--config', file, 'config', 'check']);
    expect(check.exitCode, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^OK: /);

    // Point it at the emulated ARM (the one line a real Azure user would not need) and list.
    doc.setIn(['azure', 'resource_manager_endpoint'], world.arm.endpoint);
    await writeFile(file, doc.toString());
    const ls = await azdb(['--config', file, 'db', 'ls', '--json'], { AZDB_STATE_DIR: join(work, 'state-created') });
    expect(ls.exitCode, ls.stderr).toBe(0);
    const listing = JSON.parse(ls.stdout) as Array<{ name: string; db_users: string[] }>;
    expect(listing.map((d) => d.name)).toEqual(['orders', 'shop-mysql', 'shop-postgres']);
    expect(listing.every((d) => d.db_users.join() === 'teleport')).toBe(true);
  });

  it('writes one entry for both engines without engine flags, to the config path', async () => {
    const file = join(work, 'default-path', 'azdb.yaml');
    const created = await azdb(['config', 'create'], { AZDB_CONFIG: file });
    expect(created.exitCode, created.stderr).toBe(0);
    const js = parseDocument(await readFile(file, 'utf8')).toJS() as { discovery: unknown[] };
    expect(js.discovery).toEqual([{ types: ['postgres', 'mysql'], regions: ['*'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' } }]);
  });

  it('refuses to overwrite without --force, and overwrites with it', async () => {
    const file = join(work, 'existing.yaml');
    await writeFile(file, 'keep me\n');
    const refused = await azdb(['config', 'create', '-o', file]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/already exists/);
    expect(refused.stderr).toMatch(/--force/);
    expect(await readFile(file, 'utf8')).toBe('keep me\n');
    const forced = await azdb(['config', 'create', '-o', file, '--force', '--azure-mysql-discovery', 'westeurope']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(await readFile(file, 'utf8')).toMatch(/types: \[mysql\]/);
  });

  it('rejects a --tag without KEY=VALUE as a usage error', async () => {
    const result = await azdb(['config', 'create', '-o', join(work, 'bad.yaml'), '--tag', 'novalue']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--tag expects KEY=VALUE/);
    expect(existsSync(join(work, 'bad.yaml'))).toBe(false);
  });
});
