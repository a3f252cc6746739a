/**
 * Bad input from clients and bad behaviour from upstream servers. In every case the affected
 * client gets a PostgreSQL ErrorResponse with a SQLSTATE (decoded here) or a clean close, no
 * token leaves the machine in clear, and the next client is served at once: each case ends with
 * a real `pg` login and `select 1`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { join } from 'node:path';
import pg from 'pg';
import { waitFor } from '../../helpers/wait.js';
import { createPrng } from '../../helpers/prng.js';
import { BrokerFixture, JWT, USER } from '../../helpers/broker-fixtures.js';
import {
  RawClient,
  authRequest,
  completeMessages,
  cstring,
  encodeMessage,
  header,
  int32,
  parseBackend,
  rawLogin,
  startupMessage,
  type RawResult,
} from '../../helpers/pg-raw.js';
import { loadOrCreateCa } from '../../../src/emulator/ca.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import type { Listener } from '../../../src/broker/listener.js';
import { runPostgresSession, type PostgresSessionOptions } from '../../../src/broker/postgres/session.js';
import { CancelRegistry } from '../../../src/broker/cancel-registry.js';
import { createMemoryAuditSink, NO_AUDIT } from '../../../src/broker/audit.js';
import { encodeSaslInitialResponse, encodeSaslResponse } from '../../../src/broker/postgres/codec/messages.js';
import { encodeSslRequest } from '../../../src/broker/postgres/codec/startup.js';
import { SCRAM_MECHANISM, ScramClient } from '../../../src/broker/postgres/scram.js';

const broker = new BrokerFixture();
const { sockets } = broker;
const targetFor = broker.target.bind(broker);
const listen = broker.listen.bind(broker);
let azure: BrokerFixture['azure'];
let token: string;
let main: Tunnel;

function tunnel(overrides: Partial<TunnelOptions> = {}): Promise<Tunnel> {
  return broker.tunnel({ target: targetFor('orders'), dbName: 'orders', audit: createMemoryAuditSink({ queries: false }), ...overrides });
}

/** A broker listener run directly, for session options a tunnel does not expose. */
async function directListener(options: Partial<PostgresSessionOptions> = {}): Promise<{ listener: Listener; password: string }> {
  const password = 'direct-listener-password';
  const cancels = new CancelRegistry();
  const listener = await broker.listener((socket) =>
    runPostgresSession(socket, {
      target: targetFor('orders'),
      localPassword: password,
      defaults: { dbUser: USER, dbName: 'orders' },
      authorize: () => ({ allowed: true }),
      getToken: broker.getToken,
      audit: NO_AUDIT,
      cancels,
      ...options,
    }),
  );
  return { listener, password };
}

function pgClient(port: number, password: string, overrides: Partial<pg.ClientConfig> = {}): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port, user: USER, database: 'orders', password, connectionTimeoutMillis: 10_000, ...overrides });
  c.on('error', () => {});
  return c;
}

/** The next client is served at once: a real login and `select 1`. */
async function expectServed(port = main.port, password = main.password): Promise<void> {
  const started = Date.now();
  const c = pgClient(port, password);
  try {
    await c.connect();
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
  } finally {
    await c.end().catch(() => {});
  }
  expect(Date.now() - started).toBeLessThan(3_000);
}

function expectNoToken(bytes: Buffer): void {
  expect(bytes.includes(token)).toBe(false);
  expect(bytes.toString('latin1')).not.toMatch(JWT);
}

/** An ErrorResponse with `sqlstate` and then a close, nothing else. */
function expectError(result: RawResult, sqlstate: string, message?: RegExp | string): Record<string, string> {
  expect(result.ended, `connection ended by ${result.ended}; received ${result.received.toString('hex')}`).toBe('closed');
  const parsed = parseBackend(result.received);
  expect(parsed.errors.map((e) => e.C)).toEqual([sqlstate]);
  expect(parsed.messages.at(-1)?.code).toBe('E');
  const error = parsed.errors[0]!;
  expect(error.S).toBe('FATAL');
  if (message !== undefined) expect(error.M).toMatch(message);
  expectNoToken(result.received);
  return error;
}

/**
 * Closed without a byte, as PostgreSQL closes on a startup length it will not read; a reset is
 * as good as a close there (the client may still be sending, as it is to PostgreSQL).
 */
function expectSilentClose(result: RawResult): void {
  expect(result.received.toString('hex')).toBe('');
  expect(['closed', 'reset']).toContain(result.ended);
}

/** The server closed without a word (or with only 'N' answers). */
function expectCleanClose(result: RawResult): void {
  expect(result.ended).toBe('closed');
  const parsed = parseBackend(result.received);
  expect(parsed.messages.filter((m) => m.code !== 'R')).toEqual([]);
  expectNoToken(result.received);
}

/** Sends `bytes` on a fresh connection, optionally half-closes, and waits for the server to close. */
async function send(port: number, bytes: Buffer, options: { end?: boolean; timeoutMs?: number } = {}): Promise<RawResult> {
  const client = await RawClient.connect(port);
  sockets.add(client.socket);
  client.write(bytes);
  if (options.end) client.socket.end();
  return client.finish(options.timeoutMs ?? 5_000);
}

function startupHeader(length: number, code = 3 << 16): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(length | 0, 0);
  b.writeInt32BE(code, 4);
  return b;
}

/** Upstream connections the real PostgreSQL holds for `applicationName`. */
async function backends(applicationName: string): Promise<number> {
  const { rows } = await azure.realPostgres.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where application_name = $1', [applicationName]);
  return rows[0]!.n;
}

beforeAll(async () => {
  await broker.start();
  azure = broker.azure;
  token = await broker.getToken();
  main = await tunnel();
  await expectServed();
});

afterAll(() => broker.stop());

describe('bad bytes from a client', () => {
  it('answers random bytes as PostgreSQL does: a close, or a FATAL error for a packet it reads', async () => {
    const prng = createPrng(0x5eed);
    for (const size of [1, 3, 4, 5, 8, 13, 64, 512, 4096, 65_536, 262_144]) {
      const bytes = prng.bytes(size);
      const result = await send(main.port, bytes, { end: size < 8 });
      if (size >= 4) {
        const length = bytes.readInt32BE(0);
        if (length < 8 || length - 4 > 10_000) {
          expectSilentClose(result);
          await expectServed();
          continue;
        }
      }
      // A plausible length: the broker waits for the rest, sees the close, and closes too.
      const parsed = parseBackend(result.received);
      if (parsed.protocol2Error !== undefined) expect(parsed.protocol2Error).toMatch(/^FATAL: {2}unsupported frontend protocol/);
      else if (parsed.errors.length > 0) expect(['08P01', '0A000']).toContain(expectError(result, parsed.errors[0]!.C!).C);
      else expectCleanClose(result);
      await expectServed();
    }
  });

  it('closes quietly on a startup packet truncated at any byte', async () => {
    const whole = startupMessage(USER, 'orders', { application_name: 'truncated' });
    for (const packet of [whole, encodeSslRequest()]) {
      for (let at = 1; at < packet.length; at++) {
        const result = await send(main.port, packet.subarray(0, at), { end: true });
        expect(result.received.length, `cut at ${at}`).toBe(0);
        expect(result.ended).toBe('closed');
      }
      await expectServed();
    }
  });

  it.each([
    ['0', 0],
    ['negative', -1],
    ['most negative', -(2 ** 31)],
    ['2^31-1', 2 ** 31 - 1],
    ['10 005 (PostgreSQL reads 10 000 after the length word)', 10_005],
    ['4 (shorter than its header)', 4],
  ])('closes without a byte on a startup length of %s, as PostgreSQL does', async (_name, length) => {
    const result = await send(main.port, Buffer.concat([startupHeader(length), Buffer.alloc(32, 0x61)]));
    expectSilentClose(result);
    await expectServed();
  });

  it('closes without a byte on a startup packet of 10 000 parameters while the client is still sending it', async () => {
    const params: Record<string, string> = { user: USER, database: 'orders' };
    for (let i = 0; i < 10_000; i++) params[`p${i}`] = `value-${i}`;
    const packet = startupMessage(USER, 'orders', params);
    expect(packet.length).toBeGreaterThan(100_000);
    expectSilentClose(await send(main.port, packet));
    await expectServed();
  });

  it('closes at once on a client that keeps streaming after a bad length', async () => {
    for (let round = 0; round < 5; round++) {
      const client = await RawClient.connect(main.port);
      sockets.add(client.socket);
      client.write(startupHeader(2 ** 31 - 1));
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let written = 0;
      const pump = (): void => {
        while (!client.closed && !client.socket.readableEnded && written < 32 * 1024 * 1024) {
          written += chunk.length;
          if (!client.socket.write(chunk)) {
            client.socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
      expectSilentClose(await client.finish());
    }
    await expectServed();
  });

  it('reads a StartupMessage of 1000 parameters, as PostgreSQL does, and hands them to the server', async () => {
    // PostgreSQL bounds a startup packet by its length alone; the server judges the names.
    const params: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) params[`p${i}`] = 'v';
    const client = await RawClient.connect(main.port);
    sockets.add(client.socket);
    client.write(startupMessage(USER, 'orders', params));
    await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
    const scram = new ScramClient(main.password);
    client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
    const serverFirst = await client.until((b) => authRequest(b, 11), 'AuthenticationSASLContinue');
    client.write(encodeSaslResponse(scram.final(Buffer.from(serverFirst))));
    expectError(await client.finish(15_000), '42704', 'unrecognized configuration parameter "p0"');
    await expectServed();
  });

  it.each([
    ['0', 0],
    ['negative', -1],
    ['2^31-1', 2 ** 31 - 1],
    ['over the auth message cap', 4097],
  ])('refuses a SASLInitialResponse whose length is %s with 08P01', async (_name, length) => {
    const client = await RawClient.connect(main.port);
    sockets.add(client.socket);
    client.write(startupMessage(USER, 'orders'));
    await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
    client.write(Buffer.concat([header('p', length), Buffer.alloc(16, 0x41)]));
    const result = await client.finish();
    expectError(result, '08P01', `invalid message length ${length}`);
    await expectServed();
  });

  it.each([
    ['a Query instead of a SASLInitialResponse', () => encodeMessage(0x51, cstring('select 1')), '08P01'],
    ['a SASL data length past the message', () => encodeMessage(0x70, cstring(SCRAM_MECHANISM), int32(2 ** 31 - 1), Buffer.from('n,,n=,r=x')), '08P01'],
    ['a negative SASL data length', () => encodeMessage(0x70, cstring(SCRAM_MECHANISM), int32(-7)), '08P01'],
    ['an unterminated mechanism', () => encodeMessage(0x70, Buffer.from(SCRAM_MECHANISM)), '08P01'],
    ['another SASL mechanism', () => encodeSaslInitialResponse('SCRAM-SHA-256-PLUS', Buffer.from('p=tls-server-end-point,,n=,r=abc')), '28000'],
    ['a garbage client-first-message', () => encodeSaslInitialResponse(SCRAM_MECHANISM, Buffer.from([0xff, 0, 0x2c, 0x3d])), '08P01'],
  ] as const)('refuses %s during SCRAM', async (_name, message, sqlstate) => {
    const client = await RawClient.connect(main.port);
    sockets.add(client.socket);
    client.write(startupMessage(USER, 'orders'));
    await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
    client.write(message());
    expectError(await client.finish(), sqlstate);
    await expectServed();
  });

  it('refuses a wrong SCRAM proof with 28P01 and never reaches the upstream', async () => {
    const logins = azure.fronts.get('orders')!.logins;
    const client = await RawClient.connect(main.port);
    sockets.add(client.socket);
    client.write(startupMessage(USER, 'orders'));
    await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
    const scram = new ScramClient('not-the-tunnel-password');
    client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
    const serverFirst = await client.until((b) => authRequest(b, 11), 'AuthenticationSASLContinue');
    client.write(encodeSaslResponse(scram.final(Buffer.from(serverFirst))));
    expectError(await client.finish(), '28P01', /password authentication failed/);
    expect(azure.fronts.get('orders')!.logins).toBe(logins);
    await expectServed();
  });

  it('relays a Bind with 10 000 parameters and survives; PostgreSQL answers it', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const t = await tunnel({ audit });
    // Through the pg driver: Parse/Bind/Execute with 10 000 values, PostgreSQL's own result.
    const c = pgClient(t.port, t.password);
    await c.connect();
    const placeholders = Array.from({ length: 10_000 }, (_, i) => `$${i + 1}::int`).join(',');
    const values = Array.from({ length: 10_000 }, (_, i) => i);
    const { rows } = await c.query(`select cardinality(array[${placeholders}]) as n`, values);
    expect(rows[0].n).toBe(10_000);
    await c.end();
    expect(audit.events.some((e) => e.event === 'query' && e.kind === 'bind' && e.parameters === 10_000)).toBe(true);

    // Raw: a Bind of 10 000 parameters to a statement that takes none; PostgreSQL's own 08P01.
    const raw = await rawLogin(t.port, USER, 'orders', t.password);
    sockets.add(raw.socket);
    const before = raw.received.length;
    const params = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => Buffer.concat([int32(4), int32(i)])));
    const bind = encodeMessage(0x42, cstring(''), cstring(''), Buffer.from([0, 0]), Buffer.from([0x27, 0x10]), params, Buffer.from([0, 0]));
    raw.write(Buffer.concat([encodeMessage(0x50, cstring(''), cstring('select 1'), Buffer.from([0, 0])), bind, encodeMessage(0x53)]));
    await raw.until((b) => (completeMessages(b.subarray(before)).some((m) => m.code === 'Z') ? true : undefined), 'ReadyForQuery after the Bind', 10_000);
    raw.write(encodeMessage(0x58)); // Terminate
    const result = await raw.finish();
    expect(result.ended).toBe('closed');
    const after = parseBackend(result.received.subarray(before));
    const error = after.errors[0];
    expect(error?.C).toBe('08P01');
    expect(error?.M).toContain('bind message supplies 10000 parameters');
    await expectServed(t.port, t.password);
    await expectServed();
  });

  it('times out a client that sends one byte a second with 08006 while another is served', async () => {
    const { listener, password } = await directListener({ handshakeTimeoutMs: 1_000 });
    const slow = await RawClient.connect(listener.port);
    sockets.add(slow.socket);
    const packet = startupMessage(USER, 'orders');
    let sent = 0;
    slow.write(packet.subarray(sent, ++sent));
    const drip = setInterval(() => {
      if (sent < packet.length) slow.write(packet.subarray(sent, ++sent));
    }, 1_000);
    try {
      const served = expectServed(listener.port, password);
      const result = await slow.finish(5_000);
      await served;
      expectError(result, '08006', /timed out waiting for the client to log in/);
      expect(result.ms).toBeGreaterThanOrEqual(900);
      expect(result.ms).toBeLessThan(3_000);
    } finally {
      clearInterval(drip);
    }
    await waitFor(() => listener.connections === 0, 'the slow session to end');
    await expectServed(listener.port, password);
  });

  it('times out a client that stops in the middle of SCRAM', async () => {
    const { listener, password } = await directListener({ handshakeTimeoutMs: 1_000 });
    const client = await RawClient.connect(listener.port);
    sockets.add(client.socket);
    client.write(startupMessage(USER, 'orders'));
    await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
    client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, new ScramClient(password).first()));
    expectError(await client.finish(5_000), '08006');
    await expectServed(listener.port, password);
  });

  describe('on a listener with client TLS', () => {
    let port: number;
    let password: string;
    beforeAll(async () => {
      const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
      const cert = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      ({ listener: { port }, password } = await directListener({ clientTls: createSecureContext({ cert: cert.certPem, key: cert.keyPem }) }));
    });
    const tlsClient = (overrides: Partial<pg.ClientConfig> = {}) => pgClient(port, password, { ssl: { ca: azure.caPem }, ...overrides });

    it('serves a client over TLS', async () => {
      const c = tlsClient();
      await c.connect();
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      await c.end();
    });

    it('refuses a wrong password over TLS with 28P01', async () => {
      const c = tlsClient({ password: 'wrong' });
      const error = (await c.connect().then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined;
      await c.end().catch(() => {});
      expect(error?.code).toBe('28P01');
      await expectServed(port, password);
    });

    it("refuses bytes sent in clear behind the SSLRequest with 08P01 over TLS, after 'S' and the handshake, as PostgreSQL does", async () => {
      const raw = tcpConnect(port, '127.0.0.1');
      sockets.add(raw);
      await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
      raw.write(Buffer.concat([encodeSslRequest(), startupMessage(USER, 'orders')]));
      const answer = await new Promise<Buffer>((resolve) => raw.once('data', resolve));
      expect(answer.toString('latin1')).toBe('S');
      const secure = tlsConnect({ socket: raw, ca: azure.caPem, servername: 'localhost' });
      const received: Buffer[] = [];
      secure.on('data', (chunk: Buffer) => received.push(chunk));
      await new Promise<void>((resolve) => secure.once('close', () => resolve()));
      expect(secure.authorized).toBe(true);
      const parsed = parseBackend(Buffer.concat(received));
      expect(parsed.errors).toEqual([
        expect.objectContaining({ S: 'FATAL', C: '08P01', M: 'received unencrypted data after SSL request', D: expect.stringContaining('man-in-the-middle') }),
      ]);
      await expectServed(port, password);
    });
  });

  describe('a client that vanishes mid-handshake', () => {
    it.each([
      ['closes right after its startup packet', 'startup', 'close'],
      ['resets right after its startup packet', 'startup', 'reset'],
      ['closes after its SASLInitialResponse', 'sasl-initial', 'close'],
      ['resets after its SASLInitialResponse', 'sasl-initial', 'reset'],
      ['closes right after its last SCRAM message, while the broker logs in upstream', 'sasl-final', 'close'],
      ['resets right after its last SCRAM message, while the broker logs in upstream', 'sasl-final', 'reset'],
    ] as const)('a client that %s: the session and any upstream connection end', async (_name, stage, how) => {
      const { listener, password } = await directListener();
      const applicationName = `vanish-${stage}-${how}-${Date.now()}`;
      const client = await RawClient.connect(listener.port);
      sockets.add(client.socket);
      client.write(startupMessage(USER, 'orders', { application_name: applicationName }));
      if (stage !== 'startup') {
        await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
        const scram = new ScramClient(password);
        client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
        if (stage === 'sasl-final') {
          const serverFirst = await client.until((b) => authRequest(b, 11), 'AuthenticationSASLContinue');
          client.write(encodeSaslResponse(scram.final(Buffer.from(serverFirst))));
        }
      }
      if (how === 'reset') client.socket.resetAndDestroy();
      else client.socket.destroy();
      await waitFor(() => listener.connections === 0, 'the session to end', 10_000);
      // An upstream login that was under way must not outlive its client.
      await waitFor(async () => (await backends(applicationName)) === 0, 'the upstream connection to close', 10_000);
      await expectServed(listener.port, password);
    });
  });
});

describe('upstream failures', () => {
  it('closes the client when the upstream dies mid-query and serves the next one', async () => {
    const front = azure.servers.find((s) => s.name === 'orders')!;
    const links = new Set<Socket>();
    const relayPort = await listen(
      createServer((inbound) => {
        const outbound = tcpConnect({ host: front.host, port: front.port });
        for (const s of [inbound, outbound]) {
          links.add(s);
          sockets.add(s);
          s.on('error', () => {});
          s.on('close', () => {
            links.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      }),
    );
    const t = await tunnel({ target: targetFor('orders', { host: '127.0.0.1', port: relayPort }) });
    const c = pgClient(t.port, t.password);
    await c.connect();
    const marker = `killed-upstream-${Date.now()}`;
    const query = c.query(`select pg_sleep(5) /* ${marker} */`).then(
      () => undefined,
      (e: Error) => e,
    );
    await waitFor(async () => {
      const { rows } = await azure.realPostgres.query("select 1 from pg_stat_activity where query like $1 and state = 'active'", [`%${marker}%`]);
      return rows.length > 0;
    }, 'the query to run');
    const killed = Date.now();
    for (const s of links) s.destroy();
    const error = await query;
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toMatch(/terminated|ECONNRESET|closed/i);
    expect(Date.now() - killed).toBeLessThan(2_000);
    await c.end().catch(() => {});
    await waitFor(() => t.connections === 0, 'the broken session to end');
    await expectServed(t.port, t.password);
    await expectServed();
  });

  it('sends only the SSLRequest to an upstream without TLS', async () => {
    const received: Buffer[] = [];
    const port = await listen(
      createServer((s) => {
        s.on('data', (d: Buffer) => {
          received.push(d);
          s.write('N');
        });
      }),
    );
    const t = await tunnel({ target: targetFor('orders', { port }) });
    const client = await RawClient.connect(t.port);
    sockets.add(client.socket);
    await loginThrough(client, t.password);
    expectError(await client.finish(), '08001', /refused TLS/);
    expect(Buffer.concat(received)).toEqual(encodeSslRequest());
    await expectServed();
  });

  it('refuses an upstream certificate for another name and sends it nothing', async () => {
    const fake = await fakeTlsUpstream(['elsewhere.example.net'], () => {});
    const t = await tunnel({ target: targetFor('orders', { port: fake.port }) });
    const client = await RawClient.connect(t.port);
    sockets.add(client.socket);
    await loginThrough(client, t.password);
    const error = expectError(await client.finish(), '08001');
    expect(error.M).toContain('orders.postgres.database.azure.com');
    expect(error.M).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(Buffer.concat(fake.decrypted)).toHaveLength(0);
    expectNoToken(Buffer.concat(fake.raw));
    await expectServed();
  });

  it('refuses an unknown authentication method (GSS) with 28000 and never writes the token', async () => {
    const fake = await fakeTlsUpstream(['orders.postgres.database.azure.com'], (tls, decrypted) => {
      let answered = false;
      tls.on('data', () => {
        const bytes = Buffer.concat(decrypted);
        if (!answered && bytes.length >= 4 && bytes.length >= bytes.readInt32BE(0)) {
          answered = true;
          tls.write(encodeMessage(0x52, int32(7))); // AuthenticationGSS
        }
      });
    });
    const t = await tunnel({ target: targetFor('orders', { port: fake.port }) });
    const client = await RawClient.connect(t.port);
    sockets.add(client.socket);
    await loginThrough(client, t.password);
    const error = expectError(await client.finish(), '28000');
    expect(error.M).toMatch(/authentication method .*\(code 7\)/);
    await waitFor(() => fake.closed(), 'the broker to hang up on the fake server');
    // What reached the fake server after TLS: the StartupMessage and nothing else, no PasswordMessage.
    const decrypted = Buffer.concat(fake.decrypted);
    const startupLength = decrypted.readInt32BE(0);
    expect(decrypted.subarray(8, startupLength).toString()).toContain(`user\0${USER}\0`);
    const after = frontendCodes(decrypted.subarray(startupLength));
    expect(after).not.toContain('p');
    expect(after.filter((code) => code !== 'X')).toEqual([]);
    expectNoToken(decrypted);
    expectNoToken(Buffer.concat(fake.raw));
    await expectServed();
  });

  it('does not buffer a client that floods while its upstream login stalls', async () => {
    const port = await listen(
      createServer((s) => {
        s.once('data', () => s.write('S')); // then stall the TLS handshake
      }),
    );
    const connectTimeoutMs = 2_000;
    const t = await tunnel({ target: targetFor('orders', { port, connectTimeoutMs }) });
    const client = await RawClient.connect(t.port);
    sockets.add(client.socket);
    await loginThrough(client, t.password);
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 20);
    const chunk = Buffer.alloc(1024 * 1024, 0x51);
    let written = 0;
    const pump = (): void => {
      while (!client.closed && !client.socket.readableEnded && written < 1024 * 1024 * 1024) {
        written += chunk.length;
        if (!client.socket.write(chunk)) {
          client.socket.once('drain', pump);
          return;
        }
      }
    };
    let result: RawResult;
    try {
      pump();
      // The flood is under way: the broker pushes back, or a good part of it went through.
      await waitFor(() => client.socket.writableNeedDrain || written >= 256 * 1024 * 1024, 'the flood to fill the socket');
      await expectServed(); // the broker is not busy copying the flood
      result = await client.finish(10_000);
    } finally {
      clearInterval(sample);
    }
    console.log(`flood: ${written >> 20} MiB written, buffers grew by ${(peak - baseline) >> 20} MiB`);
    expect(peak - baseline).toBeLessThan(16 * 1024 * 1024);
    expectError(result, '08001', /TLS handshake with orders timed out/);
    await expectServed();
  });

  it('gives up on a TLS handshake that never completes within the connect timeout', async () => {
    const port = await listen(
      createServer((s) => {
        s.once('data', () => s.write('S')); // then swallow the ClientHello forever
      }),
    );
    const connectTimeoutMs = 700;
    const t = await tunnel({ target: targetFor('orders', { port, connectTimeoutMs }) });
    const client = await RawClient.connect(t.port);
    sockets.add(client.socket);
    const started = Date.now();
    await loginThrough(client, t.password);
    const result = await client.finish(10_000);
    const elapsed = Date.now() - started;
    expectError(result, '08001', /TLS handshake with orders timed out/);
    expect(elapsed).toBeGreaterThanOrEqual(connectTimeoutMs - 50);
    expect(elapsed).toBeLessThan(connectTimeoutMs + 1_500);
    await expectServed();
  });
});

/** Startup + SCRAM with the tunnel password on a raw client; the broker then goes upstream. */
async function loginThrough(client: RawClient, password: string): Promise<void> {
  client.write(startupMessage(USER, 'orders'));
  await client.until((b) => authRequest(b, 10), 'AuthenticationSASL');
  const scram = new ScramClient(password);
  client.write(encodeSaslInitialResponse(SCRAM_MECHANISM, scram.first()));
  const serverFirst = await client.until((b) => authRequest(b, 11), 'AuthenticationSASLContinue');
  client.write(encodeSaslResponse(scram.final(Buffer.from(serverFirst))));
  await client.until((b) => authRequest(b, 12), 'AuthenticationSASLFinal');
}

/** Message types of a frontend byte stream (throws on a torn message). */
function frontendCodes(bytes: Buffer): string[] {
  const codes: string[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const length = bytes.readInt32BE(offset + 1);
    codes.push(String.fromCharCode(bytes[offset]!));
    offset += 1 + length;
    if (length < 4 || offset > bytes.length) throw new Error('torn frontend message');
  }
  return codes;
}

/**
 * A server that answers SSLRequest with 'S' and does TLS with a certificate from the emulator CA
 * for `dnsNames`; records the raw bytes and the decrypted ones.
 */
async function fakeTlsUpstream(
  dnsNames: string[],
  behave: (tls: TLSSocket, decrypted: Buffer[]) => void,
): Promise<{ port: number; raw: Buffer[]; decrypted: Buffer[]; closed: () => boolean }> {
  const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
  const cert = await ca.issueServerCertificate({ dnsNames });
  const context: SecureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const raw: Buffer[] = [];
  const decrypted: Buffer[] = [];
  let open = 0;
  const port = await listen(
    createServer((socket) => {
      open += 1;
      socket.on('close', () => (open -= 1));
      socket.on('data', (d: Buffer) => raw.push(d));
      socket.once('data', () => {
        socket.write('S');
        const tls = new TLSSocket(socket, { isServer: true, secureContext: context });
        sockets.add(tls);
        tls.on('error', () => socket.destroy());
        tls.on('data', (d: Buffer) => decrypted.push(d));
        behave(tls, decrypted);
      });
    }),
  );
  return { port, raw, decrypted, closed: () => open === 0 };
}
