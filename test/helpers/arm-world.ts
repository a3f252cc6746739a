/**
 * An emulated Azure estate for discovery tests: the local CA, an Entra issuer behind a managed
 * identity endpoint (so DefaultAzureCredential works unchanged in a child azdb), and ARM with
 * several subscriptions and resource groups, all four server types, a stopped server, display-name
 * regions, a name shared by a PostgreSQL and a MySQL server, a subscription that answers 403, a
 * disabled subscription, a server type that keeps answering 429, and small pages (nextLink).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokenCredential } from '@azure/identity';
import { loadOrCreateCa, type LocalCa } from '../../src/emulator/ca.js';
import { createTokenIssuer, type TokenIssuer } from '../../src/emulator/entra.js';
import { startIdentityEndpoint, type IdentityEndpoint } from '../../src/emulator/identity-endpoint.js';
import { startArm, type EmulatedArm, type EmulatedServer } from '../../src/emulator/arm.js';

export const TENANT = '0f0e0d0c-0b0a-4909-8807-060504030201';
export const SUB_PROD = '11111111-2222-3333-4444-555555555555';
export const SUB_DEV = '22222222-3333-4444-5555-666666666666';
export const SUB_DENIED = '33333333-4444-5555-6666-777777777777';
export const SUB_DISABLED = '44444444-5555-6666-7777-888888888888';
export const IDENTITY = { clientId: '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60', objectId: '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6' };
export const THROTTLED_TYPE = 'Microsoft.DBforMySQL/servers' as const;

export function server(name: string, type: EmulatedServer['type'], overrides: Partial<EmulatedServer> = {}): EmulatedServer {
  const suffix = type.startsWith('Microsoft.DBforMySQL') ? 'mysql' : 'postgres';
  return {
    subscriptionId: SUB_PROD,
    resourceGroup: 'rg-shop',
    name,
    type,
    location: 'eastus',
    tags: {},
    version: type.startsWith('Microsoft.DBforMySQL') ? '8.0.21' : '16',
    state: 'Ready',
    fqdn: `${name}.${suffix}.database.azure.com`,
    ...overrides,
  };
}

export const SERVERS: EmulatedServer[] = [
  server('orders', 'Microsoft.DBforPostgreSQL/flexibleServers', { location: 'East US', tags: { env: 'prod', team: 'shop' } }),
  server('shop', 'Microsoft.DBforPostgreSQL/flexibleServers', { tags: { env: 'prod', team: 'shop' } }),
  server('shop', 'Microsoft.DBforMySQL/flexibleServers', { tags: { env: 'prod', team: 'shop' }, replicationRole: 'Source' }),
  server('paused', 'Microsoft.DBforPostgreSQL/flexibleServers', { state: 'Stopped', tags: { env: 'prod' } }),
  server('legacy', 'Microsoft.DBforPostgreSQL/servers', { resourceGroup: 'rg-legacy', location: 'westeurope', version: '11', tags: { env: 'prod', team: 'finance' } }),
  server('oldshop', THROTTLED_TYPE, { resourceGroup: 'rg-legacy', location: 'westeurope', version: '5.7' }),
  server('devpg', 'Microsoft.DBforPostgreSQL/flexibleServers', { subscriptionId: SUB_DEV, resourceGroup: 'rg-dev', location: 'West Europe', tags: { env: 'dev', engine: 'from-a-tag' } }),
  server('devmysql', 'Microsoft.DBforMySQL/flexibleServers', { subscriptionId: SUB_DEV, resourceGroup: 'rg-dev', tags: { env: 'dev' }, replicationRole: 'Replica' }),
  server('secret', 'Microsoft.DBforPostgreSQL/flexibleServers', { subscriptionId: SUB_DENIED, resourceGroup: 'rg-secret' }),
  server('gone', 'Microsoft.DBforPostgreSQL/flexibleServers', { subscriptionId: SUB_DISABLED, resourceGroup: 'rg-old' }),
];

export interface ArmWorld {
  dir: string;
  ca: LocalCa;
  caFile: string;
  issuer: TokenIssuer;
  identity: IdentityEndpoint;
  arm: EmulatedArm;
  /** A credential for in-process tests (tokens straight from the issuer). */
  credential: TokenCredential;
  /** Environment for a child azdb: managed identity endpoint and the CA for ARM's TLS. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startArmWorld(options: { servers?: EmulatedServer[]; pageSize?: number; throttle?: boolean } = {}): Promise<ArmWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'azdb-arm-world-'));
  const ca = await loadOrCreateCa(join(dir, 'ca'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.caPem);
  const issuer = await createTokenIssuer({ tenantId: TENANT });
  const identity = await startIdentityEndpoint({ issuer, identities: [{ ...IDENTITY, default: true }] });
  const arm = await startArm({
    issuer,
    ca,
    subscriptions: [
      { subscriptionId: SUB_PROD, displayName: 'Production' },
      { subscriptionId: SUB_DEV, displayName: 'Development' },
      { subscriptionId: SUB_DENIED, displayName: 'Restricted' },
      { subscriptionId: SUB_DISABLED, displayName: 'Old', state: 'Disabled' },
    ],
    servers: options.servers ?? SERVERS,
    pageSize: options.pageSize ?? 2,
  });
  arm.forbidSubscription(SUB_DENIED);
  if (options.throttle !== false) arm.throttle(THROTTLED_TYPE, Infinity, 1);
  const credential: TokenCredential = {
    async getToken(scopes) {
      const scope = Array.isArray(scopes) ? scopes[0]! : (scopes as string);
      const token = await issuer.issue({ audience: scope.replace(/\/\.default$/, ''), objectId: IDENTITY.objectId, appId: IDENTITY.clientId, ttlSeconds: 3600 });
      return { token, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  };
  return {
    dir,
    ca,
    caFile,
    issuer,
    identity,
    arm,
    credential,
    env: () => ({ ...identity.env(), NODE_EXTRA_CA_CERTS: caFile }),
    async stop() {
      await arm.close();
      await identity.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
