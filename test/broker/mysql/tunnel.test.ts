/**
 * MySQL tunnels against the emulated Azure Database for MySQL over the run's real MariaDB: the
 * real mariadb client and mysql2 (text and prepared statements) through azdb, with the front
 * asking for mysql_clear_password (as Azure does) and mysql_native_password.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import { loadOrCreateCa } from '../../../src/emulator/ca.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import { createMemoryAuditSink } from '../../../src/broker/audit.js';
import { Capability, MariaDbCapability } from '../../../src/broker/mysql/codec/constants.js';
import { encodeHandshakeV10 } from '../../../src/broker/mysql/codec/handshake.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { createScramble, scrambleNativePassword } from '../../../src/broker/mysql/auth.js';
import { decodeAuthSwitchRequest, scrambleFromPluginData } from '../../../src/broker/mysql/codec/auth-messages.js';
import { CLIENT_CAPABILITIES, RawMySql, errOf, loginResponse } from '../../helpers/mysql-raw.js';
import { comQuery } from '../../helpers/mysql-payloads.js';
import { encodeChangeUser } from '../../../src/broker/mysql/codec/commands.js';
import { BrokerFixture, JWT, USER } from '../../helpers/broker-fixtures.js';
import { createAadUser } from '../../../src/emulator/mysql-aad-users.js';
import { DEMO_IDENTITY } from '../../../src/emulator/demo-identity.js';

const mariadbd = await findTool('mariadbd');
const mariadb = await findTool('mariadb', ['mysql']);
const broker = new BrokerFixture();
const targetFor = broker.target.bind(broker);
let azure: BrokerFixture['azure'];
let tokens: BrokerFixture['tokens'];

function tunnel(overrides: Partial<TunnelOptions> = {}): Promise<Tunnel> {
  return broker.tunnel({ target: targetFor('shopdb'), dbName: 'shop', audit: createMemoryAuditSink({ queries: false }), ...overrides });
}

function connectTo(t: Tunnel, overrides: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: t.database || undefined, connectTimeout: 10_000, ...overrides });
}

interface LoginFailure {
  errno?: number;
  sqlState?: string;
  message: string;
}

async function loginError(t: Tunnel, overrides: mysql.ConnectionOptions = {}): Promise<LoginFailure> {
  const error = await connectTo(t, overrides).then(
    async (c) => {
      await c.end();
      return undefined;
    },
    (e: unknown) => e as LoginFailure,
  );
  if (!error) throw new Error('login unexpectedly succeeded');
  return error;
}

/** The real client, password in MYSQL_PWD. */
function runMariadb(t: Tunnel, sql: string, extra: string[] = []) {
  return execa(
    mariadb.path!,
    ['--no-defaults', '--protocol=TCP', '-h', t.host, '-P', String(t.port), '-u', t.user, '--batch', '--skip-column-names', ...extra, ...(t.database ? [t.database] : []), '-e', sql],
    { env: { MYSQL_PWD: t.password }, extendEnv: false, reject: false, timeout: 60_000 },
  );
}

/** A plain TCP server whose connections get `greeting` and record what they receive. */
async function fakeServer(greeting: Buffer): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = createServer((s: Socket) => {
    s.on('data', (d) => received.push(d));
    s.write(greeting);
  });
  return { port: await broker.listen(server), received };
}

async function processlist(marker: string): Promise<Array<{ id: number }>> {
  return azure.realMariaDb!.query<mysql.RowDataPacket[]>('select id from information_schema.processlist where info like ? and info not like ?', [
    `%${marker}%`,
    '%information_schema.processlist%',
  ]) as Promise<Array<{ id: number }>>;
}

describe.skipIf(mariadbd.skip)('MySQL tunnel against emulated Azure over real MariaDB', () => {
  beforeAll(async () => {
    await broker.start();
    ({ azure, tokens } = broker);
  });

  afterAll(() => broker.stop());

  it('gives the contract uri and logs mysql2 in with the clear-password token: text and prepared queries', async () => {
    const t = await tunnel();
    expect(t.uri).toBe(`mysql://${USER}@127.0.0.1:${t.port}/shop`);
    const front = azure.mysqlFronts.get('shopdb')!;
    const before = front.logins;
    const c = await connectTo(t, { multipleStatements: true });
    try {
      const [[who]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user, database() as db, connection_id() as id');
      // connection_id() is the server's thread; the greeting's id (c.threadId) is azdb's own.
      expect(who).toEqual({ user: `${USER}@%`, db: 'shop', id: expect.any(Number) });
      expect(c.threadId).toBeGreaterThanOrEqual(0x8000_0000);
      const [[count]] = await c.query<mysql.RowDataPacket[]>('select count(*) as n from customers');
      expect(Number(count!.n)).toBeGreaterThan(0);
      const [rows] = await c.execute<mysql.RowDataPacket[]>('select ? + ? as sum, ? as text', [40, 2, 'héllo']);
      expect(rows[0]).toEqual({ sum: 42, text: 'héllo' });
      const [again] = await c.execute<mysql.RowDataPacket[]>('select ? + ? as sum, ? as text', [1, 2, 'x']);
      expect(again[0]).toEqual({ sum: 3, text: 'x' });
      const [multi] = await c.query<mysql.RowDataPacket[][]>({ sql: 'select 1 as a; select 2 as b' });
      expect(multi).toHaveLength(2);
    } finally {
      await c.end();
    }
    expect(front.logins).toBe(before + 1);
  });

  it('answers an upstream that asks for mysql_native_password with the token', async () => {
    const front = azure.mysqlFronts.get('shopdb')!;
    front.setAuthMethod('native');
    try {
      const t = await tunnel();
      const before = front.logins;
      const c = await connectTo(t);
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe(`${USER}@%`);
      const [prepared] = await c.execute<mysql.RowDataPacket[]>('select ? as v', ['native']);
      expect(prepared[0]!.v).toBe('native');
      await c.end();
      expect(front.logins).toBe(before + 1);
    } finally {
      front.setAuthMethod('clear');
    }
  });

  it('greets with its own scramble and connection id and the server\'s version, offering only what it relays', async () => {
    const t = await tunnel();
    const raw = await RawMySql.connect(t.port);
    try {
      const greeting = await raw.greeting();
      expect(greeting.authPluginName).toBe('mysql_native_password');
      expect(greeting.serverVersion).toMatch(/MariaDB/);
      expect(greeting.capabilities & Capability.Ssl).toBe(0);
      expect(greeting.capabilities & Capability.Compress).toBe(0);
      // MariaDB's extended capabilities, all but COM_MULTI (commands the gate could not see).
      expect(greeting.mariadbCapabilities & MariaDbCapability.ExtendedMetadata).toBe(MariaDbCapability.ExtendedMetadata);
      expect(greeting.mariadbCapabilities & MariaDbCapability.ComMulti).toBe(0);
      // azdb's own id, minted above the server's: no server thread exists for a client not logged in.
      expect(greeting.connectionId).toBeGreaterThanOrEqual(0x8000_0000);
      const rows = await azure.realMariaDb!.query<mysql.RowDataPacket[]>('select id from information_schema.processlist where id = ?', [greeting.connectionId]);
      expect(rows).toHaveLength(0);
    } finally {
      raw.close();
    }
  });

  it('accepts the tunnel password proven with caching_sha2_password (fast auth) and switches other plugins to native', async () => {
    const t = await tunnel();
    const sha2 = await RawMySql.connect(t.port);
    const greeting = await sha2.greeting();
    sha2.send(1, loginResponse(greeting, { user: t.user, password: t.password, plugin: 'caching_sha2_password', database: 'shop' }));
    const more = await sha2.next();
    expect(more).toMatchObject({ sequenceId: 2 });
    expect([...more!.payload]).toEqual([0x01, 0x03]);
    const ok = await sha2.next();
    expect(ok).toMatchObject({ sequenceId: 3 });
    expect(ok!.payload[0]).toBe(0x00);
    sha2.close();

    const other = await RawMySql.connect(t.port);
    const greeting2 = await other.greeting();
    other.send(1, loginResponse(greeting2, { user: t.user, password: t.password, plugin: 'client_ed25519', database: 'shop' }));
    const request = await other.next();
    expect(request).toMatchObject({ sequenceId: 2 });
    const switchTo = decodeAuthSwitchRequest(request!.payload);
    expect(switchTo.pluginName).toBe('mysql_native_password');
    other.send(3, scrambleNativePassword(t.password, scrambleFromPluginData(switchTo.pluginData)));
    const ok2 = await other.next();
    expect(ok2).toMatchObject({ sequenceId: 4 });
    expect(ok2!.payload[0]).toBe(0x00);
    other.close();

    const wrong = await RawMySql.connect(t.port);
    const greeting3 = await wrong.greeting();
    wrong.send(1, loginResponse(greeting3, { user: t.user, password: 'nope', plugin: 'caching_sha2_password' }));
    const refused = await wrong.next();
    expect(refused).toMatchObject({ sequenceId: 2 });
    expect(errOf(refused)).toMatchObject({ code: 1045, sqlState: '28000' });
    await wrong.closed;
  });

  it('logs in as user@server on a single server', async () => {
    const t = await tunnel({ target: targetFor('legacy-mysql') });
    const c = await connectTo(t);
    const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user');
    expect(row!.user).toBe(`${USER}@%`);
    await c.end();
  });

  it('refuses a wrong tunnel password with 1045 and keeps serving', async () => {
    const t = await tunnel();
    const error = await loginError(t, { password: 'not-the-password' });
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(error.message).toContain(`Access denied for user '${USER}'@'127.0.0.1' (using password: YES)`);
    expect(error.message).toContain('changes with every tunnel');
    const c = await connectTo(t);
    await c.end();
  });

  it('refuses what the roles deny with 1044 pointing at azdb db ls', async () => {
    const t = await tunnel({ authorize: (u, d) => (d === 'shop' ? { allowed: false, reason: 'no role allows it' } : { allowed: true }) });
    const error = await loginError(t);
    expect(error).toMatchObject({ errno: 1044, sqlState: '42000' });
    expect(error.message).toContain(`user '${USER}' to database 'shop'`);
    expect(error.message).toContain('azdb db ls');
  });

  it('reports a failing credential source with azdb creds', async () => {
    const t = await tunnel({ getToken: () => Promise.reject(new Error('ManagedIdentityCredential failed: endpoint unreachable')) });
    const error = await loginError(t);
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(error.message).toContain('ManagedIdentityCredential');
    expect(error.message).toContain('azdb creds');
  });

  it('fails TLS verification on a wrong server name and names it', async () => {
    const t = await tunnel({ target: targetFor('shopdb', { tls: { mode: 'verify-full', ca: azure.caPem, caSource: 'the emulator CA', serverName: 'shopdb.postgres.database.azure.com' } }) });
    const error = await loginError(t);
    expect(error).toMatchObject({ errno: 1429, sqlState: '08001' });
    expect(error.message).toContain('shopdb.postgres.database.azure.com');
    expect(error.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altnames/);
  });

  it('never sends a token to a server whose greeting does not offer TLS', async () => {
    const capabilities = Capability.LongPassword | Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.ConnectWithDb;
    const greeting = encodePacket(0, encodeHandshakeV10({
      serverVersion: '8.0.99-plain', connectionId: 7, authPluginData: createScramble(), capabilities, characterSet: 45, statusFlags: 2,
      authPluginName: 'mysql_clear_password', mariadbCapabilities: 0,
    }));
    const fake = await fakeServer(greeting);
    const t = await tunnel({ target: targetFor('shopdb', { port: fake.port }) });
    const error = await loginError(t);
    expect(error).toMatchObject({ errno: 1429, sqlState: '08001' });
    expect(error.message).toContain('does not offer TLS');
    expect(Buffer.concat(fake.received)).toHaveLength(0);
  });

  it('refuses clearly when the server no longer offers what the client agreed on from the learned greeting, and greets the next with the new facts', async () => {
    const base = Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.ConnectWithDb | Capability.Transactions | Capability.Ssl;
    const greetingWith = (capabilities: number) =>
      encodePacket(0, encodeHandshakeV10({
        serverVersion: '8.0.99-changing', connectionId: 7, authPluginData: createScramble(), capabilities, characterSet: 45, statusFlags: 2,
        authPluginName: 'mysql_clear_password', mariadbCapabilities: 0,
      }));
    // The probe sees multi-results; the connection after the client's login does not.
    const greetings = [greetingWith(base | Capability.MultiResults), greetingWith(base)];
    const received: Buffer[] = [];
    const server = createServer((s: Socket) => {
      s.on('data', (d) => received.push(d));
      s.on('error', () => {});
      s.write(greetings.length > 1 ? greetings.shift()! : greetings[0]!);
    });
    const port = await broker.listen(server);
    const t = await tunnel({ target: targetFor('shopdb', { port }) });
    const raw = await RawMySql.connect(t.port);
    try {
      const greeting = await raw.greeting();
      expect(greeting.capabilities & Capability.MultiResults).toBe(Capability.MultiResults);
      raw.send(1, loginResponse(greeting, { user: t.user, password: t.password, database: 'shop' }));
      const err = errOf(await raw.next());
      expect(err).toMatchObject({ code: 1043, sqlState: '08S01' });
      expect(err.message).toContain('no longer offers capabilities this connection agreed on (MultiResults)');
    } finally {
      raw.close();
    }
    // Nothing of the login reached the changed server.
    expect(Buffer.concat(received)).toHaveLength(0);
    const next = await RawMySql.connect(t.port);
    try {
      expect((await next.greeting()).capabilities & Capability.MultiResults).toBe(0);
    } finally {
      next.close();
    }
  });

  it('says where it could not connect when the server is down, once the client has logged in', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t = await tunnel({ target: targetFor('shopdb', { port }) });
    const error = await loginError(t);
    expect(error).toMatchObject({ errno: 1429, sqlState: '08S01' });
    expect(error.message).toContain(`Can't connect to MySQL server on '127.0.0.1:${port}'`);
    expect(error.message).toContain('azdb doctor shopdb');
  });

  it("passes Azure's own refusal through with the Entra hint when the user does not exist", async () => {
    const t = await tunnel({ dbUser: 'nobody' });
    const error = await loginError(t, { user: 'nobody' });
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(error.message).toContain("Access denied for user 'nobody'");
    expect(error.message).toContain('CREATE AADUSER');
  });

  it("gives mysql2 MariaDB's extended metadata: a JSON column arrives parsed, as it does straight from the server", async () => {
    await azure.realMariaDb!.query('create table if not exists shop.json_docs (id int primary key, doc json)');
    await azure.realMariaDb!.query(`replace into shop.json_docs values (1, '{"test": true}')`);
    await azure.realMariaDb!.query(`grant select on shop.json_docs to ?@'%'`, [USER]);
    const front = azure.servers.find((s) => s.name === 'shopdb')!;
    const straight = await mysql.createConnection({
      host: '127.0.0.1', port: front.port, user: front.loginUser, password: await broker.getToken(), database: 'shop',
      ssl: { ca: azure.caPem, rejectUnauthorized: true }, enableCleartextPlugin: true, connectTimeout: 10_000,
    });
    const c = await connectTo(await tunnel());
    try {
      const read = async (conn: mysql.Connection) => {
        const [rows, fields] = await conn.query<mysql.RowDataPacket[]>('select doc from json_docs where id = 1');
        const [prepared] = await conn.execute<mysql.RowDataPacket[]>('select doc from json_docs where id = ?', [1]);
        return { text: rows[0]!.doc, prepared: prepared[0]!.doc, type: fields[0]!.type, typeName: (fields[0] as { typeName?: string }).typeName };
      };
      const expected = await read(straight);
      expect(expected.text).toEqual({ test: true });
      expect(await read(c)).toEqual(expected);
    } finally {
      await Promise.all([c.end(), straight.end()]);
    }
  });

  it('serves a client that asks for compression uncompressed: CLIENT_COMPRESS is not offered, so the driver does not switch', async () => {
    const c = await connectTo(await tunnel(), { compress: true });
    try {
      const [[row]] = await c.query<mysql.RowDataPacket[]>(`select repeat('z', 100000) as big, 1 as one`);
      expect(row).toEqual({ big: 'z'.repeat(100_000), one: 1 });
      expect((c as unknown as { connection: { config: { compress: number } } }).connection.config.compress).toBe(0);
    } finally {
      await c.end();
    }
  });

  describe('COM_CHANGE_USER and COM_RESET_CONNECTION', () => {
    const OTHER = 'azdb_changed';
    beforeAll(async () => {
      // A second principal of the same identity: the token proves either.
      await createAadUser(azure.realMariaDb!, { user: OTHER, identifiedBy: DEMO_IDENTITY.objectId, type: 'service' });
      await azure.realMariaDb!.query(`grant select on shop.* to ?@'%'`, [OTHER]);
    });

    const whoAmI = async (c: mysql.Connection) => {
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user, database() as db, @mark as mark');
      return row;
    };

    /** mysql2 straight to the emulated Azure server, the token as password. */
    const straightTo = async (name: string) => {
      const server = azure.servers.find((s) => s.name === name)!;
      return mysql.createConnection({
        host: '127.0.0.1', port: server.port, user: server.loginUser, password: await broker.getToken(), database: 'shop',
        ssl: { ca: azure.caPem, rejectUnauthorized: true }, enableCleartextPlugin: true, connectTimeout: 10_000,
      });
    };

    it('changes the user upstream with a token once the roles allow it, as straight to the server', async () => {
      const asked: string[] = [];
      const audit = createMemoryAuditSink({ queries: true });
      const t = await tunnel({ audit, authorize: (u, d) => (asked.push(`${u}/${d}`), { allowed: true }) });
      const straight = await straightTo('shopdb');
      const c = await connectTo(t);
      try {
        await straight.changeUser({ user: OTHER, password: await broker.getToken(), database: 'shop' });
        const expected = await whoAmI(straight);
        expect(expected).toEqual({ user: `${OTHER}@%`, db: 'shop', mark: null });
        await c.query('set @mark = 1');
        await c.changeUser({ user: OTHER, database: 'shop' });
        expect(await whoAmI(c)).toEqual(expected);
        expect(asked).toEqual([`${USER}/shop`, `${OTHER}/shop`]);
        const [rows] = await c.execute<mysql.RowDataPacket[]>('select ? as v', ['after the change']);
        expect(rows[0]!.v).toBe('after the change');
        // Audit lines after the change name the new user.
        const users = audit.events.filter((e) => e.event === 'query').map((e) => `${(e as { db_user: string }).db_user}: ${(e as { query: string }).query}`);
        expect(users).toContain(`${USER}: set @mark = 1`);
        expect(users).toContain(`${OTHER}: select ? as v`);
      } finally {
        await Promise.all([c.end(), straight.end()]);
      }
    });

    it('changes to user@server on a single server', async () => {
      const t = await tunnel({ target: targetFor('legacy-mysql') });
      const c = await connectTo(t);
      try {
        await c.changeUser({ user: OTHER, database: 'shop' });
        expect((await whoAmI(c))!.user).toBe(`${OTHER}@%`);
      } finally {
        await c.end();
      }
    });

    it('refuses what the roles deny, and a wrong tunnel password, with an ERR; the session stays usable as before', async () => {
      const t = await tunnel({ authorize: (u) => (u === OTHER ? { allowed: false, reason: 'no role allows it' } : { allowed: true }) });
      const c = await connectTo(t);
      try {
        await c.query('set @mark = 7');
        const denied = await c.changeUser({ user: OTHER, database: 'shop' }).then(() => undefined, (e: unknown) => e as LoginFailure);
        expect(denied).toMatchObject({ errno: 1044, sqlState: '42000' });
        expect(denied!.message).toContain(`Access denied for user '${OTHER}' to database 'shop'`);
        expect(await whoAmI(c)).toEqual({ user: `${USER}@%`, db: 'shop', mark: 7 });
        const wrong = await c.changeUser({ user: USER, password: 'not-the-password', database: 'shop' }).then(() => undefined, (e: unknown) => e as LoginFailure);
        expect(wrong).toMatchObject({ errno: 1045, sqlState: '28000' });
        expect(await whoAmI(c)).toEqual({ user: `${USER}@%`, db: 'shop', mark: 7 });
      } finally {
        c.destroy();
      }
    });

    it("passes the server's refusal of a change on with the Entra hint; the server then ends the session", async () => {
      const t = await tunnel();
      const c = await connectTo(t);
      try {
        const refused = await c.changeUser({ user: 'nobody', database: 'shop' }).then(() => undefined, (e: unknown) => e as LoginFailure);
        expect(refused).toMatchObject({ errno: 1045, sqlState: '28000' });
        expect(refused!.message).toContain("Access denied for user 'nobody'");
        expect(refused!.message).toContain('CREATE AADUSER');
        await expect(c.query('select 1')).rejects.toThrow();
      } finally {
        c.destroy();
      }
      // The tunnel serves the next client.
      const next = await connectTo(t);
      await next.end();
    });

    it('switches a COM_CHANGE_USER of another plugin to native; a command pipelined behind a change is answered after it', async () => {
      const t = await tunnel();
      const raw = await RawMySql.connect(t.port);
      try {
        const greeting = await raw.greeting();
        raw.send(1, loginResponse(greeting, { user: t.user, password: t.password, database: 'shop' }));
        expect((await raw.next())!.payload[0]).toBe(0x00);
        const change = encodeChangeUser(
          { user: OTHER, authResponse: Buffer.from('not-a-scramble'), database: 'shop', characterSet: 45, authPluginName: 'client_ed25519', connectAttributes: undefined },
          CLIENT_CAPABILITIES,
        );
        raw.send(0, change);
        const request = await raw.next();
        expect(request).toMatchObject({ sequenceId: 1 });
        const switchTo = decodeAuthSwitchRequest(request!.payload);
        expect(switchTo.pluginName).toBe('mysql_native_password');
        raw.send(2, scrambleNativePassword(t.password, scrambleFromPluginData(switchTo.pluginData)));
        const ok = await raw.next();
        expect(ok).toMatchObject({ sequenceId: 3 });
        expect(ok!.payload[0]).toBe(0x00);
        // A change in the client's own plugin needs no switch: a command pipelined behind it waits for it.
        const back = encodeChangeUser(
          { user: t.user, authResponse: scrambleNativePassword(t.password, greeting.authPluginData), database: 'shop', characterSet: 45, authPluginName: 'mysql_native_password', connectAttributes: undefined },
          CLIENT_CAPABILITIES,
        );
        raw.socket.write(Buffer.concat([encodePacket(0, back), encodePacket(0, comQuery('select current_user()'))]));
        const okBack = await raw.next();
        expect(okBack).toMatchObject({ sequenceId: 1 });
        expect(okBack!.payload[0]).toBe(0x00);
        const packets: Buffer[] = [];
        for (let p = await raw.next(); p && !(p.payload[0] === 0xfe && p.payload.length < 9); p = await raw.next()) packets.push(p.payload);
        expect(packets.some((p) => p.includes(Buffer.from(`${USER}@%`)))).toBe(true);
      } finally {
        raw.close();
      }
    });

    it('passes COM_RESET_CONNECTION through: session variables are gone, the user stays', async () => {
      const straight = await straightTo('shopdb');
      const c = await connectTo(await tunnel());
      try {
        const reset = async (conn: mysql.Connection) => {
          await conn.query('set @mark = 3');
          await conn.reset();
          return whoAmI(conn);
        };
        const expected = await reset(straight);
        expect(expected).toEqual({ user: `${USER}@%`, db: 'shop', mark: null });
        expect(await reset(c)).toEqual(expected);
      } finally {
        await Promise.all([c.end(), straight.end()]);
      }
    });
  });

  it('round-trips a query larger than 16 MiB', async () => {
    await azure.realMariaDb!.query('set global max_allowed_packet = 64 * 1024 * 1024');
    const t = await tunnel();
    const c = await connectTo(t);
    try {
      const size = 17 * 1024 * 1024;
      const [[row]] = await c.query<mysql.RowDataPacket[]>(`select length('${'x'.repeat(size)}') as n, 'end' as tail`);
      expect(row).toEqual({ n: size, tail: 'end' });
      const [[echo]] = await c.query<mysql.RowDataPacket[]>(`select repeat('y', ${size}) as big`);
      expect((echo!.big as string).length).toBe(size);
    } finally {
      await c.end();
    }
  });

  it('ends the client of a killed upstream with an error and serves the next one', async () => {
    const t = await tunnel();
    const c = await connectTo(t);
    const marker = `kill-me-${Date.now()}`;
    const running = c.query(`select sleep(60), '${marker}'`).then(() => undefined, (e: unknown) => e as LoginFailure);
    const [victim] = await waitFor(async () => {
      const rows = await processlist(marker);
      return rows.length > 0 && rows;
    }, 'the query to run');
    await azure.realMariaDb!.query(`kill connection ${victim!.id}`);
    const error = await running;
    expect(error).toBeDefined();
    expect(error!.message).toMatch(/closed|lost|ECONNRESET/i);
    c.destroy();
    const next = await connectTo(t);
    const [[row]] = await next.query<mysql.RowDataPacket[]>('select 1 as one');
    expect(row!.one).toBe(1);
    await next.end();
  });

  it('audits sessions and queries without tokens, passwords or parameter values', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const t = await tunnel({ audit });
    const c = await connectTo(t);
    await c.query('select 42 as answer');
    await c.execute('select ? as secret_param', ['parameter-value-xyz']);
    await c.end();
    await waitFor(() => audit.events.some((e) => e.event === 'session.end'), 'session.end');
    const kinds = audit.events.map((e) => (e.event === 'query' ? `query:${e.kind}` : e.event));
    expect(kinds).toEqual(['session.start', 'query:simple', 'query:prepare', 'query:execute', 'session.end']);
    const start = audit.events[0]!;
    expect(start).toMatchObject({ protocol: 'mysql', database: 'shopdb', db_user: USER, db_name: 'shop' });
    const execute = audit.events[3] as { statement?: string; query: string };
    expect(execute.statement).toMatch(/^\d+$/);
    expect(execute.query).toBe('');
    const text = JSON.stringify(audit.events);
    expect(text).toContain('select 42 as answer');
    expect(text).toContain('select ? as secret_param');
    expect(text).not.toContain('parameter-value-xyz');
    expect(text).not.toContain(t.password);
    expect(text).not.toMatch(JWT);
    const end = audit.events.at(-1) as { bytes_from_client: number; bytes_to_client: number; result: string };
    expect(end.result).toBe('ok');
    expect(end.bytes_from_client).toBeGreaterThan(0);
    expect(end.bytes_to_client).toBeGreaterThan(0);
  });

  it('writes session.rejected for a refused login', async () => {
    const audit = createMemoryAuditSink({ queries: true });
    const t = await tunnel({ audit });
    await loginError(t, { password: 'wrong' });
    await waitFor(() => audit.events.length > 0, 'the audit line');
    expect(audit.events).toEqual([expect.objectContaining({ event: 'session.rejected', protocol: 'mysql', db_user: USER, error: expect.stringContaining('Access denied') })]);
  });

  it('speaks TLS to clients when the listener has a certificate', async () => {
    const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
    const cert = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const t = await tunnel({ clientTls: createSecureContext({ cert: cert.certPem, key: cert.keyPem }) });
    const c = await connectTo(t, { ssl: { ca: ca.caPem } });
    const [[row]] = await c.query<mysql.RowDataPacket[]>('select 1 as one');
    expect(row!.one).toBe(1);
    await c.end();
  });

  it('fetches no token on the connection path while the cached one is valid', async () => {
    const t = await tunnel();
    const first = await connectTo(t);
    await first.end();
    const fetches = tokens.stats.fetches;
    const requests = azure.identity.requests;
    for (let i = 0; i < 5; i++) await (await connectTo(t)).end();
    expect(tokens.stats.fetches).toBe(fetches);
    expect(azure.identity.requests).toBe(requests);
  });

  describe.skipIf(mariadb.skip)('with the mariadb client', () => {
    it('runs queries with the password in its environment, in clear and native upstream modes', async () => {
      const front = azure.mysqlFronts.get('shopdb')!;
      for (const mode of ['clear', 'native'] as const) {
        front.setAuthMethod(mode);
        try {
          const t = await tunnel();
          const result = await runMariadb(t, 'select current_user(), database(); select count(*) > 0 from customers');
          expect(result.stderr).toBe('');
          expect(result.stdout).toBe(`${USER}@%\tshop\n1`);
        } finally {
          front.setAuthMethod('clear');
        }
      }
    });

    it('cancels a running query when the client gets Ctrl+C (SIGINT): KILL QUERY through a second session', async () => {
      const t = await tunnel();
      const marker = `ctrl-c-${Date.now()}`;
      const child = execa(mariadb.path!, ['--no-defaults', '--protocol=TCP', '-h', t.host, '-P', String(t.port), '-u', t.user, t.database], {
        env: { MYSQL_PWD: t.password },
        extendEnv: false,
        input: `select sleep(60), '${marker}';\n`,
        reject: false,
      });
      const [running] = await waitFor(async () => {
        const rows = await processlist(marker);
        return rows.length > 0 && rows;
      }, 'the query to run');
      child.kill('SIGINT');
      await waitFor(async () => (await processlist(marker)).length === 0, 'the query to be killed', 10_000);
      const result = await child;
      // KILL QUERY ended the statement (1317), not the connection: it reached the right server thread.
      expect(result.stderr).toContain('ERROR 1317 (70100) at line 1: Query execution was interrupted');
      expect(running!.id).toBeGreaterThan(0);
    });
  });
});
