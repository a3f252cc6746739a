/**
 * The emulated "Azure Database for MySQL" front as Azure's users meet it: Debian's real mariadb
 * client with a verified TLS certificate and an Entra token in MYSQL_PWD (what people do with
 * `az account get-access-token --resource-type oss-rdbms`), and mysql2, against the run's real
 * MariaDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID as randomUuid } from 'node:crypto';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { CLOUDS } from '../../src/azure/clouds.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { createAadUser } from '../../src/emulator/mysql-aad-users.js';
import { loadOrCreateCa } from '../../src/emulator/ca.js';
import { startMySqlFront } from '../../src/emulator/mysql-front.js';
import { AuthPlugin, encodeClearPassword } from '../../src/broker/mysql/auth.js';
import { Capability } from '../../src/broker/mysql/codec/constants.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, encodeSslRequest } from '../../src/broker/mysql/codec/handshake.js';
import { PacketDecoder, type Packet } from '../../src/broker/mysql/codec/packet-decoder.js';
import { encodePacket } from '../../src/broker/mysql/codec/packets.js';
import { decodeErr, ResponseHeader } from '../../src/broker/mysql/codec/responses.js';
import { WireReader } from '../../src/broker/wire-reader.js';
import type { EmulatedAzure, EmulatedServerInfo } from '../../src/emulator/emulated-azure.js';
import { startTestAzure } from '../harness/emulator.js';
import { findTool } from '../harness/tools.js';
import { waitFor } from '../helpers/wait.js';

const mariadbd = await findTool('mariadbd');
const client = await findTool('mariadb', ['mysql']);
const DB_AUDIENCE = CLOUDS.AzureCloud.databaseResource;
const nextPacket = (decoder: PacketDecoder): Packet | undefined => decoder.next();

let azure: EmulatedAzure & { dir: string };

function server(name: string): EmulatedServerInfo {
  const found = azure.servers.find((s) => s.name === name);
  if (!found) throw new Error(`no emulated server ${name}`);
  return found;
}

/** The real client as a person runs it; the token in MYSQL_PWD, never on the command line. */
async function runClient(token: string, options: { server?: string; user?: string; tls?: boolean; sql?: string; database?: string } = {}) {
  const target = server(options.server ?? 'shopdb');
  const tls = options.tls === false ? ['--skip-ssl'] : [`--ssl-ca=${azure.caFile}`, '--ssl-verify-server-cert'];
  return execa(
    client.path!,
    [
      '--no-defaults',
      '--host=127.0.0.1',
      `--port=${target.port}`,
      `--user=${options.user ?? target.loginUser}`,
      ...tls,
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      ...(options.database ? [`--database=${options.database}`] : []),
      '-e',
      options.sql ?? 'select current_user()',
    ],
    { env: { MYSQL_PWD: token }, extendEnv: false, reject: false, timeout: 30_000 },
  );
}

function connectMysql2(token: string, options: { server?: string; user?: string; authPlugins?: Record<string, mysql.AuthPlugin>; tls?: boolean } = {}) {
  const target = server(options.server ?? 'shopdb');
  return mysql.createConnection({
    host: '127.0.0.1',
    port: target.port,
    user: options.user ?? target.loginUser,
    password: token,
    database: 'shop',
    connectTimeout: 10_000,
    enableCleartextPlugin: true,
    ...(options.tls === false ? {} : { ssl: { ca: azure.caPem, rejectUnauthorized: true } }),
    ...(options.authPlugins ? { authPlugins: options.authPlugins } : {}),
  });
}

async function refusal(connecting: Promise<mysql.Connection>): Promise<{ errno?: number; sqlState?: string; message: string }> {
  const error = await connecting.then(
    async (connection) => {
      await connection.end();
      throw new Error('the login succeeded');
    },
    (failure: unknown) => failure as { errno?: number; sqlState?: string; message: string },
  );
  return error;
}

describe.skipIf(mariadbd.skip)('the emulated Azure Database for MySQL front', () => {
  beforeAll(async () => {
    azure = await startTestAzure();
  });

  afterAll(async () => {
    await azure?.stop();
  });

  it('lists its servers as MySQL ones', () => {
    expect(server('shopdb')).toMatchObject({ protocol: 'mysql', kind: 'flexible', fqdn: 'shopdb.mysql.database.azure.com', loginUser: DEMO_IDENTITY.role });
    expect(server('legacy-mysql')).toMatchObject({ protocol: 'mysql', kind: 'single', loginUser: `${DEMO_IDENTITY.role}@legacy-mysql` });
    expect(server('orders').protocol).toBe('postgres');
  });

  it.skipIf(client.skip)('logs the real client in over verified TLS with a token as the clear password, as the mapped account', async () => {
    const before = azure.mysqlFronts.get('shopdb')!.logins;
    const result = await runClient(await azure.issueToken({ audience: DB_AUDIENCE }), {
      database: 'shop',
      sql: "select current_user(); select count(*) > 0 from customers; show status like 'Ssl_cipher'",
    });
    expect(result.stderr).toBe('');
    const [user, hasCustomers, cipher] = result.stdout.split('\n');
    expect(user).toBe(`${DEMO_IDENTITY.role}@%`);
    expect(hasCustomers).toBe('1');
    // TLS ends at the front; MariaDB itself sees a plain socket, as Azure's server behind its gateway.
    expect(cipher).toBe('Ssl_cipher\t');
    expect(azure.mysqlFronts.get('shopdb')!.logins).toBe(before + 1);
  });

  it.skipIf(client.skip)('refuses an expired token with a clear message', async () => {
    const expired = await azure.issueToken({ audience: DB_AUDIENCE, ttlSeconds: 3600, notBefore: new Date(Date.now() - 3 * 3_600_000) });
    const result = await runClient(expired);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('ERROR 1045 (28000): The access token has expired. Please acquire a new token and try again.');
  });

  it.skipIf(client.skip)('refuses a token for another audience, naming the one it wants', async () => {
    const result = await runClient(await azure.issueToken({ audience: CLOUDS.AzureCloud.resourceManagerEndpoint }));
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`ERROR 1045 (28000): The access token does not have a valid audience claim. Please acquire a new token for the resource "${DB_AUDIENCE}".`);
  });

  it.skipIf(client.skip)('refuses a forged signature, and a principal it does not know, as access denied', async () => {
    const [header, payload, signature] = (await azure.issueToken({ audience: DB_AUDIENCE })).split('.');
    const forged = [header, payload, randomBytes(Buffer.from(signature!, 'base64url').length).toString('base64url')].join('.');
    const stranger = await azure.issueToken({ audience: DB_AUDIENCE, objectId: '00000000-0000-0000-0000-00000000beef', appId: '00000000-0000-0000-0000-00000000cafe' });
    for (const token of [forged, stranger]) {
      const result = await runClient(token);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`ERROR 1045 (28000): Access denied for user '${DEMO_IDENTITY.role}'@'127.0.0.1' (using password: YES)`);
      expect(result.stderr).not.toContain(token);
    }
    const unknownUser = await runClient(await azure.issueToken({ audience: DB_AUDIENCE }), { user: 'nobody' });
    expect(unknownUser.stderr).toContain("ERROR 1045 (28000): Access denied for user 'nobody'@'127.0.0.1' (using password: YES)");
  });

  it.skipIf(client.skip)('refuses a client without TLS with 3159, before asking for a password', async () => {
    const before = azure.mysqlFronts.get('shopdb')!.logins;
    const result = await runClient(await azure.issueToken({ audience: DB_AUDIENCE }), { tls: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('ERROR 3159 (HY000): Connections using insecure transport are prohibited while --require_secure_transport=ON.');
    expect(azure.mysqlFronts.get('shopdb')!.logins).toBe(before);

    let askedForPassword = false;
    const error = await refusal(
      connectMysql2('unused', {
        tls: false,
        authPlugins: {
          mysql_clear_password: () => () => {
            askedForPassword = true;
            return Buffer.from('unused\0');
          },
        },
      }),
    );
    expect(error).toMatchObject({ errno: 3159, sqlState: 'HY000' });
    expect(askedForPassword).toBe(false);
  });

  it.skipIf(client.skip)('refuses a single server without TLS the way its gateway did', async () => {
    const result = await runClient(await azure.issueToken({ audience: DB_AUDIENCE }), { server: 'legacy-mysql', tls: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('ERROR 9002 (28000): SSL connection is required. Please specify SSL options and retry.');
  });

  it.skipIf(client.skip)('takes `user@server` on a single server and refuses the bare name', async () => {
    const token = await azure.issueToken({ audience: DB_AUDIENCE });
    const ok = await runClient(token, { server: 'legacy-mysql' });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe(`${DEMO_IDENTITY.role}@%`);
    const bare = await runClient(token, { server: 'legacy-mysql', user: DEMO_IDENTITY.role });
    expect(bare.exitCode).toBe(1);
    expect(bare.stderr).toContain('ERROR 9009 (28000): The server name you tried cannot be found.');
    expect(bare.stderr).toContain('The Username should be in <username@hostname> format.');
  });

  it.skipIf(client.skip)('fails certificate verification for a name the certificate does not carry', async () => {
    // Still 127.0.0.1: the front serves a certificate for another name (and no IP) for this test.
    const front = azure.mysqlFronts.get('shopdb')!;
    const ca = await loadOrCreateCa(join(azure.dir, 'ca'));
    const wrong = await ca.issueServerCertificate({ dnsNames: ['elsewhere.example.com'] });
    front.setCertificate(wrong.certPem, wrong.keyPem);
    try {
      const result = await execa(
        client.path!,
        ['--no-defaults', '--host=127.0.0.1', '--protocol=TCP', `--port=${server('shopdb').port}`, '--user=x', `--ssl-ca=${azure.caFile}`, '--ssl-verify-server-cert', '-e', 'select 1'],
        { env: { MYSQL_PWD: 'unused' }, extendEnv: false, reject: false, timeout: 30_000 },
      );
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain('ERROR 2026 (HY000): TLS/SSL error: Validation of SSL server certificate failed');
    } finally {
      const good = await ca.issueServerCertificate({ dnsNames: [server('shopdb').fqdn, '*.mysql.database.azure.com'], ipAddresses: ['127.0.0.1'] });
      front.setCertificate(good.certPem, good.keyPem);
    }
  });

  it('passes a missing database on as MariaDB refuses it', async () => {
    const token = await azure.issueToken({ audience: DB_AUDIENCE });
    const target = server('shopdb');
    const error = await refusal(
      mysql.createConnection({ host: '127.0.0.1', port: target.port, user: target.loginUser, password: token, database: 'nosuchdb', ssl: { ca: azure.caPem }, enableCleartextPlugin: true }),
    );
    // The demo identity is the server's Entra admin, who may see every database: MariaDB says it is not there.
    expect(error).toMatchObject({ errno: 1049, sqlState: '42000' });
    expect(error.message).toContain("Unknown database 'nosuchdb'");
  });

  it('hands the client MariaDB\'s connection id, so KILL QUERY from a second connection cancels a query', async () => {
    const token = await azure.issueToken({ audience: DB_AUDIENCE });
    const first = await connectMysql2(token);
    const second = await connectMysql2(token);
    try {
      const [[row]] = await first.query<mysql.RowDataPacket[]>('select connection_id() as id');
      expect(row!.id).toBe(first.threadId);
      const sleeping = first.query<mysql.RowDataPacket[]>('select sleep(60)').then(
        () => undefined,
        (error: unknown) => error as { errno?: number; sqlState?: string },
      );
      await waitFor(async () => {
        const rows = await azure.realMariaDb!.query<mysql.RowDataPacket[]>('select 1 from information_schema.processlist where id = ? and info like ?', [
          first.threadId,
          'select sleep%',
        ]);
        return rows.length > 0;
      }, 'the sleep to run');
      await second.query(`KILL QUERY ${first.threadId}`);
      // MariaDB ends the statement with ER_QUERY_INTERRUPTED; the connection lives on.
      expect(await sleeping).toMatchObject({ errno: 1317, sqlState: '70100' });
      const [[still]] = await first.query<mysql.RowDataPacket[]>('select 2 as alive');
      expect(still!.alive).toBe(2);
    } finally {
      await first.end();
      await second.end();
    }
  });

  it('matches a principal made with a client id, as Azure documents for managed identities', async () => {
    const clientId = '7a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d';
    await createAadUser(azure.realMariaDb!, { user: 'by-client-id', identifiedBy: clientId.toUpperCase(), type: 'service' });
    const token = await azure.issueToken({ audience: DB_AUDIENCE, objectId: '9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f', appId: clientId });
    const connection = await mysql.createConnection({
      host: '127.0.0.1',
      port: server('shopdb').port,
      user: 'by-client-id',
      password: token,
      ssl: { ca: azure.caPem },
      enableCleartextPlugin: true,
    });
    try {
      const [[row]] = await connection.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe('by-client-id@%');
    } finally {
      await connection.end();
    }
    // The same client id does not open the demo identity's account.
    const error = await refusal(connectMysql2(token));
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
  });

  it.skipIf(client.skip)('lets the Entra admin CREATE AADUSER and GRANT with the real client; the new principal logs in with its own token', async () => {
    const user = `app-${randomBytes(4).toString('hex')}`;
    const clientId = randomUuid();
    const admin = await azure.issueToken({ audience: DB_AUDIENCE });
    const made = await runClient(admin, { sql: `CREATE AADUSER '${user}' IDENTIFIED BY '${clientId}'; GRANT SELECT ON shop.* TO '${user}'@'%';` });
    expect(made.stderr).toBe('');
    expect(made.exitCode).toBe(0);

    const token = await azure.issueToken({ audience: DB_AUDIENCE, objectId: randomUuid(), appId: clientId });
    const used = await runClient(token, { user, database: 'shop', sql: 'select current_user(), count(*) from customers' });
    expect(used.stderr).toBe('');
    expect(used.stdout.trim()).toBe(`${user}@%\t50`);
    const readOnly = await runClient(token, { user, database: 'shop', sql: 'delete from customers' });
    expect(readOnly.stderr).toContain('ERROR 1142 (42000) at line 1: DELETE command denied');

    // Azure makes an account once; on the single server (user@server) too.
    const again = await runClient(admin, { server: 'legacy-mysql', sql: `CREATE AADUSER '${user}' IDENTIFIED BY '${clientId}'` });
    expect(again.stderr).toContain(`ERROR 1396 (HY000) at line 1: Operation CREATE USER failed for '${user}'@'%'`);
  });

  it('refuses CREATE AADUSER to anyone but the Entra admin, and a malformed one, as MySQL errors; the session goes on', async () => {
    const user = `plain-${randomBytes(4).toString('hex')}`;
    const objectId = randomUuid();
    await createAadUser(azure.realMariaDb!, { user, identifiedBy: objectId, type: 'service' });
    const plain = await mysql.createConnection({
      host: '127.0.0.1',
      port: server('shopdb').port,
      user,
      password: await azure.issueToken({ audience: DB_AUDIENCE, objectId, appId: randomUuid() }),
      ssl: { ca: azure.caPem },
      enableCleartextPlugin: true,
    });
    const admin = await connectMysql2(await azure.issueToken({ audience: DB_AUDIENCE }));
    try {
      const denied = await plain.query(`CREATE AADUSER 'sneaky' IDENTIFIED BY '${randomUuid()}'`).then(() => undefined, (e: unknown) => e);
      expect(denied).toMatchObject({ errno: 1227, sqlState: '42000', message: 'Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation' });
      const [[row]] = await plain.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe(`${user}@%`);

      const malformed = await admin.query('CREATE AADUSER sneaky').then(() => undefined, (e: unknown) => e);
      expect(malformed).toMatchObject({ errno: 1064, sqlState: '42000' });
      expect((malformed as Error).message).toContain("near 'sneaky' at line 1");
      const badId = await admin.query("CREATE AADUSER 'sneaky' IDENTIFIED BY 'not-an-id'").then(() => undefined, (e: unknown) => e);
      expect(badId).toMatchObject({ errno: 1105 });
      const [accounts] = await admin.query<mysql.RowDataPacket[]>("select count(*) as n from mysql.user where user = 'sneaky'");
      expect(accounts[0]!.n).toBe(0);
    } finally {
      await plain.end();
      await admin.end();
    }
  });

  it('answers COM_CHANGE_USER like a login: the token by clear password, the new principal, a refusal ending the connection', async () => {
    const token = await azure.issueToken({ audience: DB_AUDIENCE });
    await createAadUser(azure.realMariaDb!, { user: 'front-changed', identifiedBy: DEMO_IDENTITY.objectId, type: 'service' });
    await azure.realMariaDb!.query("grant select on shop.* to ?@'%'", ['front-changed']);
    const c = await connectMysql2(token);
    try {
      await c.changeUser({ user: 'front-changed', password: token, database: 'shop' });
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe('front-changed@%');
      const refused = await c.changeUser({ user: 'nobody-here', password: token }).then(() => undefined, (e: { errno?: number; sqlState?: string; message: string }) => e);
      expect(refused).toMatchObject({ errno: 1045, sqlState: '28000' });
      expect(refused!.message).toContain("Access denied for user 'nobody-here'");
      await expect(c.query('select 1')).rejects.toThrow();
    } finally {
      c.destroy();
    }
  });

  it('logs mysql2 in with the clear password over TLS', async () => {
    const connection = await connectMysql2(await azure.issueToken({ audience: DB_AUDIENCE }));
    try {
      const [[row]] = await connection.query<mysql.RowDataPacket[]>('select current_user() as user, database() as db');
      expect(row).toEqual({ user: `${DEMO_IDENTITY.role}@%`, db: 'shop' });
    } finally {
      await connection.end();
    }
  });

  it('in native mode checks a mysql_native_password answer against the tokens it issued', async () => {
    const front = azure.mysqlFronts.get('shopdb')!;
    front.setAuthMethod('native');
    try {
      let sentInClear = false;
      const clearSpy = { mysql_clear_password: () => () => ((sentInClear = true), Buffer.from('x\0')) };
      const connection = await connectMysql2(await azure.issueToken({ audience: DB_AUDIENCE }), { authPlugins: clearSpy });
      const [[row]] = await connection.query<mysql.RowDataPacket[]>('select current_user() as user');
      expect(row!.user).toBe(`${DEMO_IDENTITY.role}@%`);
      await connection.end();
      expect(sentInClear).toBe(false);

      // A well-formed token the emulator never issued cannot be matched, so it cannot be checked.
      const [header, payload] = (await azure.issueToken({ audience: DB_AUDIENCE })).split('.');
      const error = await refusal(connectMysql2(`${header}.${payload}.${randomBytes(64).toString('base64url')}`));
      expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
      expect(error.message).toContain(`Access denied for user '${DEMO_IDENTITY.role}'@'127.0.0.1' (using password: YES)`);
    } finally {
      front.setAuthMethod('clear');
    }
  });

  it('takes the token in the first response when the client starts with mysql_clear_password, as the broker does', async () => {
    const target = server('shopdb');
    const raw = connectTcp(target.port, '127.0.0.1');
    const plain = new WireReader(raw, new PacketDecoder());
    const deadline = { at: Date.now() + 10_000, what: 'the front' };
    try {
      const greeting = decodeHandshakeV10((await plain.read(nextPacket, deadline)).payload);
      expect(greeting.authPluginName).toBe(AuthPlugin.NativePassword);
      const capabilities = Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.PluginAuthLenencClientData | Capability.ConnectWithDb;
      const header = { capabilities, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 };
      raw.write(encodePacket(1, encodeSslRequest(header)));
      plain.detach();
      const tls = connectTls({ socket: raw, ca: azure.caPem, servername: target.fqdn });
      await new Promise<void>((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
      const reader = new WireReader(tls, new PacketDecoder());
      tls.write(
        encodePacket(
          2,
          encodeHandshakeResponse41({
            ...header,
            capabilities: capabilities | Capability.Ssl,
            username: target.loginUser,
            authResponse: encodeClearPassword(await azure.issueToken({ audience: DB_AUDIENCE })),
            database: 'shop',
            authPluginName: AuthPlugin.ClearPassword,
            connectAttributes: undefined,
          }),
        ),
      );
      const ok: Packet = await reader.read(nextPacket, deadline);
      expect(ok.payload[0]).toBe(ResponseHeader.Ok);
      expect(ok.sequenceId).toBe(3);
      tls.destroy();
    } finally {
      raw.destroy();
    }
  });

  it('ends a login that stalls with an ERR at its deadline', async () => {
    const cert = await (await loadOrCreateCa(join(azure.dir, 'ca'))).issueServerCertificate({ dnsNames: ['stall.mysql.database.azure.com'] });
    const front = await startMySqlFront({
      serverName: 'stall',
      kind: 'flexible',
      audience: DB_AUDIENCE,
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      verifyToken: () => Promise.reject(new Error('not reached')),
      realMariaDb: azure.realMariaDb!,
      authenticationTimeoutMs: 300,
    });
    try {
      const socket = connectTcp(front.port, front.host);
      const reader = new WireReader(socket, new PacketDecoder());
      const deadline = { at: Date.now() + 10_000, what: 'the front' };
      expect((await reader.read(nextPacket, deadline)).sequenceId).toBe(0);
      const err = await reader.read(nextPacket, deadline);
      expect(err.sequenceId).toBe(1);
      expect(decodeErr(err.payload)).toEqual({ code: 1043, sqlState: '08S01', message: 'Bad handshake' });
      await expect(reader.read(nextPacket, deadline)).rejects.toThrow('the peer closed the connection');
    } finally {
      await front.close();
    }
  });

  it('answers bad bytes with an ERR packet and closes, and keeps serving', async () => {
    const target = server('shopdb');
    const socket = connectTcp(target.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await waitFor(() => received.length > 0, 'the greeting');
    // A HandshakeResponse41 without CLIENT_PROTOCOL_41, sequence id 1.
    socket.write(Buffer.from([4, 0, 0, 1, 0, 0, 0, 0]));
    await closed;
    const all = Buffer.concat(received);
    const greetingLength = all.readUIntLE(0, 3) + 4;
    const err = all.subarray(greetingLength);
    expect(err[3]).toBe(2); // sequence id after the client's 1
    expect(err[4]).toBe(0xff);
    expect(err.subarray(7, 13).toString('latin1')).toBe('#08S01');

    const connection = await connectMysql2(await azure.issueToken({ audience: DB_AUDIENCE }));
    await connection.end();
  });
});
