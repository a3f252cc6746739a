/**
 * A managed identity endpoint that takes token requests and never answers, then recovers, with
 * the real DefaultAzureCredential, real broker tunnels and the emulated Azure Database servers
 * over the run's real PostgreSQL (and MariaDB when installed).
 *
 * The emulator issues 25-s tokens: a token with less than 30 s left is never handed out from the
 * cache, so every login asks the credential, as `proxy db` does once its token nears expiry.
 * MSAL freezes the identity endpoint and HTTP client of the first managed identity request of a
 * process: this file makes that request through azdb's credential only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { createCredential } from '../../src/azure/credential.js';
import { TokenCache } from '../../src/azure/token-cache.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import { createJsonLogger } from '../../src/broker/log.js';
import { MetricsRegistry } from '../../src/broker/metrics.js';
import { BrokerServer } from '../../src/broker/serve.js';
import type { Tunnel, TunnelOptions } from '../../src/broker/tunnel.js';
import { findTool } from '../harness/tools.js';
import { BrokerFixture, SCOPE } from '../helpers/broker-fixtures.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const mariadbd = await findTool('mariadbd');
/** azdb's deadline on a token fetch in this file (30 s in azdb). */
const FETCH_DEADLINE_MS = 3_000;
/** The clients' login deadline: the error must come before it. */
const HANDSHAKE_MS = 20_000;

const broker = new BrokerFixture();
let tokens: TokenCache;
let server: BrokerServer;
let registry: MetricsRegistry;

beforeAll(async () => {
  await broker.start();
  broker.azure.identity.setTokenTtl(25);
  tokens = new TokenCache({ credential: createCredential(), fetchTimeoutMs: FETCH_DEADLINE_MS, onEvent: (event) => server.tokenEvent(event) });
  // `azdb serve`'s broker over the same cache, for /readyz and /metrics (no listeners needed).
  registry = new MetricsRegistry();
  server = new BrokerServer({
    load: async () => ({
      file: 'azdb.yaml',
      listeners: [],
      findDatabase: () => undefined,
      databaseNames: () => [],
      discoveryConfigured: false,
      authorize: () => () => ({ allowed: true }),
      audit: NO_AUDIT,
      close: async () => {},
    }),
    tokens,
    scope: SCOPE,
    log: createJsonLogger(() => {}),
    registry,
    stateDir: await mkdtemp(join(tmpdir(), 'azdb-stuck-')),
    tokenWarmMs: 3_600_000,
    readyTokenWaitMs: 200,
  });
  await server.start();
});

afterAll(async () => {
  await server?.stop(0);
  await broker.stop();
});

function tunnel(options: Pick<TunnelOptions, 'target' | 'dbName'> & Partial<TunnelOptions>): Promise<Tunnel> {
  return broker.tunnel({ getToken: (signal) => tokens.getToken(SCOPE, { signal }), handshakeTimeoutMs: HANDSHAKE_MS, ...options });
}

function pgClient(t: Tunnel): pg.Client {
  return new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password });
}

/** The error of a PostgreSQL login through `t`, and how long it took to come. */
async function pgLoginError(t: Tunnel): Promise<{ error: Error & { code?: string; hint?: string }; ms: number }> {
  const started = Date.now();
  const c = pgClient(t);
  const error = await c.connect().then(() => undefined, (e: Error) => e);
  await c.end().catch(() => {});
  if (!error) throw new Error('login unexpectedly succeeded');
  return { error, ms: Date.now() - started };
}

async function metrics() {
  return parsePrometheusText(await registry.render());
}

describe('a token endpoint that never answers, then recovers', () => {
  let orders: Tunnel;

  it('a PostgreSQL login gets 08001 with the reason at azdb’s deadline, within its own; readiness and metrics say stuck', async () => {
    orders = await tunnel({ target: broker.target('orders'), dbName: 'orders' });
    await broker.azure.identity.setMode('hang');
    const { error, ms } = await pgLoginError(orders);
    expect(error.code).toBe('08001');
    expect(error.message).toContain('azdb could not get an Entra token for orders');
    expect(error.message).toContain(`no answer within ${FETCH_DEADLINE_MS / 1000} s; azdb abandoned the attempt and the next login starts a new one`);
    expect(error.hint).toContain('azdb creds');
    expect(ms).toBeLessThan(HANDSHAKE_MS);
    expect(broker.azure.identity.held).toBeGreaterThan(0);

    expect(tokens.status(SCOPE).state).toBe('stuck');
    const readiness = await server.readiness();
    expect(readiness.ready).toBe(false);
    expect(readiness.reason).toMatch(/^no database token: the token source is stuck since \S+: DefaultAzureCredential failed: no answer within 3 s/);
    expect(readiness.checks.token).toMatchObject({ ok: false, source: 'stuck' });
    const m = await metrics();
    expect(m.value('azdb_token_source_stuck')).toBe(1);
    expect(m.value('azdb_token_fetch_timeouts_total')).toBeGreaterThanOrEqual(1);
  });

  it('a login whose own deadline comes first gets 08001 then, saying how long the credential has been quiet', async () => {
    const patient = new TokenCache({ credential: createCredential() }); // azdb's 30-s deadline
    const t = await tunnel({ target: broker.target('orders'), dbName: 'orders', handshakeTimeoutMs: 2_000, getToken: (signal) => patient.getToken(SCOPE, { signal }) });
    const { error, ms } = await pgLoginError(t);
    expect(error.code).toBe('08001');
    expect(error.message).toMatch(/stopped waiting for an Entra token for \S+: the login deadline of 2 s passed; the credential has not answered for [\d.]+ s \(azdb gives up on it after 30 s\)/);
    expect(ms).toBeLessThan(HANDSHAKE_MS);
  });

  it('closing a tunnel ends a login that waits for its token at once, instead of draining it', async () => {
    const own = new TokenCache({ credential: createCredential() }); // its own request to the endpoint
    const t = await tunnel({ target: broker.target('orders'), dbName: 'orders', getToken: (signal) => own.getToken(SCOPE, { signal }) });
    const heldBefore = broker.azure.identity.held;
    const c = pgClient(t);
    const failed = c.connect().then(() => undefined, (e: Error & { code?: string }) => e);
    await waitFor(() => broker.azure.identity.held > heldBefore, 'the login to wait for its token');
    const closing = Date.now();
    await t.close(3 * HANDSHAKE_MS);
    // Not the drain, nor the client's login deadline.
    expect(Date.now() - closing).toBeLessThan(HANDSHAKE_MS / 2);
    const error = await failed;
    await c.end().catch(() => {});
    expect(error?.code).toBe('08001');
    expect(error?.message).toContain('the tunnel is closing');
  });

  it.skipIf(mariadbd.skip)('a MySQL login gets an ERR with the reason', async () => {
    const t = await tunnel({ target: broker.target('shopdb'), dbName: 'shop' });
    const error = await mysql
      .createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: 'shop', connectTimeout: HANDSHAKE_MS })
      .then(
        async (c) => {
          await c.end();
          return undefined;
        },
        (e: unknown) => e as { errno?: number; sqlState?: string; message: string },
      );
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(error!.message).toContain('no answer within 3 s');
    expect(error!.message).toContain('azdb creds');
  });

  it('after the endpoint recovers, the next login starts a new attempt and gets in; readiness and metrics clear', async () => {
    await broker.azure.identity.setMode('up');
    const c = pgClient(orders);
    await c.connect();
    expect((await c.query('select count(*)::int as n from customers')).rows[0].n).toBe(50);
    await c.end();
    expect(tokens.status(SCOPE).state).toBe('ok');
    // The abandoned requests never got an answer; azdb did not wait for them.
    expect(broker.azure.identity.held).toBeGreaterThan(0);
    const readiness = await server.readiness();
    expect(readiness).toMatchObject({ ready: true, checks: { token: { ok: true, source: 'ok' } } });
    expect((await metrics()).value('azdb_token_source_stuck')).toBe(0);
  });
});

describe('a pooled listener while the token endpoint never answers', () => {
  it('a new login gets 08001 within its deadline; a client already in the pool keeps working, on the connection it shares', async () => {
    await broker.azure.identity.setMode('up');
    const pooled = await tunnel({
      target: broker.target('orders'),
      dbName: 'orders',
      pool: { mode: 'transaction', maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 10_000 },
    });
    const inside = pgClient(pooled);
    await inside.connect();
    const pid = (await inside.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    await broker.azure.identity.setMode('hang');
    try {
      const { error, ms } = await pgLoginError(pooled);
      expect(error.code).toBe('08001');
      expect(error.message).toContain('azdb could not get an Entra token for orders');
      expect(ms).toBeLessThan(HANDSHAKE_MS);
      for (let i = 0; i < 3; i++) {
        const row = (await inside.query('select pg_backend_pid() as pid, (select count(*)::int from customers) as n')).rows[0];
        expect(row).toEqual({ pid, n: 50 });
      }
    } finally {
      await broker.azure.identity.setMode('up');
    }
    const after = pgClient(pooled);
    await after.connect();
    expect((await after.query('select 1 as one')).rows[0].one).toBe(1);
    await Promise.all([after.end(), inside.end()]);
  });
});
