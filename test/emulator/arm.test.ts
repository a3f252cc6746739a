import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, type LocalCa } from '../../src/emulator/ca.js';
import { createTokenIssuer, forgeTokenWithOtherKey, type TokenIssuer } from '../../src/emulator/entra.js';
import { startArm, type EmulatedArm, type EmulatedServer } from '../../src/emulator/arm.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const SUB_A = '11111111-2222-3333-4444-555555555555';
const SUB_B = '99999999-8888-7777-6666-555555555555';
const API = 'api-version=2022-12-01';
const IDENTITY = { objectId: '5d1e0f7a-3b2c-4d8e-9f10-a1b2c3d4e5f6', appId: '0b6c3a5e-7f1d-4c2a-9e8b-1d2c3b4a5f60' };
const PG_FLEX = '/providers/Microsoft.DBforPostgreSQL/flexibleServers';

const SERVERS: EmulatedServer[] = [
  server('orders', 'Microsoft.DBforPostgreSQL/flexibleServers', { location: 'East US', tags: { env: 'prod' } }),
  server('inventory', 'Microsoft.DBforPostgreSQL/flexibleServers', { resourceGroup: 'rg-two', state: 'Stopped' }),
  server('legacy', 'Microsoft.DBforPostgreSQL/servers', { version: '11' }),
  server('shop', 'Microsoft.DBforMySQL/flexibleServers', { version: '8.0.21', replicationRole: 'Replica' }),
  server('oldshop', 'Microsoft.DBforMySQL/servers', { version: '5.7' }),
  server('billing', 'Microsoft.DBforPostgreSQL/flexibleServers', { subscriptionId: SUB_B }),
];

function server(name: string, type: EmulatedServer['type'], overrides: Partial<EmulatedServer> = {}): EmulatedServer {
  const suffix = type.startsWith('Microsoft.DBforMySQL') ? 'mysql' : 'postgres';
  return {
    subscriptionId: SUB_A,
    resourceGroup: 'rg-one',
    name,
    type,
    location: 'eastus',
    tags: {},
    version: '16',
    state: 'Ready',
    fqdn: `${name}.${suffix}.database.azure.com`,
    ...overrides,
  };
}

let dir: string;
let ca: LocalCa;
let issuer: TokenIssuer;
let arm: EmulatedArm;
let token: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-arm-'));
  ca = await loadOrCreateCa(dir);
  issuer = await createTokenIssuer({ tenantId: TENANT });
  arm = await startArm({
    issuer,
    ca,
    subscriptions: [
      { subscriptionId: SUB_A, displayName: 'Production' },
      { subscriptionId: SUB_B, displayName: 'Billing', state: 'Enabled' },
    ],
    servers: SERVERS,
  });
  token = await armToken('https://management.azure.com/');
});

afterAll(async () => {
  await arm?.close();
  await rm(dir, { recursive: true, force: true });
});

function armToken(audience: string, extra: { notBefore?: Date } = {}): Promise<string> {
  return issuer.issue({ audience, ...IDENTITY, ttlSeconds: 3600, ...extra });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // JSON under test
}

/** GET with TLS verified against the local CA; `path` may be absolute (a nextLink). */
async function get(path: string, bearer: string | null = token, servername?: string): Promise<Reply> {
  const url = new URL(path, arm.endpoint);
  const request = https.request(url, {
    ca: ca.caPem,
    agent: false,
    headers: bearer === null ? {} : { Authorization: `Bearer ${bearer}` },
    ...(servername ? { servername } : {}),
  });
  request.end();
  const [response] = (await once(request, 'response')) as [import('node:http').IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
}

const names = (reply: Reply): string[] => (reply.body.value as Array<{ name: string }>).map((each) => each.name).sort();

describe('emulated ARM', () => {
  it('serves HTTPS on 127.0.0.1 with a certificate the local CA verifies', async () => {
    expect(arm.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await get(`/subscriptions?${API}`)).status).toBe(200);
  });

  it('lists subscriptions in the ARM shape', async () => {
    const reply = await get(`/subscriptions?${API}`);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.body.value).toHaveLength(2);
    expect(reply.body.value[0]).toMatchObject({
      id: `/subscriptions/${SUB_A}`,
      subscriptionId: SUB_A,
      displayName: 'Production',
      state: 'Enabled',
      tenantId: TENANT,
    });
    expect(reply.body.nextLink).toBeUndefined();
    expect((await get(`/subscriptions/${SUB_B}?${API}`)).body).toMatchObject({ displayName: 'Billing' });
  });

  it('lists PostgreSQL flexible servers of a subscription in the ARM shape', async () => {
    const reply = await get(`/subscriptions/${SUB_A}${PG_FLEX}?${API}`);
    expect(reply.status).toBe(200);
    expect(names(reply)).toEqual(['inventory', 'orders']);
    const orders = (reply.body.value as Array<{ name: string }>).find((each) => each.name === 'orders');
    expect(orders).toEqual({
      id: `/subscriptions/${SUB_A}/resourceGroups/rg-one/providers/Microsoft.DBforPostgreSQL/flexibleServers/orders`,
      name: 'orders',
      type: 'Microsoft.DBforPostgreSQL/flexibleServers',
      location: 'East US',
      tags: { env: 'prod' },
      sku: { name: expect.any(String), tier: 'GeneralPurpose' },
      properties: expect.objectContaining({
        fullyQualifiedDomainName: 'orders.postgres.database.azure.com',
        version: '16',
        state: 'Ready',
        administratorLogin: expect.any(String),
        authConfig: expect.objectContaining({ activeDirectoryAuth: 'Enabled', tenantId: TENANT }),
      }),
    });
    const inventory = (reply.body.value as Array<{ name: string; properties: { state: string } }>).find((each) => each.name === 'inventory');
    expect(inventory?.properties.state).toBe('Stopped');
  });

  it('reports single servers with userVisibleState and MySQL flexible servers with replicationRole', async () => {
    const single = await get(`/subscriptions/${SUB_A}/providers/Microsoft.DBforPostgreSQL/servers?${API}`);
    expect(names(single)).toEqual(['legacy']);
    expect(single.body.value[0].properties).toMatchObject({ userVisibleState: 'Ready', version: '11', sslEnforcement: 'Enabled' });
    expect(single.body.value[0].properties).not.toHaveProperty('state');
    expect(single.body.value[0].sku).toMatchObject({ tier: 'GeneralPurpose', family: 'Gen5', capacity: 2 });

    const mysqlFlexible = await get(`/subscriptions/${SUB_A}/providers/Microsoft.DBforMySQL/flexibleServers?${API}`);
    expect(mysqlFlexible.body.value[0]).toMatchObject({
      name: 'shop',
      type: 'Microsoft.DBforMySQL/flexibleServers',
      properties: { replicationRole: 'Replica', state: 'Ready', version: '8.0.21', fullyQualifiedDomainName: 'shop.mysql.database.azure.com' },
    });
    const mysqlSingle = await get(`/subscriptions/${SUB_A}/providers/Microsoft.DBforMySQL/servers?${API}`);
    expect(mysqlSingle.body.value[0]).toMatchObject({ name: 'oldshop', properties: { userVisibleState: 'Ready', version: '5.7' } });
  });

  it('lists by resource group, matching the path case-insensitively', async () => {
    const reply = await get(`/subscriptions/${SUB_A}/resourcegroups/RG-TWO/providers/microsoft.dbforpostgresql/flexibleservers?${API}`);
    expect(reply.status).toBe(200);
    expect(names(reply)).toEqual(['inventory']);
    const byName = await get(`/subscriptions/${SUB_A}/resourceGroups/rg-one${PG_FLEX}/orders?${API}`);
    expect(byName.body).toMatchObject({ name: 'orders', properties: { state: 'Ready' } });
  });

  it('answers 404 for an unknown subscription, resource group, server or resource type', async () => {
    const subscription = await get(`/subscriptions/00000000-0000-0000-0000-000000000000${PG_FLEX}?${API}`);
    expect(subscription.status).toBe(404);
    expect(subscription.body.error.code).toBe('SubscriptionNotFound');
    const group = await get(`/subscriptions/${SUB_A}/resourceGroups/nope${PG_FLEX}?${API}`);
    expect(group.body.error.code).toBe('ResourceGroupNotFound');
    const missing = await get(`/subscriptions/${SUB_A}/resourceGroups/rg-one${PG_FLEX}/nope?${API}`);
    expect(missing.body.error.code).toBe('ResourceNotFound');
    const type = await get(`/subscriptions/${SUB_A}/providers/Microsoft.Sql/servers?${API}`);
    expect(type.status).toBe(404);
    expect(type.body.error.code).toBe('InvalidResourceType');
  });

  it('requires api-version', async () => {
    const reply = await get(`/subscriptions/${SUB_A}${PG_FLEX}`);
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ error: { code: 'MissingApiVersionParameter', message: expect.stringContaining('api-version') } });
  });

  describe('authentication', () => {
    it('refuses a request without a token with 401 and WWW-Authenticate', async () => {
      const reply = await get(`/subscriptions?${API}`, null);
      expect(reply.status).toBe(401);
      expect(reply.body.error.code).toBe('AuthenticationFailed');
      expect(reply.headers['www-authenticate']).toMatch(/^Bearer authorization_uri="https:\/\/login\.windows\.net\/.*error="invalid_token"/);
    });

    it('refuses a token for another audience', async () => {
      const reply = await get(`/subscriptions?${API}`, await armToken('https://ossrdbms-aad.database.windows.net'));
      expect(reply.status).toBe(401);
      expect(reply.body.error.code).toBe('InvalidAuthenticationTokenAudience');
      expect(reply.body.error.message).toContain("'https://ossrdbms-aad.database.windows.net'");
      expect(reply.headers['www-authenticate']).toContain(`https://login.windows.net/${TENANT}`);
    });

    it('refuses a token signed by another key, and an expired one', async () => {
      const forged = await forgeTokenWithOtherKey(issuer, { audience: 'https://management.azure.com', ...IDENTITY, ttlSeconds: 3600 });
      const bad = await get(`/subscriptions?${API}`, forged);
      expect(bad.status).toBe(401);
      expect(bad.body.error).toEqual({ code: 'InvalidAuthenticationToken', message: expect.any(String) });

      const expired = await armToken('https://management.azure.com', { notBefore: new Date(Date.now() - 3 * 3_600_000) });
      const late = await get(`/subscriptions?${API}`, expired);
      expect(late.status).toBe(401);
      expect(late.body.error.code).toBe('ExpiredAuthenticationToken');
      expect(late.body.error.message).toMatch(/expiry UTC time '\d+\/\d+\/\d{4} \d+:\d\d:\d\d [AP]M' is earlier/);
    });

    it('accepts the management audience with and without a trailing slash', async () => {
      expect((await get(`/subscriptions?${API}`, await armToken('https://management.azure.com'))).status).toBe(200);
      expect((await get(`/subscriptions?${API}`, await armToken('https://management.azure.com/'))).status).toBe(200);
    });
  });

  it('answers 403 AuthorizationFailed naming the action and scope for a forbidden subscription', async () => {
    arm.forbidSubscription(SUB_A, ['Microsoft.DBforPostgreSQL/flexibleServers']);
    try {
      const reply = await get(`/subscriptions/${SUB_A}${PG_FLEX}?${API}`);
      expect(reply.status).toBe(403);
      expect(reply.body.error.code).toBe('AuthorizationFailed');
      expect(reply.body.error.message).toBe(
        `The client '${IDENTITY.appId}' with object id '${IDENTITY.objectId}' does not have authorization to perform action ` +
          `'Microsoft.DBforPostgreSQL/flexibleServers/read' over scope '/subscriptions/${SUB_A}' or the scope is invalid. ` +
          'If access was recently granted, please refresh your credentials.',
      );
      const inGroup = await get(`/subscriptions/${SUB_A}/resourceGroups/rg-one${PG_FLEX}?${API}`);
      expect(inGroup.body.error.message).toContain(`over scope '/subscriptions/${SUB_A}/resourceGroups/rg-one'`);
      // Other types in that subscription, and other subscriptions, still list.
      expect((await get(`/subscriptions/${SUB_A}/providers/Microsoft.DBforMySQL/flexibleServers?${API}`)).status).toBe(200);
      expect(names(await get(`/subscriptions/${SUB_B}${PG_FLEX}?${API}`))).toEqual(['billing']);
    } finally {
      arm.allowSubscription(SUB_A);
    }
    expect((await get(`/subscriptions/${SUB_A}${PG_FLEX}?${API}`)).status).toBe(200);
  });

  it('forbids every server type of a subscription by default', async () => {
    arm.forbidSubscription(SUB_B);
    try {
      expect((await get(`/subscriptions/${SUB_B}/providers/Microsoft.DBforMySQL/servers?${API}`)).status).toBe(403);
      expect((await get(`/subscriptions/${SUB_B}${PG_FLEX}?${API}`)).status).toBe(403);
    } finally {
      arm.allowSubscription(SUB_B);
    }
  });

  it('throttles a type for the given number of requests with 429 and Retry-After', async () => {
    arm.throttle('Microsoft.DBforMySQL/flexibleServers', 2, 7);
    const path = `/subscriptions/${SUB_A}/providers/Microsoft.DBforMySQL/flexibleServers?${API}`;
    for (let i = 0; i < 2; i++) {
      const reply = await get(path);
      expect(reply.status).toBe(429);
      expect(reply.headers['retry-after']).toBe('7');
      expect(reply.body.error.code).toBe('SubscriptionRequestsThrottled');
      expect(reply.body.error.message).toContain(`subscription '${SUB_A}'`);
      // Another type is not throttled meanwhile.
      expect((await get(`/subscriptions/${SUB_A}${PG_FLEX}?${API}`)).status).toBe(200);
    }
    expect((await get(path)).status).toBe(200);
  });

  it('throttles the subscription list', async () => {
    arm.throttle('subscriptions', 1);
    const reply = await get(`/subscriptions?${API}`);
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('1');
    expect((await get(`/subscriptions?${API}`)).status).toBe(200);
  });

  it('replaces the servers it lists', async () => {
    arm.setServers([...SERVERS, server('added', 'Microsoft.DBforPostgreSQL/flexibleServers')]);
    try {
      expect(names(await get(`/subscriptions/${SUB_A}${PG_FLEX}?${API}`))).toEqual(['added', 'inventory', 'orders']);
    } finally {
      arm.setServers(SERVERS);
    }
  });
});

describe('emulated ARM paging', () => {
  let paged: EmulatedArm;
  const many = Array.from({ length: 5 }, (_, i) => server(`pg${i}`, 'Microsoft.DBforPostgreSQL/flexibleServers'));

  beforeAll(async () => {
    paged = await startArm({
      issuer,
      ca,
      subscriptions: [1, 2, 3].map((i) => ({ subscriptionId: `${i}`.repeat(8) + SUB_A.slice(8), displayName: `sub ${i}` })),
      servers: many,
      pageSize: 2,
    });
  });

  afterAll(async () => {
    await paged?.close();
  });

  async function getFrom(arm: EmulatedArm, path: string): Promise<Reply> {
    return get(new URL(path, arm.endpoint).toString());
  }

  it('splits lists into pages linked by an absolute nextLink with $skipToken', async () => {
    const seen: string[] = [];
    let link: string | undefined = `${paged.endpoint}/subscriptions/${SUB_A}${PG_FLEX}?${API}`;
    let pages = 0;
    while (link) {
      const reply = await getFrom(paged, link);
      expect(reply.status).toBe(200);
      expect(reply.body.value.length).toBeLessThanOrEqual(2);
      seen.push(...(reply.body.value as Array<{ name: string }>).map((each) => each.name));
      link = reply.body.nextLink as string | undefined;
      if (link) {
        expect(link.startsWith(`${paged.endpoint}/subscriptions/${SUB_A}${PG_FLEX}?`)).toBe(true);
        expect(link).toContain('api-version=2022-12-01');
        expect(link).toContain('$skipToken=');
      }
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['pg0', 'pg1', 'pg2', 'pg3', 'pg4']);
  });

  it('pages the subscription list too', async () => {
    const first = await getFrom(paged, `/subscriptions?${API}`);
    expect(first.body.value).toHaveLength(2);
    const second = await getFrom(paged, first.body.nextLink as string);
    expect(second.body.value).toHaveLength(1);
    expect(second.body.nextLink).toBeUndefined();
  });

  it('refuses a forged $skipToken', async () => {
    const reply = await getFrom(paged, `/subscriptions/${SUB_A}${PG_FLEX}?${API}&$skipToken=garbage`);
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('InvalidSkipToken');
  });
});

describe('emulated ARM lifecycle', () => {
  it('closes promptly with a kept-alive connection open', async () => {
    const short = await startArm({ issuer, ca, subscriptions: [], servers: [] });
    const port = Number(new URL(short.endpoint).port);
    const agent = new https.Agent({ keepAlive: true, ca: ca.caPem });
    const request = https.request(`${short.endpoint}/subscriptions?${API}`, {
      agent,
      headers: { Authorization: `Bearer ${token}` },
    });
    request.end();
    const [response] = (await once(request, 'response')) as [import('node:http').IncomingMessage];
    response.resume();
    await once(response, 'end');
    expect(response.statusCode).toBe(200);
    await short.close();
    agent.destroy();
    const socket = connect(port, '127.0.0.1');
    await expect(once(socket, 'connect')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('verifies as localhost too', async () => {
    const reply = await get(`/subscriptions?${API}`, token, 'localhost');
    expect(reply.status).toBe(200);
  });
});
