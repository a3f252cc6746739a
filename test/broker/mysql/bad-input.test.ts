/**
 * Bad input from MySQL clients and bad behaviour from upstream servers. In every case the affected
 * client gets an ERR packet with a real code and SQLSTATE (decoded here) or a clean close, no token
 * leaves the machine in clear, and the next client is served at once: each case ends with a real
 * mysql2 login and `select 1`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import { createPrng } from '../../helpers/prng.js';
import { BrokerFixture, JWT, USER } from '../../helpers/broker-fixtures.js';
import { CLIENT_CAPABILITIES, RawMySql, errOf, loginResponse } from '../../helpers/mysql-raw.js';
import { loadOrCreateCa } from '../../../src/emulator/ca.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import { runMySqlSession, type MySqlSessionOptions } from '../../../src/broker/mysql/session.js';
import { NO_AUDIT } from '../../../src/broker/audit.js';
import { Capability } from '../../../src/broker/mysql/codec/constants.js';
import { createScramble } from '../../../src/broker/mysql/auth.js';
import { encodeAuthSwitchRequest } from '../../../src/broker/mysql/codec/auth-messages.js';
import { encodeHandshakeV10, encodeSslRequest } from '../../../src/broker/mysql/codec/handshake.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { encodeErr } from '../../../src/broker/mysql/codec/responses.js';
import type { Packet } from '../../../src/broker/mysql/codec/packet-decoder.js';

const mariadbd = await findTool('mariadbd');
/** Codes a broken client may get: bad handshake, packet too large, out of order, read error, TLS refused. */
const CLIENT_FAULT_CODES = new Set([1043, 1153, 1156, 1158]);

const broker = new BrokerFixture();
const { sockets } = broker;
const targetFor = broker.target.bind(broker);
const listen = broker.listen.bind(broker);
let azure: BrokerFixture['azure'];
let token: string;
let main: Tunnel;

function tunnel(overrides: Partial<TunnelOptions> = {}): Promise<Tunnel> {
  return broker.tunnel({ target: targetFor('shopdb'), dbName: 'shop', ...overrides });
}

/** A broker listener run directly, for session options a tunnel does not expose. */
async function directListener(options: Partial<MySqlSessionOptions> = {}): Promise<{ port: number; password: string }> {
  const password = 'direct-listener-password';
  const listener = await broker.listener((socket) =>
    runMySqlSession(socket, {
      target: targetFor('shopdb'),
      localPassword: password,
      defaults: { dbUser: USER, dbName: 'shop' },
      authorize: () => ({ allowed: true }),
      getToken: broker.getToken,
      audit: NO_AUDIT,
      ...options,
    }),
  );
  return { port: listener.port, password };
}

/** The next client is served at once: a real login and `select 1`. */
async function expectServed(port = main.port, password = main.password): Promise<void> {
  const started = Date.now();
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: USER, password, database: 'shop', connectTimeout: 10_000 });
  try {
    const [[row]] = await c.query<mysql.RowDataPacket[]>('select 1 as one');
    expect(row!.one).toBe(1);
  } finally {
    await c.end().catch(() => {});
  }
  expect(Date.now() - started).toBeLessThan(3_000);
}

async function raw(port = main.port): Promise<RawMySql> {
  const client = await RawMySql.connect(port);
  sockets.add(client.socket);
  return client;
}

/** Every packet until the broker closes (bounded). */
async function drain(client: RawMySql, timeoutMs = 5_000): Promise<Packet[]> {
  const packets: Packet[] = [];
  for (;;) {
    const packet = await client.next(timeoutMs);
    if (!packet) return packets;
    packets.push(packet);
  }
}

function expectNoToken(packets: Packet[]): void {
  const bytes = Buffer.concat(packets.map((p) => p.payload));
  expect(bytes.includes(token)).toBe(false);
  expect(bytes.toString('latin1')).not.toMatch(JWT);
}

/** The ERR a session ended with (its last packet, then a close). */
function lastErr(packets: Packet[]) {
  expectNoToken(packets);
  return errOf(packets.at(-1));
}

function greeting(capabilities = CLIENT_CAPABILITIES | Capability.Ssl, plugin = 'mysql_native_password'): Buffer {
  return encodePacket(0, encodeHandshakeV10({ serverVersion: '8.0.99-fake', connectionId: 99, authPluginData: createScramble(), capabilities, characterSet: 45, statusFlags: 2, authPluginName: plugin, mariadbCapabilities: 0 }));
}

/** Pre-auth connections MariaDB holds (the front opens one per client before greeting it). */
async function unauthenticated(): Promise<number> {
  const rows = await azure.realMariaDb!.query<mysql.RowDataPacket[]>("select count(*) as n from information_schema.processlist where user = 'unauthenticated user'");
  return Number(rows[0]!.n);
}

describe.skipIf(mariadbd.skip)('MySQL broker: bad input', () => {
  beforeAll(async () => {
    await broker.start();
    azure = broker.azure;
    token = await broker.getToken();
    main = await tunnel();
    await expectServed();
  });

  afterAll(() => broker.stop());

  describe('from a client', () => {
    it('answers random bytes after the greeting with an 08S01 ERR or a clean close', async () => {
      const prng = createPrng(0x5eed);
      for (const size of [1, 3, 4, 5, 8, 13, 36, 64, 512, 4096, 65_536, 300_000]) {
        const client = await raw();
        await client.greeting();
        client.socket.write(prng.bytes(size));
        client.socket.end();
        const packets = await drain(client);
        if (packets.length > 0) {
          const err = lastErr(packets);
          expect(CLIENT_FAULT_CODES, `size ${size}: ${err.code} ${err.message}`).toContain(err.code);
          expect(err.sqlState).toBe('08S01');
        }
      }
      await expectServed();
    });

    it('closes quietly on a login packet cut at any byte, and judges a shortened one', async () => {
      const probe = await raw();
      const full = loginResponse(await probe.greeting(), { user: USER, password: 'wrong' });
      probe.close();
      for (let cut = 0; cut < full.length; cut += 3) {
        const client = await raw();
        await client.greeting();
        client.socket.write(encodePacket(1, full).subarray(0, 4 + cut));
        client.socket.end();
        expect(await drain(client)).toEqual([]);

        // Cut inside the plugin name, the login names a plugin azdb does not know: it switches to native.
        const shortened = await raw();
        await shortened.greeting();
        shortened.send(1, full.subarray(0, cut));
        const answer = await shortened.next();
        if (answer?.payload[0] === 0xfe) shortened.send(3, Buffer.alloc(20, 1));
        const packets = [answer!, ...(await drain(shortened))];
        const err = lastErr(packets);
        expect([1045, 1158]).toContain(err.code);
      }
      await expectServed();
    });

    it('refuses a login packet claiming 16 MiB with 1153 while the client is still sending it', async () => {
      const client = await raw();
      await client.greeting();
      const header = Buffer.from([0xff, 0xff, 0xfe, 1]);
      client.socket.write(header);
      const stream = setInterval(() => client.socket.write(Buffer.alloc(16 * 1024, 0x61)), 1);
      const packets = await drain(client);
      clearInterval(stream);
      expect(lastErr(packets)).toMatchObject({ code: 1153, sqlState: '08S01' });
      await expectServed();
    });

    it('refuses a login packet out of sequence with 1156', async () => {
      const client = await raw();
      const g = await client.greeting();
      client.send(5, loginResponse(g, { user: USER, password: main.password }));
      const packets = await drain(client);
      expect(lastErr(packets)).toMatchObject({ code: 1156, sqlState: '08S01' });
      expect(packets.at(-1)!.sequenceId).toBe(1);
      await expectServed();
    });

    it('refuses an SSLRequest on a plain listener with a clear ERR', async () => {
      const client = await raw();
      await client.greeting();
      client.send(1, encodeSslRequest({ capabilities: CLIENT_CAPABILITIES, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 }));
      const err = lastErr(await drain(client));
      expect(err).toMatchObject({ code: 1043, sqlState: '08S01' });
      expect(err.message).toContain('does not speak TLS');
      await expectServed();
    });

    it('times out a stalled client with 1043 while another is served, holding no server connection meanwhile', async () => {
      const direct = await directListener({ handshakeTimeoutMs: 400 });
      const baseline = await unauthenticated();
      const silent = await raw(direct.port);
      await silent.greeting();
      const trickle = await raw(direct.port);
      const g = await trickle.greeting();
      const login = encodePacket(1, loginResponse(g, { user: USER, password: direct.password }));
      trickle.socket.write(login.subarray(0, 10));
      // azdb greets from what it learned of the server: no server connection before the login.
      expect(await unauthenticated()).toBeLessThanOrEqual(baseline);
      await expectServed(direct.port, direct.password);
      const started = Date.now();
      for (const client of [silent, trickle]) {
        expect(lastErr(await drain(client))).toMatchObject({ code: 1043, sqlState: '08S01' });
      }
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it('opens no upstream connection for clients in the middle of their login, and ends their sessions when they leave', async () => {
      const baseline = await unauthenticated();
      const greeted = await Promise.all(Array.from({ length: 20 }, () => raw()));
      for (const client of greeted) await client.greeting();
      // Greeted and waiting for the login: a server connection opened before it would sit here unauthenticated.
      expect(await unauthenticated()).toBeLessThanOrEqual(baseline);
      for (const client of greeted) client.close();
      await waitFor(() => main.connections === 0, 'the sessions to end');
      await expectServed();
    });

    it('ends a logged-in session that breaks packet framing, and keeps serving', async () => {
      const client = await raw();
      const g = await client.greeting();
      client.send(1, loginResponse(g, { user: USER, password: main.password, database: 'shop' }));
      const ok = await client.next();
      expect(ok!.payload[0]).toBe(0);
      // A continued (16 MiB - 1) packet whose continuation skips a sequence id.
      const first = Buffer.alloc(4 + 0xffffff, 0x20);
      first.writeUIntLE(0xffffff, 0, 3);
      first[3] = 0;
      first[4] = 0x03;
      client.socket.write(first);
      client.socket.write(Buffer.from([1, 0, 0, 7, 0x20]));
      await client.closed;
      await expectServed();
    });
  });

  describe('from an upstream server', () => {
    /** Logs in to tunnel `t` with a raw client: every packet after azdb's greeting, until it closes. */
    async function afterLogin(t: Tunnel): Promise<Packet[]> {
      const client = await raw(t.port);
      const g = await client.greeting();
      client.send(1, loginResponse(g, { user: USER, password: t.password }));
      return drain(client);
    }

    it("greets the client itself, and passes an upstream ERR greeting on once it has logged in", async () => {
      const port = await listen(createServer((s) => s.end(encodePacket(0, encodeErr({ code: 1040, sqlState: '08004', message: 'Too many connections' })))));
      const t = await tunnel({ target: targetFor('shopdb', { port }) });
      const packets = await afterLogin(t);
      expect(packets).toHaveLength(1);
      expect(packets[0]!.sequenceId).toBe(2);
      expect(errOf(packets[0])).toMatchObject({ code: 1040, sqlState: '08004', message: 'Too many connections' });
      await expectServed();
    });

    it('answers a stranger with 1045, not with news of the server', async () => {
      const silent = await listen(createServer((s) => s.destroy()));
      const t = await tunnel({ target: targetFor('shopdb', { port: silent }) });
      const client = await raw(t.port);
      const g = await client.greeting();
      client.send(1, loginResponse(g, { user: USER, password: 'not the tunnel password' }));
      const err = lastErr(await drain(client));
      expect(err).toMatchObject({ code: 1045, sqlState: '28000' });
      expect(err.message).not.toContain(String(silent));
    });

    it('answers a garbage greeting with 1158 and a silent server with 1159 within the connect timeout, server-range codes', async () => {
      const garbage = await listen(createServer((s) => s.write(encodePacket(0, Buffer.from('HTTP/1.1 400 Bad Request\r\n')))));
      const silent = await listen(createServer(() => {}));
      const t1 = await tunnel({ target: targetFor('shopdb', { port: garbage }) });
      expect(lastErr(await afterLogin(t1))).toMatchObject({ code: 1158, sqlState: '08S01' });
      const t2 = await tunnel({ target: targetFor('shopdb', { port: silent, connectTimeoutMs: 300 }) });
      const started = Date.now();
      const err = lastErr(await afterLogin(t2));
      expect(err).toMatchObject({ code: 1159, sqlState: '08S01' });
      expect(err.message).toContain('azdb doctor shopdb');
      expect(Date.now() - started).toBeLessThan(3_000);
      await expectServed();
    });

    it('never answers an unknown auth plugin with the token; the clear token goes only inside TLS', async () => {
      const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
      const cert = await ca.issueServerCertificate({ dnsNames: ['fake.mysql.test'] });
      const secureContext = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
      let plugin = 'dialog';
      const plain: Buffer[] = [];
      const secure: Buffer[] = [];
      const port = await listen(
        createServer((s) => {
          s.write(greeting());
          s.once('data', (d: Buffer) => {
            plain.push(d.subarray(0, 36));
            s.pause();
            if (d.length > 36) s.unshift(d.subarray(36));
            const tls = new TLSSocket(s, { isServer: true, secureContext });
            tls.on('error', () => s.destroy());
            let answered = false;
            tls.on('data', (chunk: Buffer) => {
              secure.push(chunk);
              if (answered) return;
              answered = true;
              tls.write(encodePacket(3, encodeAuthSwitchRequest({ pluginName: plugin, pluginData: Buffer.concat([createScramble(), Buffer.from([0])]) })));
            });
          });
        }),
      );
      const target = targetFor('shopdb', { port, tls: { mode: 'verify-full', ca: azure.caPem, caSource: 'the emulator CA', serverName: 'fake.mysql.test' } });
      const events: string[] = [];
      const t = await tunnel({ target, onEvent: (e) => events.push(JSON.stringify(e)) });
      const err = lastErr(await drain(await raw(t.port).then(async (c) => {
        c.send(1, loginResponse(await c.greeting(), { user: USER, password: t.password, database: 'shop' }));
        return c;
      })));
      expect(err, events.join('\n')).toMatchObject({ code: 1251, sqlState: '08004' });
      expect(err.message).toContain('"dialog"');
      await waitFor(() => secure.length > 0, 'the login to reach the fake');
      expect(Buffer.concat(plain)).toHaveLength(36);
      expect(Buffer.concat(secure).includes(token)).toBe(false);

      plugin = 'mysql_clear_password';
      secure.length = 0;
      plain.length = 0;
      const c = await raw(t.port);
      c.send(1, loginResponse(await c.greeting(), { user: USER, password: t.password, database: 'shop' }));
      await waitFor(() => Buffer.concat(secure).includes(Buffer.from(`${token}\0`)), 'the clear token inside TLS');
      expect(Buffer.concat(plain).includes(token)).toBe(false);
      c.close();
      await expectServed();
    });
  });
});

