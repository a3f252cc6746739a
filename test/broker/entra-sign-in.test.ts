/**
 * A shared broker where people sign in with their own Entra tokens (`client_auth: entra`), end to
 * end with real parts: the emulated Entra ID publishing its keys over verified TLS, broker tunnels
 * as `azdb serve` opens them for such listeners, the emulated Azure Database fronts over the run's
 * real PostgreSQL (and MariaDB when installed), and pg, psql and mysql2 as the clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { createSecureContext } from 'node:tls';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { findTool } from '../harness/tools.js';
import { BrokerFixture, JWT } from '../helpers/broker-fixtures.js';
import { waitFor } from '../helpers/wait.js';
import { loadOrCreateCa } from '../../src/emulator/ca.js';
import { createAadUser } from '../../src/emulator/mysql-aad-users.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { CLOUDS } from '../../src/azure/clouds.js';
import { decodeTokenClaims } from '../../src/azure/token-claims.js';
import { createClientTokenValidator } from '../../src/azure/client-token.js';
import { checkAccess, type Role } from '../../src/access/index.js';
import { createMemoryAuditSink, type AuditEvent } from '../../src/broker/audit.js';
import type { EntraClientAuth } from '../../src/broker/client-entra.js';
import type { SessionEvent } from '../../src/broker/session-record.js';
import type { Tunnel, TunnelOptions } from '../../src/broker/tunnel.js';

const psql = await findTool('psql');
const mariadbd = await findTool('mariadbd');
const DB = CLOUDS.AzureCloud.databaseResource;
const broker = new BrokerFixture();
const run = randomUUID().slice(0, 8);
const ALICE = { upn: `alice-${run}@contoso.com`, objectId: randomUUID() };
const BOB = { upn: `bob-${run}@contoso.com`, objectId: randomUUID() };
const DBA_GROUP = { name: `dba-${run}`, objectId: randomUUID() };

const ROLES: Role[] = [
  // Alice may be herself anywhere; the DBA group may use the group's login; the demo identity's login is for anyone signed in.
  { metadata: { name: 'self' }, spec: { allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: ['{{external.upn}}'], subjects: { users: [ALICE.upn] } }, deny: {} } },
  { metadata: { name: 'dba' }, spec: { allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: [DBA_GROUP.name], subjects: { groups: [DBA_GROUP.objectId] } }, deny: {} } },
  { metadata: { name: 'everyone' }, spec: { allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: [DEMO_IDENTITY.role] }, deny: {} } },
];

let clockOffsetMs = 0;
let keyRequests = 0;

/** GETs from the emulated Entra ID over TLS verified against the emulator's CA. */
async function fetchJson(url: string): Promise<unknown> {
  if (url.includes('/discovery/')) keyRequests++;
  const request = httpsRequest(url, { ca: broker.azure.caPem });
  request.end();
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

let validate: EntraClientAuth['validate'];

function entra(overrides: Partial<EntraClientAuth> = {}): EntraClientAuth {
  return { validate, upstreamIdentity: 'broker', disconnectExpired: false, ...overrides };
}

const events: SessionEvent[] = [];

async function entraTunnel(name: string, dbName: string, options: Partial<TunnelOptions> & { entra: EntraClientAuth }): Promise<Tunnel> {
  const target = broker.target(name);
  return broker.tunnel({
    target,
    dbName,
    dbUser: '',
    authorize: (dbUser, db, person) => {
      const decision = checkAccess(ROLES, { name: target.name, labels: {}, protocol: target.protocol }, { dbUser, dbName: db, ...(person ? { person } : {}) });
      return decision.allowed ? { allowed: true, role: decision.role, ...(decision.groups ? { groups: decision.groups } : {}) } : decision;
    },
    onEvent: (event) => events.push(event),
    ...options,
  });
}

function pgClient(t: Tunnel, user: string, password: string): pg.Client {
  const client = new pg.Client({ host: t.host, port: t.port, user, database: 'orders', password });
  client.on('error', () => {});
  return client;
}

async function pgLogin(t: Tunnel, user: string, token: string): Promise<pg.Client> {
  const client = pgClient(t, user, token);
  await client.connect();
  return client;
}

async function pgRefusal(t: Tunnel, user: string, token: string): Promise<Error & { code?: string; hint?: string }> {
  const client = pgClient(t, user, token);
  const error = await client.connect().then(
    () => undefined,
    (e: Error) => e,
  );
  await client.end().catch(() => {});
  if (!error) throw new Error('login unexpectedly succeeded');
  return error;
}

/** A pool whose every connection stays open for the tests that count logins. */
const EXPIRY_POOL = { maxServerConnections: 3, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 20_000 };

/** When a token expires (ms since the epoch), from its exp claim. */
/** Server logins the tunnel's pool has made so far. */
function poolLogins(t: Tunnel): number {
  return t.pool!.stats().reduce((sum, key) => sum + key.logins, 0);
}

/** Clients the tunnel's pool has pinned to their connection. */
function pinnedClients(t: Tunnel): number {
  return t.pool!.stats().reduce((sum, key) => sum + key.clientsPinned, 0);
}

/** A client and the error that ended it, once one has. */
function endings<C extends { once(event: 'error', listener: (error: Error & { code?: unknown }) => void): unknown }>(client: C): { client: C; error?: Error & { code?: unknown } } {
  const watched: { client: C; error?: Error & { code?: unknown } } = { client };
  client.once('error', (error) => (watched.error = error));
  return watched;
}

/** The audit's session.start lines. */
function startsOf(audit: ReturnType<typeof createMemoryAuditSink>): Array<Extract<AuditEvent, { event: 'session.start' }>> {
  return audit.events.filter((e): e is Extract<AuditEvent, { event: 'session.start' }> => e.event === 'session.start');
}

/** Everyone's sessions on one key of the pool: the broker's identity, not a person's. */
function expectOneBrokerKey(t: Tunnel): void {
  const keys = t.pool!.stats();
  expect(keys).toHaveLength(1);
  expect(keys[0]!.info.dbUser).toBe(DEMO_IDENTITY.role);
  expect(keys[0]!.info.identity).not.toContain(ALICE.objectId);
  expect(keys[0]!.info.identity).not.toContain(BOB.objectId);
  expect(keys[0]!.logins).toBe(2);
}

beforeAll(async () => {
  await broker.start();
  validate = createClientTokenValidator({
    authorityHost: broker.azure.entraAuthority.directUrl,
    audience: DB,
    allowedTenants: [broker.azure.tenantId],
    fetchJson,
    now: () => Date.now() + clockOffsetMs,
    refreshCooldownMs: 30_000,
  });
  // The people's database users, as the server's Entra admin makes them on Azure.
  const pgAdmin = broker.azure.realPostgres;
  await pgAdmin.query('SELECT pgaadauth_create_principal_with_oid($1, $2, $3, false, false)', [ALICE.upn, ALICE.objectId, 'user']);
  await pgAdmin.query('SELECT pgaadauth_create_principal_with_oid($1, $2, $3, false, false)', [DBA_GROUP.name, DBA_GROUP.objectId, 'group']);
  for (const role of [ALICE.upn, DBA_GROUP.name]) await pgAdmin.query(`GRANT CONNECT ON DATABASE orders TO "${role}"`);
  const maria = broker.azure.realMariaDb;
  if (maria) {
    await createAadUser(maria, { user: ALICE.upn, type: 'user' });
    await createAadUser(maria, { user: DBA_GROUP.name, identifiedBy: DBA_GROUP.objectId, type: 'group' });
  }
});

afterAll(async () => {
  const pgAdmin = broker.azure?.realPostgres;
  for (const role of [ALICE.upn, DBA_GROUP.name]) {
    await pgAdmin?.query(`REVOKE CONNECT ON DATABASE orders FROM "${role}"`).catch(() => {});
    await pgAdmin?.query(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
    await pgAdmin?.query('DELETE FROM pgaadauth.principals WHERE rolname = $1', [role]).catch(() => {});
  }
  await broker.stop();
});

describe('PostgreSQL: people sign in with their Entra token', () => {
  it('lets Alice in with a valid token; the broker logs in as itself and the audit names her', async () => {
    const audit = createMemoryAuditSink({ queries: false });
    const t = await entraTunnel('orders', 'orders', { entra: entra(), audit });
    const token = await broker.azure.issueUserToken(ALICE);
    const client = await pgLogin(t, DEMO_IDENTITY.role, token);
    const { rows } = await client.query<{ user: string }>('select current_user as user');
    expect(rows[0]!.user).toBe(DEMO_IDENTITY.role);
    await client.end();
    const start = audit.events.find((e): e is Extract<AuditEvent, { event: 'session.start' }> => e.event === 'session.start');
    expect(start).toMatchObject({ oid: ALICE.objectId, upn: ALICE.upn, tid: broker.azure.tenantId, client_auth: 'entra', role: 'everyone', db_user: DEMO_IDENTITY.role });
    // The client runs here, on loopback: the kernel says which OS user it is (Linux).
    if (process.platform === 'linux') expect(start?.os_user).toBe(userInfo().username);
    expect(JSON.stringify(audit.events)).not.toMatch(JWT);
  });

  it('forwards her own token with upstream_identity: client, so the database sees her — a token with 200 groups too', async () => {
    const t = await entraTunnel('orders', 'orders', { entra: entra({ upstreamIdentity: 'client' }) });
    // Entra puts up to 200 groups in a token before it switches to an overage claim: about 8 KiB.
    const token = await broker.azure.issueUserToken({ ...ALICE, groups: Array.from({ length: 200 }, () => randomUUID()) });
    expect(token.length).toBeGreaterThan(4096);
    const client = await pgLogin(t, ALICE.upn, token);
    const { rows } = await client.query<{ user: string }>('select current_user as user');
    expect(rows[0]!.user).toBe(ALICE.upn);
    await client.end();
  });

  it('lets a DBA-group member in as the group, seen by the database as the group; a non-member is refused by the roles', async () => {
    const audit = createMemoryAuditSink({ queries: false });
    const t = await entraTunnel('orders', 'orders', { entra: entra({ upstreamIdentity: 'client' }), audit });
    const client = await pgLogin(t, DBA_GROUP.name, await broker.azure.issueUserToken({ ...BOB, groups: [DBA_GROUP.objectId] }));
    const { rows } = await client.query<{ user: string }>('select current_user as user');
    expect(rows[0]!.user).toBe(DBA_GROUP.name);
    await client.end();
    expect(audit.events.find((e) => e.event === 'session.start')).toMatchObject({ upn: BOB.upn, role: 'dba', groups: [DBA_GROUP.objectId] });

    const refused = await pgRefusal(t, DBA_GROUP.name, await broker.azure.issueUserToken(BOB));
    expect(refused.code).toBe('28000');
    expect(refused.message).toContain('denied by your azdb roles');
    expect(refused.message).toContain(BOB.upn);
  });

  it('refuses another tenant, another audience, an expired token, a bad signature and garbage with 28P01 and the reason, never the token; counts them', async () => {
    const t = await entraTunnel('orders', 'orders', { entra: entra() });
    const valid = await broker.azure.issueUserToken(ALICE);
    const [header, payload, signature] = valid.split('.');
    const flipped = `${signature!.slice(0, 10)}${signature![10] === 'A' ? 'B' : 'A'}${signature!.slice(11)}`;
    const cases: Array<[string, string]> = [
      ['tenant', await broker.azure.issueUserToken({ ...ALICE, tenant: 'other' })],
      ['audience', await broker.azure.issueUserToken({ ...ALICE, audience: 'https://management.azure.com' })],
      ['expired', await broker.azure.issueUserToken({ ...ALICE, ttlSeconds: 600, notBefore: new Date(Date.now() - 3_600_000) })],
      ['signature', `${header}.${payload}.${flipped}`],
      ['malformed', 'my-old-password'],
    ];
    events.length = 0;
    for (const [reason, token] of cases) {
      const error = await pgRefusal(t, DEMO_IDENTITY.role, token);
      expect(error.code, reason).toBe('28P01');
      expect(error.message).toContain(`(${reason})`);
      expect(`${error.message} ${error.hint}`).not.toMatch(JWT);
      expect(`${error.message} ${error.hint}`).not.toContain(token.slice(-20));
    }
    expect(events.filter((e) => e.type === 'client-auth-refused').map((e) => (e as { reason: string }).reason)).toEqual(cases.map(([reason]) => reason));
    expect(events.filter((e) => e.type === 'login-failed')).toHaveLength(cases.length);
  });

  it('says keys-unavailable when Entra cannot be reached, without counting it against the client', async () => {
    const unreachable = createClientTokenValidator({ authorityHost: 'https://127.0.0.1:1', audience: DB, allowedTenants: [broker.azure.tenantId], fetchJson: () => Promise.reject(new Error('ECONNREFUSED')) });
    const t = await entraTunnel('orders', 'orders', { entra: entra({ validate: unreachable }) });
    events.length = 0;
    const error = await pgRefusal(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE));
    expect(error.code).toBe('28P01');
    expect(error.message).toContain('(keys-unavailable)');
    expect(events.map((e) => e.type)).toContain('client-auth-refused');
    expect(events.map((e) => e.type)).not.toContain('login-failed');
  });

  it('takes a token signed with a rotated key once the cooldown allows a refetch of the keys', async () => {
    const t = await entraTunnel('orders', 'orders', { entra: entra() });
    await (await pgLogin(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE))).end();
    const before = keyRequests;
    await broker.azure.rotateKeys();
    const rotated = await broker.azure.issueUserToken(ALICE);
    // Right after the last fetch the unknown kid is refused without asking Entra again...
    expect((await pgRefusal(t, DEMO_IDENTITY.role, rotated)).message).toContain('(signature)');
    expect(keyRequests).toBe(before);
    // ...and past the cooldown the keys are fetched again and the token is taken.
    clockOffsetMs += 31_000;
    try {
      const client = await pgLogin(t, DEMO_IDENTITY.role, rotated);
      await client.end();
      expect(keyRequests).toBe(before + 1);
    } finally {
      clockOffsetMs -= 31_000;
    }
  });

  it('ends a leaver’s session at the first idle moment after the token expired, never inside a transaction (disconnect_expired)', async () => {
    const cut = await entraTunnel('orders', 'orders', { entra: entra({ disconnectExpired: true }) });
    const kept = await entraTunnel('orders', 'orders', { entra: entra({ disconnectExpired: false }) });
    const token = await broker.azure.issueUserToken({ ...ALICE, ttlSeconds: 4 });
    const expiresAt = decodeTokenClaims(token)!.expiresOn!;
    const leaver = await pgLogin(cut, DEMO_IDENTITY.role, token);
    const control = await pgLogin(kept, DEMO_IDENTITY.role, token);
    const ended = new Promise<Error & { code?: string }>((resolve) => leaver.once('error', resolve));
    await leaver.query('begin');
    await leaver.query('create temp table t (x int)');
    await waitFor(() => Date.now() > expiresAt + 200, 'the token to expire', 15_000);
    // Inside the transaction the session goes on after expiry...
    await leaver.query('insert into t values (1)');
    // ...and the commit completes, then the session ends.
    await leaver.query('commit');
    const error = await ended;
    expect(error.message).toContain('has expired');
    expect((error as { code?: string }).code).toBe('57P01');
    await expect(leaver.query('select 1')).rejects.toThrow();
    await waitFor(() => events.some((e) => e.type === 'expired-disconnect'), 'the expired-disconnect event');
    // Without disconnect_expired the same token's session carries on.
    const { rows } = await control.query<{ one: number }>('select 1 as one');
    expect(rows[0]!.one).toBe(1);
    await control.end();
  });

  it('keys pooled server connections by the person when their token goes upstream', async () => {
    const t = await entraTunnel('orders', 'orders', {
      entra: entra({ upstreamIdentity: 'client' }),
      pool: { maxServerConnections: 4, minIdle: 0, idleTimeoutMs: 60_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 10_000 },
    });
    const alice = await pgLogin(t, ALICE.upn, await broker.azure.issueUserToken(ALICE));
    const bob = await pgLogin(t, DBA_GROUP.name, await broker.azure.issueUserToken({ ...BOB, groups: [DBA_GROUP.objectId] }));
    const keys = t.pool!.stats().map((s) => [s.info.dbUser, s.info.identity]);
    expect(keys).toEqual(
      expect.arrayContaining([
        [ALICE.upn, `oid:${ALICE.objectId}@${broker.azure.tenantId}`],
        [DBA_GROUP.name, `oid:${BOB.objectId}@${broker.azure.tenantId}`],
      ]),
    );
    expect(keys).toHaveLength(2);
    const { rows } = await bob.query<{ user: string }>('select current_user as user');
    expect(rows[0]!.user).toBe(DBA_GROUP.name);
    await alice.end();
    await bob.end();
  });

  it.each(['session', 'transaction'] as const)(
    'pooled (%s mode): cuts expired sessions after the commit (pinned too), never inside the transaction, and one idle at expiry; the next clients reuse their server connections',
    async (mode) => {
      const t = await entraTunnel('orders', 'orders', { entra: entra({ disconnectExpired: true }), pool: { ...EXPIRY_POOL, mode } });
      const token = await broker.azure.issueUserToken({ ...ALICE, ttlSeconds: 4 });
      const cutsBefore = events.filter((e) => e.type === 'expired-disconnect').length;
      const busy = endings(await pgLogin(t, DEMO_IDENTITY.role, token));
      const idle = endings(await pgLogin(t, DEMO_IDENTITY.role, token));
      // A temporary table pins its client to its connection in transaction mode: cut where it would have been released.
      const pinned = endings(await pgLogin(t, DEMO_IDENTITY.role, token));
      await busy.client.query('begin');
      await idle.client.query('select 1');
      await pinned.client.query('begin');
      await pinned.client.query('create temp table kept (x int)');
      expect(pinnedClients(t)).toBe(mode === 'transaction' ? 1 : 0);
      const { rows: before } = await busy.client.query<{ pid: number }>('select pg_backend_pid() as pid');
      // The one at rest is cut by the clock once the token expired: holding no connection (transaction mode) or an idle one.
      const idleError = await waitFor(() => idle.error, 'the idle session to be cut at expiry', 20_000);
      expect(idleError).toMatchObject({ code: '57P01' });
      expect(idleError.message).toContain('has expired');
      // Inside the transaction the session goes on after expiry, on the same server connection...
      const { rows: after } = await busy.client.query<{ pid: number }>('select pg_backend_pid() as pid');
      expect(after[0]!.pid).toBe(before[0]!.pid);
      expect(busy.error).toBeUndefined();
      await pinned.client.query('insert into kept values (1)');
      expect(pinned.error).toBeUndefined();
      // ...and the commit completes, then the session ends.
      await busy.client.query('commit');
      await pinned.client.query('commit');
      for (const cut of [busy, pinned]) expect(await waitFor(() => cut.error, 'the session to be cut after its commit', 10_000)).toMatchObject({ code: '57P01' });
      await waitFor(() => events.filter((e) => e.type === 'expired-disconnect').length === cutsBefore + 3, 'three expired-disconnect events');
      // Their server connections went back to the pool: the next clients log in on them, no new server login.
      const logins = poolLogins(t);
      await waitFor(() => t.pool!.stats().every((s) => s.serversActive === 0), 'the connections back in the pool');
      const next = await Promise.all([1, 2, 3].map(async () => pgLogin(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE))));
      // One transaction after the other: transaction mode has as many connections as were busy at once.
      for (const c of next) for (const sql of ['begin', 'select 1', 'commit']) await c.query(sql);
      expect(poolLogins(t)).toBe(logins);
      await Promise.all(next.map((c) => c.end()));
    },
  );

  it('shares the broker’s pooled server connections with upstream_identity: broker, the audit naming each person', async () => {
    const audit = createMemoryAuditSink({ queries: false });
    const t = await entraTunnel('orders', 'orders', { entra: entra(), audit, pool: EXPIRY_POOL });
    const alice = await pgLogin(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE));
    const bob = await pgLogin(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(BOB));
    for (const client of [alice, bob]) expect((await client.query<{ user: string }>('select current_user as user')).rows[0]!.user).toBe(DEMO_IDENTITY.role);
    expectOneBrokerKey(t);
    await alice.end();
    await bob.end();
    expect(startsOf(audit).map((e) => e.upn)).toEqual([ALICE.upn, BOB.upn]);
  });

  it.skipIf(psql.skip)('lets psql sign in with the token in PGPASSWORD', async () => {
    const t = await entraTunnel('orders', 'orders', { entra: entra({ upstreamIdentity: 'client' }) });
    const token = await broker.azure.issueUserToken(ALICE);
    const result = await execa(psql.path!, ['-X', '-h', t.host, '-p', String(t.port), '-U', ALICE.upn, '-d', 'orders', '-At', '-c', 'select current_user'], {
      env: { PGPASSWORD: token, PGSSLMODE: 'disable' },
      reject: false,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(ALICE.upn);
  });
});

describe.skipIf(mariadbd.skip)('MySQL: people sign in with their Entra token (clear password over TLS)', () => {
  let clientTls: ReturnType<typeof createSecureContext>;
  let caPem: string;

  beforeAll(async () => {
    const ca = await loadOrCreateCa(join(broker.azure.dir, 'ca'));
    const cert = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    clientTls = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
    caPem = ca.caPem;
  });

  function connect(t: Tunnel, user: string, token: string, tls = true): Promise<mysql.Connection> {
    return mysql.createConnection({
      host: t.host,
      port: t.port,
      user,
      password: token,
      ...(tls ? { ssl: { ca: caPem } } : {}),
      authPlugins: { mysql_clear_password: () => () => Buffer.from(`${token}\0`) },
    });
  }

  it('forwards the person’s token: CURRENT_USER() is Alice, then the DBA group for a member', async () => {
    const t = await entraTunnel('shopdb', '', { entra: entra({ upstreamIdentity: 'client' }), clientTls, requireClientTls: true });
    const alice = await connect(t, ALICE.upn, await broker.azure.issueUserToken(ALICE));
    const [[row]] = await alice.query<mysql.RowDataPacket[]>('select current_user() as user');
    expect(row!.user).toBe(`${ALICE.upn}@%`);
    await alice.end();
    const bob = await connect(t, DBA_GROUP.name, await broker.azure.issueUserToken({ ...BOB, groups: [DBA_GROUP.objectId] }));
    const [[group]] = await bob.query<mysql.RowDataPacket[]>('select current_user() as user');
    expect(group!.user).toBe(`${DBA_GROUP.name}@%`);
    await bob.end();
  });

  it('ends a leaver’s session after the commit once the token expired, not inside the transaction (disconnect_expired)', async () => {
    const t = await entraTunnel('shopdb', 'shop', { entra: entra({ disconnectExpired: true }), clientTls });
    const token = await broker.azure.issueUserToken({ ...ALICE, ttlSeconds: 4 });
    const expiresAt = decodeTokenClaims(token)!.expiresOn!;
    const leaver = await mysql.createConnection({ host: t.host, port: t.port, user: DEMO_IDENTITY.role, database: 'shop', ssl: { ca: caPem }, authPlugins: { mysql_clear_password: () => () => Buffer.from(`${token}\0`) } });
    const ended = new Promise<Error & { code?: unknown; fatal?: boolean }>((resolve) => leaver.once('error', resolve));
    // Result sets, prepared statements and multi-statement answers before and inside the transaction.
    await leaver.execute('select ? + 1 as two', [1]);
    await leaver.query('select * from customers');
    await leaver.query('start transaction');
    await leaver.query('select count(*) from customers');
    await waitFor(() => Date.now() > expiresAt + 200, 'the token to expire', 15_000);
    const [[row]] = await leaver.execute<mysql.RowDataPacket[]>('select ? as still', ['here']);
    expect(row!.still).toBe('here');
    await leaver.query('commit');
    const error = await ended;
    expect(error.message).toContain('has expired');
    // mysql2 reports an unsolicited ERR with its number as `code`.
    expect(error).toMatchObject({ code: 4031, fatal: true });
    leaver.destroy();
  });

  it.each(['session', 'transaction'] as const)(
    'pooled (%s mode): cuts expired sessions after the commit (pinned too), never inside the transaction, and one idle at expiry; the next clients reuse their server connections',
    async (mode) => {
      const t = await entraTunnel('shopdb', 'shop', { entra: entra({ disconnectExpired: true }), clientTls, pool: { ...EXPIRY_POOL, mode } });
      const token = await broker.azure.issueUserToken({ ...ALICE, ttlSeconds: 4 });
      const cutsBefore = events.filter((e) => e.type === 'expired-disconnect').length;
      const busy = endings(await connect(t, DEMO_IDENTITY.role, token));
      const idle = endings(await connect(t, DEMO_IDENTITY.role, token));
      // A user variable pins its client to its connection in transaction mode: cut where it would have been given back.
      const pinned = endings(await connect(t, DEMO_IDENTITY.role, token));
      await idle.client.query('select 1');
      await busy.client.query('start transaction');
      await pinned.client.query('set @kept = 1');
      await pinned.client.query('start transaction');
      expect(pinnedClients(t)).toBe(mode === 'transaction' ? 1 : 0);
      const [[before]] = await busy.client.query<mysql.RowDataPacket[]>('select connection_id() as id');
      // The one at rest is cut by the clock once the token expired: holding no connection (transaction mode) or an idle one.
      const idleError = await waitFor(() => idle.error, 'the idle session to be cut at expiry', 20_000);
      expect(idleError).toMatchObject({ code: 4031, fatal: true });
      expect(idleError.message).toContain('has expired');
      // Inside the transaction the session goes on after expiry (result sets, a prepared statement), on the same connection...
      const [[after]] = await busy.client.execute<mysql.RowDataPacket[]>('select connection_id() as id, ? as still', ['here']);
      expect(after).toEqual({ id: before!.id, still: 'here' });
      expect(busy.error).toBeUndefined();
      const [[kept]] = await pinned.client.query<mysql.RowDataPacket[]>('select @kept as kept');
      expect(kept!.kept).toBe(1);
      expect(pinned.error).toBeUndefined();
      // ...and the commit completes, then the session ends.
      await busy.client.query('commit');
      await pinned.client.query('commit');
      for (const cut of [busy, pinned]) expect(await waitFor(() => cut.error, 'the session to be cut after its commit', 10_000)).toMatchObject({ code: 4031, fatal: true });
      await waitFor(() => events.filter((e) => e.type === 'expired-disconnect').length === cutsBefore + 3, 'three expired-disconnect events');
      for (const cut of [idle, busy, pinned]) cut.client.destroy();
      // Their server connections went back to the pool: the next clients use them, no new server login.
      await waitFor(() => t.pool!.stats().every((s) => s.serversActive === 0), 'the connections back in the pool');
      const logins = poolLogins(t);
      const next = await Promise.all([1, 2, 3].map(async () => connect(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE))));
      // One transaction after the other: transaction mode has as many connections as were busy at once.
      for (const c of next) for (const sql of ['start transaction', 'select 1', 'commit']) await c.query(sql);
      expect(poolLogins(t)).toBe(logins);
      await Promise.all(next.map((c) => c.end()));
    },
  );

  it('keys pooled server connections by the person with upstream_identity: client, logged in with their token; the audit names them', async () => {
    const audit = createMemoryAuditSink({ queries: false });
    const t = await entraTunnel('shopdb', '', { entra: entra({ upstreamIdentity: 'client' }), clientTls, audit, pool: EXPIRY_POOL });
    const alice = await connect(t, ALICE.upn, await broker.azure.issueUserToken(ALICE));
    const bob = await connect(t, DBA_GROUP.name, await broker.azure.issueUserToken({ ...BOB, groups: [DBA_GROUP.objectId] }));
    const [[aliceUser]] = await alice.query<mysql.RowDataPacket[]>('select current_user() as user');
    const [[bobUser]] = await bob.query<mysql.RowDataPacket[]>('select current_user() as user');
    expect([aliceUser!.user, bobUser!.user]).toEqual([`${ALICE.upn}@%`, `${DBA_GROUP.name}@%`]);
    const keys = t.pool!.stats().map((s) => [s.info.dbUser, s.info.identity]);
    expect(keys).toEqual(
      expect.arrayContaining([
        [ALICE.upn, `oid:${ALICE.objectId}@${broker.azure.tenantId}`],
        [DBA_GROUP.name, `oid:${BOB.objectId}@${broker.azure.tenantId}`],
      ]),
    );
    expect(keys).toHaveLength(2);
    await alice.end();
    await bob.end();
    expect(startsOf(audit).map((e) => e.upn)).toEqual([ALICE.upn, BOB.upn]);
  });

  it('shares the broker’s pooled server connections with upstream_identity: broker, the audit naming each person', async () => {
    const audit = createMemoryAuditSink({ queries: false });
    const t = await entraTunnel('shopdb', 'shop', { entra: entra(), clientTls, audit, pool: EXPIRY_POOL });
    const alice = await connect(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(ALICE));
    const bob = await connect(t, DEMO_IDENTITY.role, await broker.azure.issueUserToken(BOB));
    for (const client of [alice, bob]) {
      const [[row]] = await client.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe(`${DEMO_IDENTITY.role}@%`);
    }
    expectOneBrokerKey(t);
    await alice.end();
    await bob.end();
    expect(startsOf(audit).map((e) => e.upn)).toEqual([ALICE.upn, BOB.upn]);
  });

  it('refuses a wrong tenant with 1045 and the reason, and a client without TLS with 3159 before it sends its token', async () => {
    const t = await entraTunnel('shopdb', '', { entra: entra(), clientTls });
    const token = await broker.azure.issueUserToken({ ...ALICE, tenant: 'other' });
    const error = await connect(t, DEMO_IDENTITY.role, token).then(
      () => undefined,
      (e: Error & { errno?: number }) => e,
    );
    expect(error?.errno).toBe(1045);
    expect(error?.message).toContain('(tenant)');
    expect(error?.message).not.toMatch(JWT);
    let sent = false;
    const plain = await mysql
      .createConnection({ host: t.host, port: t.port, user: DEMO_IDENTITY.role, authPlugins: { mysql_clear_password: () => () => ((sent = true), Buffer.from('x\0')) } })
      .then(
        () => undefined,
        (e: Error & { errno?: number }) => e,
      );
    expect(plain?.errno).toBe(3159);
    expect(sent).toBe(false);
  });
});
