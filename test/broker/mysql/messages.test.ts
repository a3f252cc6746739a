import { describe, expect, it } from 'vitest';
import { Capability, CharacterSet, FieldType, ServerStatus } from '../../../src/broker/mysql/codec/constants.js';
import {
  MAX_CONNECT_ATTRS,
  MAX_CONNECT_ATTRS_LENGTH,
  SSL_REQUEST_LENGTH,
  decodeClientHandshake,
  decodeHandshakeV10,
  encodeHandshakeResponse41,
  encodeHandshakeV10,
  encodeSslRequest,
  type HandshakeResponse41,
  type HandshakeV10,
} from '../../../src/broker/mysql/codec/handshake.js';
import {
  CachingSha2Status,
  decodeAuthMoreData,
  decodeAuthServerPacket,
  decodeAuthSwitchRequest,
  decodeAuthSwitchResponse,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  scrambleFromPluginData,
} from '../../../src/broker/mysql/codec/auth-messages.js';
import { ResponseHeader, decodeErr, decodeOk, encodeErr, encodeOk } from '../../../src/broker/mysql/codec/responses.js';
import { Command, decodeChangeUser, decodeQuery, decodeStmtPrepare, encodeChangeUser } from '../../../src/broker/mysql/codec/commands.js';
import { PacketDecoder } from '../../../src/broker/mysql/codec/packet-decoder.js';
import { encodePacket } from '../../../src/broker/mysql/codec/packets.js';
import { drain, splitAt } from '../../helpers/decoders.js';
import { MariaDbCapability, comQuery, comStmtPrepare } from '../../helpers/mysql-payloads.js';
import { PayloadWriter } from '../../../src/broker/mysql/codec/values.js';
import { MySqlProtocolError } from '../../../src/broker/mysql/codec/protocol-error.js';

const SCRAMBLE = Buffer.from('0123456789abcdefghij');
const MYSQL_SERVER_CAPS =
  Capability.LongPassword |
  Capability.ConnectWithDb |
  Capability.Protocol41 |
  Capability.Ssl |
  Capability.Transactions |
  Capability.SecureConnection |
  Capability.MultiStatements |
  Capability.MultiResults |
  Capability.PluginAuth |
  Capability.ConnectAttrs |
  Capability.PluginAuthLenencClientData |
  Capability.SessionTrack |
  Capability.DeprecateEof |
  Capability.QueryAttributes;
const CLIENT_CAPS = MYSQL_SERVER_CAPS & ~Capability.Ssl;

const execute = (flags: number) => new PayloadWriter().u8(Command.StmtExecute).u32(12).u8(flags).u32(1);

function expectProtocolError(fn: () => unknown): void {
  expect(fn).toThrow(MySqlProtocolError);
}

describe('HandshakeV10', () => {
  const mysql: HandshakeV10 = {
    serverVersion: '8.0.36',
    connectionId: 0xfedcba98,
    authPluginData: SCRAMBLE,
    capabilities: (MYSQL_SERVER_CAPS | Capability.RememberOptions) >>> 0,
    characterSet: CharacterSet.Utf8mb4_0900AiCi,
    statusFlags: ServerStatus.Autocommit,
    authPluginName: 'caching_sha2_password',
    mariadbCapabilities: 0,
  };
  const mariadb: HandshakeV10 = {
    ...mysql,
    serverVersion: '5.5.5-10.11.6-MariaDB',
    capabilities: (MYSQL_SERVER_CAPS & ~Capability.LongPassword & ~Capability.QueryAttributes) >>> 0,
    characterSet: CharacterSet.Utf8mb4GeneralCi,
    authPluginName: 'mysql_native_password',
    mariadbCapabilities: MariaDbCapability.StmtBulkOperations | MariaDbCapability.ExtendedMetadata,
  };

  it.each([['MySQL 8', mysql], ['MariaDB', mariadb]])('round-trips a %s greeting', (_name, handshake) => {
    expect(decodeHandshakeV10(encodeHandshakeV10(handshake))).toEqual(handshake);
  });

  it('decodes a MariaDB greeting byte for byte, extended capabilities from the reserved bytes', () => {
    const bytes = Buffer.concat([
      Buffer.from('0a', 'hex'),
      Buffer.from('5.5.5-10.11.6-MariaDB\0'),
      Buffer.from('2a000000', 'hex'), // connection 42
      SCRAMBLE.subarray(0, 8),
      Buffer.from('00' + 'fef7' + '2d' + '0200' + 'ff81' + '15' + '000000000000' + '1d000000', 'hex'),
      SCRAMBLE.subarray(8),
      Buffer.from('00', 'hex'),
      Buffer.from('mysql_native_password\0'),
    ]);
    expect(decodeHandshakeV10(bytes)).toEqual({
      serverVersion: '5.5.5-10.11.6-MariaDB',
      connectionId: 42,
      authPluginData: SCRAMBLE,
      capabilities: 0x81fff7fe,
      characterSet: 45,
      statusFlags: 2,
      authPluginName: 'mysql_native_password',
      mariadbCapabilities: 0x1d,
    });
  });

  it('ignores the reserved bytes of a server that sets CLIENT_MYSQL', () => {
    const bytes = encodeHandshakeV10(mysql);
    const reserved = 1 + mysql.serverVersion.length + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1;
    bytes.fill(0x7f, reserved, reserved + 10);
    expect(decodeHandshakeV10(bytes)).toEqual(mysql);
  });

  it('accepts a plugin name without its NUL (an old MySQL bug)', () => {
    const bytes = encodeHandshakeV10(mysql);
    expect(decodeHandshakeV10(bytes.subarray(0, -1)).authPluginName).toBe('caching_sha2_password');
  });

  it('refuses every truncation before the plugin name, a wrong version and a pre-4.1 server', () => {
    const bytes = encodeHandshakeV10(mysql);
    const pluginAt = bytes.length - mysql.authPluginName.length - 1;
    for (let at = 0; at < pluginAt; at++) expectProtocolError(() => decodeHandshakeV10(bytes.subarray(0, at)));
    const v9 = Buffer.from(bytes);
    v9[0] = 9;
    expectProtocolError(() => decodeHandshakeV10(v9));
    expectProtocolError(() => decodeHandshakeV10(encodeHandshakeV10({ ...mysql, capabilities: mysql.capabilities & ~Capability.Protocol41 })));
  });
});

describe('SSLRequest and HandshakeResponse41', () => {
  const header = { capabilities: CLIENT_CAPS, maxPacketSize: 16 * 1024 * 1024, characterSet: CharacterSet.Utf8mb4GeneralCi, mariadbCapabilities: 0 };
  const mysqlClient: HandshakeResponse41 = {
    ...header,
    username: 'alice',
    authResponse: Buffer.alloc(32, 7),
    database: 'orders',
    authPluginName: 'caching_sha2_password',
    connectAttributes: { _client_name: 'libmysql', _pid: '4242', program_name: 'mysql' },
  };

  it('decodes an SSLRequest as exactly 32 bytes with CLIENT_SSL', () => {
    const bytes = encodeSslRequest(header);
    expect(bytes.length).toBe(SSL_REQUEST_LENGTH);
    expect(decodeClientHandshake(bytes)).toEqual({ type: 'ssl-request', ...header, capabilities: (CLIENT_CAPS | Capability.Ssl) >>> 0 });
    const noSsl = Buffer.from(bytes);
    noSsl.writeUInt32LE(CLIENT_CAPS, 0);
    expectProtocolError(() => decodeClientHandshake(noSsl));
  });

  it.each<[string, HandshakeResponse41]>([
    ['MySQL 8 (lenenc auth data, database, plugin, attributes)', mysqlClient],
    ['after TLS (CLIENT_SSL set, same layout)', { ...mysqlClient, capabilities: (CLIENT_CAPS | Capability.Ssl) >>> 0 }],
    [
      'SECURE_CONNECTION only (1-byte auth length)',
      { ...header, capabilities: Capability.LongPassword | Capability.Protocol41 | Capability.SecureConnection, username: 'bob', authResponse: Buffer.alloc(20, 1), database: undefined, authPluginName: undefined, connectAttributes: undefined },
    ],
    [
      'neither (NUL-terminated auth data)',
      { ...header, capabilities: Capability.LongPassword | Capability.Protocol41, username: 'carol', authResponse: Buffer.from('abc'), database: undefined, authPluginName: undefined, connectAttributes: undefined },
    ],
    [
      'MariaDB (extended capabilities in the filler)',
      { ...mysqlClient, capabilities: CLIENT_CAPS & ~Capability.LongPassword, mariadbCapabilities: MariaDbCapability.Progress | MariaDbCapability.CacheMetadata },
    ],
    ['bit 31 set', { ...mysqlClient, capabilities: (CLIENT_CAPS | Capability.RememberOptions) >>> 0 }],
    ['an empty database and no attributes', { ...mysqlClient, database: '', connectAttributes: {} }],
  ])('round-trips %s', (_name, response) => {
    expect(decodeClientHandshake(encodeHandshakeResponse41(response))).toEqual({ type: 'response', ...response });
  });

  it('puts the 1-byte auth length where drivers expect it (after 32 bytes and the user name)', () => {
    const caps = Capability.LongPassword | Capability.Protocol41 | Capability.SecureConnection;
    const bytes = encodeHandshakeResponse41({ ...header, capabilities: caps, username: 'root', authResponse: Buffer.alloc(20, 9), database: undefined, authPluginName: undefined, connectAttributes: undefined });
    expect(bytes[32 + 'root'.length + 1]).toBe(20);
  });

  it('treats optional fields missing at the end as absent, like the servers', () => {
    const bytes = encodeHandshakeResponse41({ ...mysqlClient, database: 'd', authPluginName: 'p', connectAttributes: {} });
    const cut = bytes.subarray(0, bytes.length - 1 - 2 - 2); // drop attributes, plugin name, database
    expect(decodeClientHandshake(cut)).toMatchObject({ database: undefined, authPluginName: undefined, connectAttributes: undefined });
  });

  it('refuses every truncation up to the end of the auth response', () => {
    const bytes = encodeHandshakeResponse41(mysqlClient);
    const authEnd = 32 + 'alice'.length + 1 + 1 + 32;
    for (let at = 0; at < authEnd; at++) {
      if (at === SSL_REQUEST_LENGTH) continue; // without CLIENT_SSL this is also refused, tested above
      expectProtocolError(() => decodeClientHandshake(bytes.subarray(0, at)));
    }
    expectProtocolError(() => decodeClientHandshake(bytes.subarray(0, SSL_REQUEST_LENGTH)));
  });

  it('refuses a pre-4.1 client and an auth length past the end', () => {
    expectProtocolError(() => decodeClientHandshake(encodeHandshakeResponse41({ ...mysqlClient, capabilities: CLIENT_CAPS & ~Capability.Protocol41 })));
    const caps = Capability.Protocol41 | Capability.SecureConnection;
    const bytes = encodeHandshakeResponse41({ ...header, capabilities: caps, username: 'u', authResponse: Buffer.alloc(4), database: undefined, authPluginName: undefined, connectAttributes: undefined });
    bytes[32 + 2] = 200;
    expectProtocolError(() => decodeClientHandshake(bytes));
  });

  it('refuses an auth response over 255 bytes without lenenc client data when encoding', () => {
    const caps = Capability.Protocol41 | Capability.SecureConnection;
    expect(() => encodeHandshakeResponse41({ ...mysqlClient, capabilities: caps, authResponse: Buffer.alloc(256) })).toThrow(RangeError);
  });

  const withAttributes = (attributes: Record<string, string>) => encodeHandshakeResponse41({ ...mysqlClient, connectAttributes: attributes });
  const many = (count: number, value = 'v') => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, value]));

  it(`accepts ${MAX_CONNECT_ATTRS} attributes and refuses one more`, () => {
    expect(Object.keys((decodeClientHandshake(withAttributes(many(MAX_CONNECT_ATTRS))) as HandshakeResponse41).connectAttributes!)).toHaveLength(MAX_CONNECT_ATTRS);
    expectProtocolError(() => decodeClientHandshake(withAttributes(many(MAX_CONNECT_ATTRS + 1))));
  });

  it('refuses attributes over 64 KiB in all', () => {
    const value = 'x'.repeat(1000);
    const count = Math.ceil(MAX_CONNECT_ATTRS_LENGTH / 1000);
    expectProtocolError(() => decodeClientHandshake(withAttributes(many(count, value))));
  });

  it('refuses an attribute string that runs past its block', () => {
    const bytes = withAttributes({ a: 'b' });
    bytes[bytes.length - 2] = 5; // the value's length
    expectProtocolError(() => decodeClientHandshake(bytes));
  });
});

describe('authentication exchange', () => {
  it('round-trips AuthSwitchRequest and takes the scramble from its plugin data', () => {
    const request = { pluginName: 'mysql_native_password', pluginData: Buffer.concat([SCRAMBLE, Buffer.from([0])]) };
    const decoded = decodeAuthSwitchRequest(encodeAuthSwitchRequest(request));
    expect(decoded).toEqual(request);
    expect(scrambleFromPluginData(decoded.pluginData)).toEqual(SCRAMBLE);
    expect(scrambleFromPluginData(SCRAMBLE)).toEqual(SCRAMBLE);
    expect(decodeAuthSwitchRequest(Buffer.from([0xfe]))).toEqual({ pluginName: 'mysql_old_password', pluginData: Buffer.alloc(0) });
    expectProtocolError(() => decodeAuthSwitchRequest(Buffer.from('\xfemysql_clear_password', 'latin1')));
  });

  it('round-trips AuthSwitchResponse and AuthMoreData', () => {
    expect(decodeAuthSwitchResponse(Buffer.from('token\0'))).toEqual(Buffer.from('token\0'));
    expectProtocolError(() => decodeAuthSwitchResponse(Buffer.alloc(64 * 1024 + 1)));
    const key = Buffer.from('-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n');
    expect(decodeAuthMoreData(encodeAuthMoreData(key))).toEqual(key);
    expectProtocolError(() => decodeAuthMoreData(Buffer.from([0x02, 0x03])));
  });

  it('tells apart what a server sends while authenticating (bytes from a real exchange)', () => {
    // Fast auth success then OK, as caching_sha2_password servers send them.
    const packets = drain(new PacketDecoder(), Buffer.from([2, 0, 0, 2, 1, 3, 7, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]));
    expect(packets.map((p) => p.sequenceId)).toEqual([2, 3]);
    expect(decodeAuthServerPacket(packets[0]!.payload, CLIENT_CAPS)).toEqual({ type: 'auth-more-data', data: Buffer.from([CachingSha2Status.FastAuthSuccess]) });
    expect(decodeAuthServerPacket(packets[1]!.payload, CLIENT_CAPS)).toEqual({
      type: 'ok',
      ok: { affectedRows: 0n, lastInsertId: 0n, statusFlags: ServerStatus.Autocommit, warnings: 0, info: '', sessionState: undefined },
    });
    expect(decodeAuthServerPacket(Buffer.from([1, 4]), CLIENT_CAPS)).toEqual({ type: 'auth-more-data', data: Buffer.from([CachingSha2Status.PerformFullAuthentication]) });
    const err = encodeErr({ code: 1045, sqlState: '28000', message: 'Access denied' });
    expect(decodeAuthServerPacket(err, CLIENT_CAPS)).toEqual({ type: 'err', err: { code: 1045, sqlState: '28000', message: 'Access denied' } });
    const switchRequest = encodeAuthSwitchRequest({ pluginName: 'mysql_clear_password', pluginData: Buffer.alloc(0) });
    expect(decodeAuthServerPacket(switchRequest, CLIENT_CAPS)).toMatchObject({ type: 'auth-switch', request: { pluginName: 'mysql_clear_password' } });
    expectProtocolError(() => decodeAuthServerPacket(Buffer.from([0x05]), CLIENT_CAPS));
    expectProtocolError(() => decodeAuthServerPacket(Buffer.alloc(0), CLIENT_CAPS));
  });
});

describe('OK and ERR', () => {
  const full = { affectedRows: 2n ** 60n, lastInsertId: 300n, statusFlags: ServerStatus.Autocommit | ServerStatus.InTrans, warnings: 3, info: 'Rows matched: 1', sessionState: undefined };

  it.each([
    ['without session tracking', Capability.Protocol41, full],
    ['with session tracking', CLIENT_CAPS, full],
    ['with session tracking and state', CLIENT_CAPS, { ...full, statusFlags: full.statusFlags | ServerStatus.SessionStateChanged, sessionState: Buffer.from([0, 3, 2, 1, 0x61]) }],
    ['with session tracking and nothing after the warnings', CLIENT_CAPS, { ...full, info: '' }],
  ])('round-trip OK %s', (_name, caps, ok) => {
    expect(decodeOk(encodeOk(ok, caps), caps)).toEqual(ok);
  });

  it('encodes the smallest OK as servers do, and accepts one headed 0xfe (CLIENT_DEPRECATE_EOF)', () => {
    expect(encodeOk({ statusFlags: ServerStatus.Autocommit }, CLIENT_CAPS).toString('hex')).toBe('00000002000000');
    const eofOk = encodeOk({ affectedRows: 1n }, CLIENT_CAPS, ResponseHeader.Eof);
    expect(eofOk[0]).toBe(0xfe);
    expect(decodeOk(eofOk, CLIENT_CAPS).affectedRows).toBe(1n);
    expectProtocolError(() => decodeOk(Buffer.from([0x01, 0, 0, 0, 0, 0, 0]), CLIENT_CAPS));
  });

  it('round-trips ERR with and without SQLSTATE, byte for byte', () => {
    const err = { code: 1045, sqlState: '28000', message: "Access denied for user 'alice'" };
    const bytes = encodeErr(err);
    expect(bytes.subarray(0, 9).toString('latin1')).toBe('\xff\x15\x04#28000');
    expect(decodeErr(bytes)).toEqual(err);
    const early = { code: 1130, sqlState: undefined, message: 'Host is not allowed to connect' };
    expect(decodeErr(encodeErr(early))).toEqual(early);
    expect(() => encodeErr({ ...err, sqlState: '2800' })).toThrow(RangeError);
    for (let at = 0; at < 9; at++) {
      if (at === 3) continue; // code only, no SQLSTATE, empty message: valid
      expectProtocolError(() => decodeErr(bytes.subarray(0, at)));
    }
  });

});

describe('commands', () => {
  it.each([
    ['without query attributes', Capability.Protocol41],
    ['with query attributes', CLIENT_CAPS],
  ])('round-trips COM_QUERY %s', (_name, caps) => {
    const sql = "select 'ü', 1 -- ünïcode";
    expect(decodeQuery(comQuery(sql, caps), caps)).toEqual({ sql, attributeCount: 0 });
  });

  it('reads the query text after attributes (the example of the protocol documentation)', () => {
    const payload = Buffer.concat([Buffer.from('0301010001fe000161013131', 'hex').subarray(0, 11), Buffer.from('select @@version_comment limit 1')]);
    expect(decodeQuery(payload, CLIENT_CAPS)).toEqual({ sql: 'select @@version_comment limit 1', attributeCount: 1 });
    // The same bytes read without the capability are not the query: the decoder must be told.
    expect(decodeQuery(payload, Capability.Protocol41).sql).not.toBe('select @@version_comment limit 1');
  });

  const attributes = () =>
    new PayloadWriter()
      .u8(Command.Query)
      .lenenc(5)
      .lenenc(1)
      .u8(0b00000100) // the third is NULL
      .u8(1)
      .u8(FieldType.LongLong).u8(0x80).lenencBytes('id')
      .u8(FieldType.DateTime).u8(0).lenencBytes('at')
      .u8(FieldType.VarString).u8(0).lenencBytes('gone')
      .u8(FieldType.Tiny).u8(0).lenencBytes('t')
      .u8(FieldType.Blob).u8(0).lenencBytes('traceparent')
      .u64(42n)
      .u8(7).bytes(Buffer.from([0xe8, 0x07, 1, 2, 3, 4, 5]))
      .u8(1)
      .lenencBytes('00-abc-def-01')
      .string('select now()')
      .finish();

  it('skips attribute values of every width, NULLs included', () => {
    const payload = attributes();
    expect(decodeQuery(payload, CLIENT_CAPS)).toEqual({ sql: 'select now()', attributeCount: 5 });
    const attributesEnd = payload.length - 'select now()'.length;
    for (let at = 0; at < attributesEnd; at++) expectProtocolError(() => decodeQuery(payload.subarray(0, at), CLIENT_CAPS));
  });

  it('refuses attributes without types', () => {
    const payload = Buffer.from(attributes());
    payload[5] = 0; // new_params_bind_flag
    expectProtocolError(() => decodeQuery(payload, CLIENT_CAPS));
  });

  it('decodes COM_STMT_PREPARE and refuses another command byte', () => {
    expect(decodeStmtPrepare(comStmtPrepare('select ? + ?'))).toBe('select ? + ?');
    expectProtocolError(() => decodeStmtPrepare(comQuery('select 1')));
    expectProtocolError(() => decodeQuery(comStmtPrepare('select 1'), 0));
    expectProtocolError(() => decodeStmtPrepare(Buffer.alloc(0)));
  });
});

describe('message streams', () => {
  const caps = CLIENT_CAPS;
  const serverPayloads = [
    encodeHandshakeV10({ serverVersion: '8.0.36-azdb', connectionId: 1, authPluginData: SCRAMBLE, capabilities: MYSQL_SERVER_CAPS, characterSet: 255, statusFlags: 2, authPluginName: 'caching_sha2_password', mariadbCapabilities: 0 }),
    encodeAuthSwitchRequest({ pluginName: 'mysql_clear_password', pluginData: Buffer.alloc(0) }),
    encodeAuthMoreData(Buffer.from([CachingSha2Status.PerformFullAuthentication])),
    encodeOk({ statusFlags: 2, info: 'welcome' }, caps),
    encodeErr({ code: 1158, sqlState: '08S01', message: 'Got an error reading communication packets' }),
  ];
  const clientPayloads = [
    encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0, username: 'alice', authResponse: Buffer.alloc(32, 5), database: 'orders', authPluginName: 'caching_sha2_password', connectAttributes: { _client_name: 'libmariadb' } }),
    Buffer.from('token\0'),
    comQuery('select 1', caps),
    comStmtPrepare('select ?'),
    execute(0).lenenc(1).u8(0).u8(1).u8(FieldType.Tiny).u8(0).lenencBytes('').u8(1).finish(),
    Buffer.from([Command.Quit]),
  ];

  function decodeStream(bytes: Buffer, at: number): Buffer[] {
    const decoder = new PacketDecoder();
    const payloads = splitAt(bytes, at).flatMap((chunk) => drain(decoder, chunk)).map((p) => Buffer.from(p.payload));
    expect(decoder.rest()).toEqual(Buffer.alloc(0));
    return payloads;
  }

  it('decode the same server messages wherever the stream is split', () => {
    const bytes = Buffer.concat(serverPayloads.map((p, i) => encodePacket(i, p)));
    for (let at = 0; at <= bytes.length; at++) {
      const [handshake, authSwitch, moreData, ok, err] = decodeStream(bytes, at);
      expect(decodeHandshakeV10(handshake!).serverVersion).toBe('8.0.36-azdb');
      expect(decodeAuthSwitchRequest(authSwitch!).pluginName).toBe('mysql_clear_password');
      expect(decodeAuthMoreData(moreData!)).toEqual(Buffer.from([4]));
      expect(decodeOk(ok!, caps).info).toBe('welcome');
      expect(decodeErr(err!).code).toBe(1158);
    }
  });

  it('decode the same client messages wherever the stream is split', () => {
    const bytes = Buffer.concat(clientPayloads.map((p, i) => encodePacket(i < 2 ? i + 1 : 0, p)));
    for (let at = 0; at <= bytes.length; at++) {
      const [response, switchResponse, query, prepare, executePacket, quit] = decodeStream(bytes, at);
      expect(decodeClientHandshake(response!)).toMatchObject({ type: 'response', username: 'alice', connectAttributes: { _client_name: 'libmariadb' } });
      expect(decodeAuthSwitchResponse(switchResponse!).toString()).toBe('token\0');
      expect(decodeQuery(query!, caps).sql).toBe('select 1');
      expect(decodeStmtPrepare(prepare!)).toBe('select ?');
      // What the audit reads of COM_STMT_EXECUTE: the command byte and the statement id.
      expect([executePacket![0], executePacket!.readUInt32LE(1)]).toEqual([Command.StmtExecute, 12]);
      expect(quit).toEqual(Buffer.from([Command.Quit]));
    }
  });
});

describe('COM_CHANGE_USER', () => {
  const caps = Capability.Protocol41 | Capability.SecureConnection | Capability.PluginAuth | Capability.ConnectAttrs;
  const request = { user: 'app', authResponse: Buffer.alloc(20, 7), database: 'shop', characterSet: 45, authPluginName: 'mysql_native_password', connectAttributes: { _client_name: 'x' } };

  it('round-trips every field, the auth response with a 1-byte length', () => {
    const payload = encodeChangeUser(request, caps);
    expect(payload[0]).toBe(Command.ChangeUser);
    expect(payload[1 + 'app\0'.length]).toBe(20);
    expect(decodeChangeUser(payload, caps)).toEqual(request);
  });

  it('always writes the attribute block under CLIENT_CONNECT_ATTRS (MariaDB refuses the packet without it)', () => {
    const payload = encodeChangeUser({ ...request, connectAttributes: undefined }, caps);
    expect(payload.at(-1)).toBe(0); // an empty block: its length, 0
    expect(decodeChangeUser(payload, caps).connectAttributes).toEqual({});
    expect(decodeChangeUser(encodeChangeUser(request, caps & ~Capability.ConnectAttrs), caps & ~Capability.ConnectAttrs).connectAttributes).toBeUndefined();
  });

  it('reads the short packet of old clients: no character set, plugin or attributes', () => {
    const old = Buffer.concat([Buffer.from([Command.ChangeUser]), Buffer.from('app\0'), Buffer.from([0]), Buffer.from('shop\0')]);
    expect(decodeChangeUser(old, caps)).toEqual({ user: 'app', authResponse: Buffer.alloc(0), database: 'shop', characterSet: undefined, authPluginName: undefined, connectAttributes: undefined });
  });
});
