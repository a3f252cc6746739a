/**
 * Discovery against the emulated Azure that `azdb demo` and the tests start: its ARM lists the
 * demo's servers in the shapes discovery reads, and a discovered database connects through the
 * broker once its FQDN leads to the server (here the front's loopback address stands in for DNS,
 * as nothing but 127.0.0.1 may be reached).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { TokenCache } from '../../src/azure/token-cache.js';
import { discover, type DiscoveryResult } from '../../src/azure/discovery.js';
import { CLOUDS } from '../../src/azure/clouds.js';
import { resolveTarget } from '../../src/broker/resolve-target.js';
import { openTunnel } from '../../src/broker/tunnel.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import { DEMO_IDENTITY, DEMO_RESOURCE_GROUP, DEMO_SUBSCRIPTION_ID } from '../../src/emulator/demo-identity.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { startTestAzure } from '../harness/emulator.js';

let azure: EmulatedAzure & { dir: string };
let result: DiscoveryResult;

beforeAll(async () => {
  azure = await startTestAzure();
  const tokens = new TokenCache({
    credential: {
      async getToken(scopes) {
        const scope = Array.isArray(scopes) ? scopes[0]! : (scopes as string);
        return { token: await azure.issueToken({ audience: scope.replace(/\/\.default$/, '') }), expiresOnTimestamp: Date.now() + 3600_000 };
      },
    },
  });
  result = await discover({
    config: {
      azure: { cloud: 'AzureCloud', resource_manager_endpoint: azure.armEndpoint },
      discovery: [{ types: ['postgres', 'mysql'], regions: ['*'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' }, source: { file: 'x', line: 1, column: 1 } }],
      file: 'x',
    },
    tokens,
    ca: azure.caPem,
  });
});

afterAll(async () => {
  await azure?.stop();
});

describe('discovery against the demo ARM', () => {
  it('finds every demo server with its address, kind and labels', () => {
    expect(result.errors).toEqual([]);
    expect(result.databases.map((db) => db.name)).toEqual(azure.servers.map((s) => s.name).sort());
    for (const s of azure.servers) {
      const db = result.databases.find((d) => d.name === s.name)!;
      expect(db).toMatchObject({
        protocol: s.protocol,
        uri: `${s.fqdn}:${s.protocol === 'postgres' ? 5432 : 3306}`,
        azure: { server_kind: s.kind, server_name: s.name },
        labels: { 'subscription-id': DEMO_SUBSCRIPTION_ID, 'resource-group': DEMO_RESOURCE_GROUP },
      });
    }
    // The demo lists "inventory" in the display form "East US".
    expect(result.databases.find((d) => d.name === 'inventory')!.labels).toMatchObject({ region: 'eastus', env: 'staging' });
  });

  it('connects to a discovered single server through the broker as user@server', async () => {
    const legacy = result.databases.find((d) => d.name === 'legacy')!;
    const front = azure.servers.find((s) => s.name === 'legacy')!;
    const target = await resolveTarget(legacy);
    expect(target).toMatchObject({ host: front.fqdn, port: 5432, serverKind: 'single', serverName: 'legacy', tls: { mode: 'verify-full', serverName: front.fqdn } });
    // What DNS and the system CA store would give on Azure: the server's address and its CA.
    const tunnel = await openTunnel({
      target: { ...target, host: front.host, port: front.port, tls: { ...target.tls, ca: azure.caPem } },
      host: '127.0.0.1',
      port: 0,
      dbUser: DEMO_IDENTITY.role,
      dbName: 'postgres',
      authorize: () => ({ allowed: true }),
      getToken: () => azure.issueToken({ audience: CLOUDS.AzureCloud.databaseResource }),
      audit: NO_AUDIT,
    });
    try {
      const client = new pg.Client({ host: tunnel.host, port: tunnel.port, user: tunnel.user, database: tunnel.database, password: tunnel.password });
      await client.connect();
      const row = (await client.query('select current_user as u')).rows[0] as { u: string };
      await client.end();
      expect(row.u).toBe(DEMO_IDENTITY.role);
    } finally {
      await tunnel.close(1000);
    }
  });
});
