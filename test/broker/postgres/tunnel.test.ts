import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server } from 'node:net';
import { encodeStartupMessage } from '../../../src/broker/postgres/codec/startup.js';
import { FrameDecoder } from '../../../src/broker/postgres/codec/frame-decoder.js';
import { drain } from '../../helpers/decoders.js';
import { decodeAuthentication } from '../../../src/broker/postgres/codec/messages.js';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import { loadOrCreateCa } from '../../../src/emulator/ca.js';
import pg from 'pg';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';
import { blockingAudit, expectNotReadWhileAuditWaits } from '../../helpers/audit-hold.js';
import { DEMO_IDENTITY } from '../../../src/emulator/demo-identity.js';

const psql = await findTool('psql');
const broker = new BrokerFixture();
const targetFor = broker.target.bind(broker);
let azure: BrokerFixture['azure'];
let tokens: BrokerFixture['tokens'];

function tunnel(overrides: Partial<TunnelOptions> = {}): Promise<Tunnel> {
  return broker.tunnel({ target: targetFor('orders'), dbName: 'orders', audit: createMemoryAuditSink({ queries: false }), ...overrides });
}

function client(t: Tunnel, overrides: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: t.host, port: t.port, user: t.user, database: t.database, password: t.password, ...overrides });
}

async function loginError(t: Tunnel, overrides: Partial<pg.ClientConfig> = {}): Promise<Error & { code?: string; hint?: string }> {
  const c = client(t, overrides);
  const error = await c.connect().then(() => undefined, (e: Error) => e);
  await c.end().catch(() => {});
  if (!error) throw new Error('login unexpectedly succeeded');
  return error;
}

beforeAll(async () => {
  await broker.start();
  ({ azure, tokens } = broker);
});

afterAll(() => broker.stop());

describe('PostgreSQL tunnel against emulated Azure', () => {
  it('logs a pg driver in with the Entra token and runs simple and prepared queries', async () => {
    const t = await tunnel();
    const c = client(t);
    await c.connect();
    const simple = await c.query('select current_user as who, count(*)::int as n from customers');
    expect(simple.rows[0]).toEqual({ who: DEMO_IDENTITY.role, n: 50 });
    const prepared = await c.query({ name: 'by-id', text: 'select email from customers where id = $1', values: [7] });
    expect(prepared.rows[0].email).toBe('customer7@example.com');
    const again = await c.query({ name: 'by-id', text: 'select email from customers where id = $1', values: [8] });
    expect(again.rows[0].email).toBe('customer8@example.com');
    await c.end();
  });

  it.each(['md5', 'scram-sha-256'] as const)('answers an upstream that asks for %s with the token', async (method) => {
    const front = azure.fronts.get('inventory')!;
    front.setAuthMethod(method);
    try {
      const t = await tunnel({ target: targetFor('inventory'), dbName: 'inventory' });
      const before = front.logins;
      const c = client(t);
      await c.connect();
      expect((await c.query('select count(*)::int as n from products')).rows[0].n).toBe(17);
      await c.end();
      expect(front.logins).toBe(before + 1);
    } finally {
      front.setAuthMethod('cleartext');
    }
  });

  it('speaks TLS to clients when the listener has a certificate', async () => {
    const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
    const cert = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const t = await tunnel({ clientTls: createSecureContext({ cert: cert.certPem, key: cert.keyPem }) });
    const c = client(t, { ssl: { ca: ca.caPem, servername: 'localhost' } });
    await c.connect();
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
    await c.end();
    const plainAfterTls = await tunnel();
    const error = await loginError(plainAfterTls, { ssl: { ca: ca.caPem } });
    expect(error.message).toMatch(/does not support SSL/);
  });

  it('negotiates a protocol 3.2 client down to 3.0 and names the options it does not know', async () => {
    const t = await tunnel();
    const socket = connect(t.port, t.host);
    const startup = Buffer.from(encodeStartupMessage({ user: t.user, database: t.database, '_pq_.future': 'on' }));
    startup.writeInt32BE((3 << 16) | 2, 4);
    socket.write(startup);
    const decoder = new FrameDecoder();
    const frames: Array<{ code: number; payload: Buffer }> = [];
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        for (const f of drain(decoder, chunk)) frames.push({ code: f.code, payload: Buffer.from(f.payload) });
        if (frames.length >= 2) resolve();
      });
    });
    socket.destroy();
    expect(String.fromCharCode(frames[0]!.code)).toBe('v');
    expect(frames[0]!.payload.readInt32BE(0)).toBe(0);
    expect(frames[0]!.payload.readInt32BE(4)).toBe(1);
    expect(frames[0]!.payload.subarray(8).toString()).toBe('_pq_.future\0');
    expect(decodeAuthentication(frames[1]!.payload)).toEqual({ type: 'sasl', mechanisms: ['SCRAM-SHA-256'] });
  });

  it('logs in as user@server on a single server', async () => {
    const t = await tunnel({ target: targetFor('legacy'), dbName: 'postgres' });
    const c = client(t);
    await c.connect();
    expect((await c.query('select current_user as who')).rows[0].who).toBe(DEMO_IDENTITY.role);
    await c.end();
  });

  it('refuses a wrong tunnel password with 28P01 and keeps serving', async () => {
    const t = await tunnel();
    const error = await loginError(t, { password: 'not-the-password' });
    expect(error.code).toBe('28P01');
    const c = client(t);
    await c.connect();
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
    await c.end();
  });

  it('refuses what the roles deny with 28000 pointing at azdb db ls', async () => {
    const t = await tunnel({ authorize: (u, d) => (d === 'orders' ? { allowed: false, reason: 'no role allows it' } : { allowed: true }) });
    const error = await loginError(t);
    expect(error.code).toBe('28000');
    expect(error.message).toContain('"orders"');
    expect(error.hint).toContain('azdb db ls');
  });

  it('reports a failing credential source with azdb creds', async () => {
    const t = await tunnel({ getToken: () => Promise.reject(new Error('ManagedIdentityCredential failed: endpoint unreachable')) });
    const error = await loginError(t);
    expect(error.code).toBe('08001');
    expect(error.message).toContain('ManagedIdentityCredential');
    expect(error.hint).toContain('azdb creds');
  });

  it('fails TLS verification on a wrong server name and names it', async () => {
    const t = await tunnel({ target: targetFor('orders', { tls: { mode: 'verify-full', ca: azure.caPem, caSource: 'the emulator CA', serverName: 'orders.mysql.database.azure.com' } }) });
    const error = await loginError(t);
    expect(error.code).toBe('08001');
    expect(error.message).toContain('orders.mysql.database.azure.com');
    expect(error.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altnames/);
  });

  it('never sends the token to a server that refuses TLS', async () => {
    const received: Buffer[] = [];
    const plain: Server = createServer((s) => {
      s.on('data', (d) => {
        received.push(d);
        s.write('N');
      });
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const port = (plain.address() as { port: number }).port;
    const t = await tunnel({ target: targetFor('orders', { port }) });
    const error = await loginError(t);
    expect(error.code).toBe('08001');
    expect(error.message).toContain('refused TLS');
    expect(Buffer.concat(received)).toEqual(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]));
    plain.close();
  });

  it('says where it could not connect when the server is down', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t = await tunnel({ target: targetFor('orders', { port }) });
    const error = await loginError(t);
    expect(error.code).toBe('08001');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.hint).toContain('azdb doctor');
  });

  it('passes Azure\'s own refusal through when the role does not exist', async () => {
    const t = await tunnel({ dbUser: 'nobody' });
    const error = await loginError(t, { user: 'nobody' });
    expect(error.code).toBe('28P01');
    expect(error.message).toContain('password authentication failed for user "nobody"');
    expect(error.hint).toContain('pgaadauth_create_principal_with_oid');
  });

  it('audits sessions and queries without tokens, passwords or parameter values', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const t = await tunnel({ audit });
    const c = client(t);
    await c.connect();
    await c.query('select 42 as answer');
    await c.query({ text: 'select $1::text as secret_param', values: ['parameter-value-xyz'] });
    await c.end();
    await waitFor(() => audit.events.some((e) => e.event === 'session.end'), 'session.end');
    const kinds = audit.events.map((e) => (e.event === 'query' ? `query:${e.kind}` : e.event));
    expect(kinds).toEqual(['session.start', 'query:simple', 'query:parse', 'query:bind', 'query:execute', 'session.end']);
    const text = JSON.stringify(audit.events);
    expect(text).toContain('select 42 as answer');
    expect(text).not.toContain('parameter-value-xyz');
    expect(text).not.toContain(t.password);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]+\./);
    const end = audit.events.find((e) => e.event === 'session.end') as { bytes_from_client: number; bytes_to_client: number; result: string };
    expect(end.result).toBe('ok');
    expect(end.bytes_from_client).toBeGreaterThan(0);
    expect(end.bytes_to_client).toBeGreaterThan(0);
  });

  it('under audit on_failure block, stops reading an unpooled client while the audit waits, and reads it again once it has room', async () => {
    const audit = blockingAudit();
    const t = await tunnel({ audit: audit.sink });
    const [held, other] = [client(t), client(t)];
    await Promise.all([held.connect(), other.connect()]);
    try {
      await expectNotReadWhileAuditWaits(audit, held, other);
    } finally {
      await Promise.all([held.end(), other.end()]);
    }
  });

  it('fetches no token on the connection path while the cached one is valid', async () => {
    const t = await tunnel();
    const before = azure.identity.requests;
    const fetchesBefore = tokens.stats.fetches;
    for (let i = 0; i < 5; i++) {
      const c = client(t);
      await c.connect();
      await c.end();
    }
    expect(tokens.stats.fetches).toBe(fetchesBefore);
    expect(azure.identity.requests).toBe(before);
  });

  describe.skipIf(psql.skip)('with psql', () => {
    it('runs psql with the password in its environment, not argv', async () => {
      const t = await tunnel();
      const result = await execa(psql.path!, ['-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database, '-At', '-c', 'select count(*) from orders'], {
        env: { PGPASSWORD: t.password, PGSSLMODE: 'prefer' },
        reject: false,
      });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('200');
    });

    it('copies 200 000 rows in and out with psql, byte for byte', async () => {
      const t = await tunnel();
      const rows = Array.from({ length: 200_000 }, (_, i) => `${i}\trow-${i}-${'x'.repeat(i % 50)}\n`).join('');
      const psqlArgs = ['-X', '-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database, '-v', 'ON_ERROR_STOP=1', '-At'];
      const copyIn = await execa(
        psql.path!,
        [...psqlArgs, '-c', 'create table if not exists copy_through_azdb (id int, label text)', '-c', 'truncate copy_through_azdb', '-c', '\\copy copy_through_azdb from stdin', '-c', "select count(*), md5(string_agg(id || E'\\t' || label, E'\\n' order by id)) from copy_through_azdb"],
        { env: { PGPASSWORD: t.password }, input: rows },
      );
      const expectedMd5 = createHash('md5').update(rows.slice(0, -1)).digest('hex');
      expect(copyIn.stdout.split('\n').at(-1)).toBe(`200000|${expectedMd5}`);

      const copyOut = await execa(psql.path!, [...psqlArgs, '-c', 'copy (select id, label from copy_through_azdb order by id) to stdout'], {
        env: { PGPASSWORD: t.password },
        stripFinalNewline: false,
      });
      expect(copyOut.stdout).toBe(rows);
      await azure.realPostgres.query('drop table copy_through_azdb', [], 'orders');
    });

    it('cancels a running query when psql gets Ctrl+C (SIGINT)', async () => {
      const t = await tunnel();
      const marker = `cancel-me-${Date.now()}`;
      const child = execa(psql.path!, ['-h', t.host, '-p', String(t.port), '-U', t.user, '-d', t.database, '-c', `select pg_sleep(60) /* ${marker} */`], {
        env: { PGPASSWORD: t.password },
        reject: false,
      });
      await waitFor(async () => {
        const { rows } = await azure.realPostgres.query('select 1 from pg_stat_activity where query like $1 and state = $2', [`%${marker}%`, 'active']);
        return rows.length > 0;
      }, 'the query to run');
      const started = Date.now();
      child.kill('SIGINT');
      const result = await child;
      expect(result.stderr).toContain('canceling statement due to user request');
      expect(Date.now() - started).toBeLessThan(10_000);
      const { rows } = await azure.realPostgres.query('select 1 from pg_stat_activity where query like $1 and state = $2', [`%${marker}%`, 'active']);
      expect(rows).toHaveLength(0);
    });
  });
});
