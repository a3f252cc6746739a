/**
 * ARM discovery against the emulated ARM: `*` matchers find exactly the Ready servers with
 * Teleport's labels, a 403 subscription and a type that keeps answering 429 are reported with the
 * permission and a hint while the rest is listed, pages are followed, filters narrow, names clash.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TokenCache } from '../../src/azure/token-cache.js';
import { DiscoveryService, discover, type DiscoveryOptions, type DiscoveryResult } from '../../src/azure/discovery.js';
import { startArm } from '../../src/emulator/arm.js';
import type { AzdbConfig, DiscoveryMatcher } from '../../src/config/schema.js';
import {
  SUB_DENIED,
  SUB_DEV,
  SUB_DISABLED,
  SUB_PROD,
  THROTTLED_TYPE,
  server,
  startArmWorld,
  type ArmWorld,
} from '../helpers/arm-world.js';

let world: ArmWorld;
let all: DiscoveryResult;

const SOURCE = { file: 'azdb.yaml', line: 3, column: 3 };

function matcher(overrides: Partial<DiscoveryMatcher> = {}): DiscoveryMatcher {
  return { types: ['postgres', 'mysql'], regions: ['*'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' }, source: SOURCE, ...overrides };
}

function options(matchers: DiscoveryMatcher[], extra: Partial<DiscoveryOptions> = {}, endpoint = world.arm.endpoint): DiscoveryOptions {
  const config: Pick<AzdbConfig, 'azure' | 'discovery' | 'file'> = {
    azure: { cloud: 'AzureCloud', resource_manager_endpoint: endpoint },
    discovery: matchers,
    file: 'azdb.yaml',
  };
  return { config, tokens: new TokenCache({ credential: world.credential }), ca: world.ca.caPem, maxRetries: 1, ...extra };
}

const names = (result: DiscoveryResult) => result.databases.map((db) => db.name);

beforeAll(async () => {
  world = await startArmWorld();
  all = await discover(options([matcher()]));
});

afterAll(async () => {
  await world?.stop();
});

describe('discover with * matchers', () => {
  it('finds exactly the Ready servers it may list, sorted, engine-suffixed on a name clash', () => {
    // Not: paused (Stopped), oldshop (its type keeps throttling), secret (403), gone (disabled subscription).
    expect(names(all)).toEqual(['devmysql', 'devpg', 'legacy', 'orders', 'shop-mysql', 'shop-postgres']);
    expect(all.skipped.map((s) => s.state)).toEqual(['Stopped']);
  });

  it('labels every database with its tags and the Azure labels (region normalized, built-ins over tags)', () => {
    const byName = Object.fromEntries(all.databases.map((db) => [db.name, db]));
    expect(byName['orders']!.labels).toEqual({
      env: 'prod',
      team: 'shop',
      engine: 'Microsoft.DBforPostgreSQL/flexibleServers',
      'engine-version': '16',
      region: 'eastus',
      'resource-group': 'rg-shop',
      'subscription-id': SUB_PROD,
    });
    expect(byName['devpg']!.labels).toMatchObject({ engine: 'Microsoft.DBforPostgreSQL/flexibleServers', region: 'westeurope', 'subscription-id': SUB_DEV });
    expect(byName['shop-mysql']!.labels).toMatchObject({ engine: 'Microsoft.DBforMySQL/flexibleServers', 'engine-version': '8.0.21', 'replication-role': 'Source' });
    expect(byName['devmysql']!.labels['replication-role']).toBe('Replica');
    expect(byName['shop-postgres']!.labels).not.toHaveProperty('replication-role');
    expect(byName['legacy']!.labels).toMatchObject({ engine: 'Microsoft.DBforPostgreSQL/servers', 'engine-version': '11', 'resource-group': 'rg-legacy' });
  });

  it('builds the connection: FQDN:5432 / FQDN:3306, protocol, server kind and name, verify-full with system CAs', () => {
    const byName = Object.fromEntries(all.databases.map((db) => [db.name, db]));
    expect(byName['legacy']).toMatchObject({
      protocol: 'postgres',
      uri: 'legacy.postgres.database.azure.com:5432',
      host: 'legacy.postgres.database.azure.com',
      port: 5432,
      azure: { server_kind: 'single', server_name: 'legacy' },
      tls: { mode: 'verify-full' },
    });
    expect(byName['legacy']!.tls).not.toHaveProperty('ca_file');
    expect(byName['shop-mysql']).toMatchObject({
      protocol: 'mysql',
      uri: 'shop.mysql.database.azure.com:3306',
      port: 3306,
      azure: { server_kind: 'flexible', server_name: 'shop' },
    });
  });

  it('reports the 403 subscription per type with the missing permission, and the throttled type per subscription', () => {
    const denied = all.errors.filter((e) => e.status === 403);
    expect(denied.map((e) => e.type).sort()).toEqual([
      'Microsoft.DBforMySQL/flexibleServers',
      'Microsoft.DBforPostgreSQL/flexibleServers',
      'Microsoft.DBforPostgreSQL/servers',
    ]);
    for (const e of denied) {
      expect(e.subscriptionId).toBe(SUB_DENIED);
      expect(e.code).toBe('AuthorizationFailed');
      expect(e.permission).toBe(`${e.type}/read`);
      expect(e.hint).toContain(`"${e.type}/read"`);
      expect(e.scope).toContain(SUB_DENIED);
    }
    const throttled = all.errors.filter((e) => e.status === 429);
    expect(throttled.map((e) => e.subscriptionId).sort()).toEqual([SUB_PROD, SUB_DEV, SUB_DENIED].sort());
    for (const e of throttled) {
      expect(e.type).toBe(THROTTLED_TYPE);
      expect(e.code).toBe('SubscriptionRequestsThrottled');
      expect(e.reason).toMatch(/throttled by ARM after 1 retries \(Retry-After 1 s\)/);
    }
    expect(all.errors).toHaveLength(6);
    expect(all.errors.some((e) => e.subscriptionId === SUB_DISABLED)).toBe(false);
  });

  it('never puts a token in a result', () => {
    expect(JSON.stringify(all)).not.toMatch(/eyJ[A-Za-z0-9_-]{4,}\./);
  });
});

describe('matchers', () => {
  it('filters regions in either form (East US = eastus)', async () => {
    expect(names(await discover(options([matcher({ regions: ['East US'] })])))).toEqual(['devmysql', 'orders', 'shop-mysql', 'shop-postgres']);
    expect(names(await discover(options([matcher({ regions: ['westeurope'], types: ['postgres'] })])))).toEqual(['devpg', 'legacy']);
  });

  it('lists one subscription and resource group without listing subscriptions', async () => {
    const result = await discover(options([matcher({ subscriptions: [SUB_PROD], resource_groups: ['RG-LEGACY'], types: ['postgres'] })]));
    expect(names(result)).toEqual(['legacy']);
    expect(result.errors).toEqual([]);
  });

  it('matches tags with globs and regexes; every tag key must match', async () => {
    expect(names(await discover(options([matcher({ tags: { env: 'pro*' }, types: ['postgres'] })])))).toEqual(['legacy', 'orders', 'shop']);
    expect(names(await discover(options([matcher({ tags: { env: '^(dev|prod)$', team: 'shop' }, types: ['postgres'] })])))).toEqual(['orders', 'shop']);
    expect(names(await discover(options([matcher({ tags: { owner: '*' } })])))).toEqual([]);
  });

  it('names a server after itself when only one engine has it in the result', async () => {
    const result = await discover(options([matcher({ types: ['mysql'] })]));
    expect(names(result)).toEqual(['devmysql', 'shop']);
  });

  it('unions several matchers without duplicates', async () => {
    const result = await discover(options([matcher({ types: ['postgres'], regions: ['eastus'] }), matcher({ types: ['postgres'], tags: { env: 'prod' } })]));
    expect(names(result)).toEqual(['legacy', 'orders', 'shop']);
  });

  it('reports a resource group that does not exist, with a hint', async () => {
    const result = await discover(options([matcher({ subscriptions: [SUB_PROD], resource_groups: ['rg-nope'], types: ['postgres'] })]));
    expect(result.databases).toEqual([]);
    expect(result.errors.map((e) => [e.status, e.code, e.resourceGroup])).toEqual([
      [404, 'ResourceGroupNotFound', 'rg-nope'],
      [404, 'ResourceGroupNotFound', 'rg-nope'],
    ]);
    expect(result.errors[0]!.hint).toMatch(/discovery\.resource_groups/);
  });

  it('reports a credential that cannot get an ARM token once, not per scope', async () => {
    const failing = new TokenCache({ credential: { getToken: async () => { throw new Error('ManagedIdentityCredential: no endpoint'); } } });
    const result = await discover(options([matcher()], { tokens: failing }));
    expect(result.databases).toEqual([]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ scope: 'credential' });
    expect(result.errors[0]!.hint).toMatch(/azdb creds/);
  });

  it('fails closed on a CA it does not trust (no token sent anywhere unverified)', async () => {
    const other = await startArmWorld({ servers: [] });
    try {
      const before = world.arm.requests;
      const result = await discover(options([matcher({ subscriptions: [SUB_PROD] })], { ca: other.ca.caPem }));
      expect(result.databases).toEqual([]);
      expect(result.errors.length).toBeGreaterThan(0);
      expect(result.errors[0]!.reason).toMatch(/certificate|self.signed|verify/i);
      expect(world.arm.requests).toBe(before);
    } finally {
      await other.stop();
    }
  });
});

describe('paging', () => {
  it('follows nextLink through every page', async () => {
    const many = Array.from({ length: 23 }, (_, i) => server(`pg${String(i).padStart(2, '0')}`, 'Microsoft.DBforPostgreSQL/flexibleServers'));
    const arm = await startArm({ issuer: world.issuer, ca: world.ca, subscriptions: [{ subscriptionId: SUB_PROD, displayName: 'p' }], servers: many, pageSize: 5 });
    try {
      const result = await discover(options([matcher({ types: ['postgres'] })], {}, arm.endpoint));
      expect(names(result)).toEqual(many.map((s) => s.name));
      expect(result.errors).toEqual([]);
      // 1 subscriptions page + 5 pages of flexible servers + 1 (empty) page of single servers.
      expect(arm.requests).toBe(7);
    } finally {
      await arm.close();
    }
  });
});

describe('throttling that stops', () => {
  it('retries after Retry-After and then lists the type', async () => {
    const arm = await startArm({
      issuer: world.issuer,
      ca: world.ca,
      subscriptions: [{ subscriptionId: SUB_PROD, displayName: 'p' }],
      servers: [server('oldshop', 'Microsoft.DBforMySQL/servers')],
    });
    arm.throttle('Microsoft.DBforMySQL/servers', 1, 1);
    try {
      const result = await discover(options([matcher({ types: ['mysql'], subscriptions: [SUB_PROD] })], { maxRetries: 2 }, arm.endpoint));
      expect(result.errors).toEqual([]);
      expect(names(result)).toEqual(['oldshop']);
    } finally {
      await arm.close();
    }
  });
});

describe('DiscoveryService', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'azdb-discovery-cache-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reuses a result within the TTL (memory and file), refreshes after it, and tells listeners of changes', async () => {
    let now = 1_000_000;
    let runs = 0;
    let version = 1;
    const fake = async (): Promise<DiscoveryResult> => {
      runs++;
      return { databases: all.databases.slice(0, version), errors: [], skipped: [], at: now, cached: false };
    };
    const base = { ...options([matcher()]), ttlMs: 60_000, cacheFile: join(dir, 'cache.json'), now: () => now, run: fake };
    const service = new DiscoveryService(base);
    const changes: number[] = [];
    const off = service.onChange((r) => changes.push(r.databases.length));
    expect((await service.get()).databases).toHaveLength(1);
    expect((await service.get()).cached).toBe(false);
    expect(runs).toBe(1);

    // Another process: the file answers.
    const second = new DiscoveryService(base);
    const fromFile = await second.get();
    expect(fromFile.cached).toBe(true);
    expect(fromFile.databases.map((d) => d.name)).toEqual([all.databases[0]!.name]);
    expect(runs).toBe(1);
    expect(await readFile(join(dir, 'cache.json'), 'utf8')).not.toMatch(/eyJ[A-Za-z0-9_-]{4,}\./);

    now += 61_000;
    version = 2;
    expect((await service.get()).databases).toHaveLength(2);
    expect(runs).toBe(2);
    await service.refresh();
    expect(changes).toEqual([1, 2]);
    off();
    version = 3;
    await service.refresh();
    expect(changes).toEqual([1, 2]);
    expect(service.list()).toHaveLength(3);
  });

  it('shares one listing between concurrent refreshes and keeps the last errors', async () => {
    const service = new DiscoveryService(options([matcher()]));
    const [a, b] = await Promise.all([service.refresh(), service.refresh()]);
    expect(a).toBe(b);
    expect(service.lastErrors).toHaveLength(6);
    expect(service.list().map((d) => d.name)).toEqual(names(all));
  });

  it('refreshes in the background until stopped', async () => {
    vi.useFakeTimers();
    try {
      let runs = 0;
      const service = new DiscoveryService({
        ...options([matcher()]),
        run: async () => {
          runs++;
          return { databases: all.databases.slice(0, runs), errors: [], skipped: [], at: Date.now(), cached: false };
        },
      });
      const changes: number[] = [];
      service.onChange((r) => changes.push(r.databases.length));
      service.start(1000);
      await vi.advanceTimersByTimeAsync(0);
      expect(runs).toBe(1);
      await vi.advanceTimersByTimeAsync(1000);
      expect(runs).toBe(2);
      expect(changes).toEqual([1, 2]);
      service.stop();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(runs).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
