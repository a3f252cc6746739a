/**
 * MySQL transparency: each scenario runs with mysql2 straight against the emulated Azure Database
 * for MySQL (verified TLS, the Entra token as clear password, the real MariaDB behind it — what a
 * client sees without azdb) and then through azdb tunnels with and without `audit.queries` and
 * through a session-mode and a transaction-mode pool, and
 * what the driver reports is compared: values and their JavaScript types, column metadata (type,
 * flags, charset, length, decimals, MariaDB's extended type names and formats), errors with code
 * and SQLSTATE, warning counts, OK packet fields (affected rows, insert id, status flags, info),
 * multi-statement results, prepared statements, rows over 16 MiB, LOAD DATA LOCAL, KILL QUERY,
 * COM_CHANGE_USER and COM_RESET_CONNECTION. Normalised (the README's MySQL broker section says
 * why): connection ids are not compared (azdb greets with its own id, minted before any server
 * connection exists, so the greeting's id differs from connection_id(); a KILL naming the
 * greeting's id still reaches the right thread), and the login (token vs. tunnel password) is not
 * compared.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import mysql from 'mysql2/promise';
import { findTool } from '../harness/tools.js';
import { BrokerFixture, USER } from '../helpers/broker-fixtures.js';
import { waitFor } from '../helpers/wait.js';
import { createMemoryAuditSink } from '../../src/broker/audit.js';
import type { Tunnel } from '../../src/broker/tunnel.js';
import { createAadUser } from '../../src/emulator/mysql-aad-users.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { describeTransparency, scenario, type Path } from './harness.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
const OTHER = 'azdb_transparent';

/** How a scenario reaches MariaDB on one path: connections, and the password a COM_CHANGE_USER proves. */
interface MyEndpoint {
  connect(options?: mysql.ConnectionOptions): Promise<mysql.Connection>;
  password(): Promise<string>;
}

const endpoints: Record<'direct' | 'plain' | 'audited' | 'session' | 'transaction', MyEndpoint | undefined> = { direct: undefined, plain: undefined, audited: undefined, session: undefined, transaction: undefined };
/** Pooled paths: enough connections that a scenario's two connections never wait for each other. */
const POOL = { maxServerConnections: 4, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };

function tunnelEndpoint(t: Tunnel): MyEndpoint {
  return {
    connect: (options = {}) => mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, database: 'shop', connectTimeout: 10_000, ...options }),
    password: async () => t.password,
  };
}

const admin = (sql: string, params: unknown[] = []) => broker.azure.realMariaDb!.query(sql, params);

beforeAll(async () => {
  if (mariadbd.skip) return;
  await broker.start();
  const server = broker.azure.servers.find((s) => s.name === 'shopdb')!;
  endpoints.direct = {
    connect: async (options = {}) =>
      mysql.createConnection({
        host: '127.0.0.1',
        port: server.port,
        user: server.loginUser,
        password: await broker.getToken(),
        database: 'shop',
        ssl: { ca: broker.azure.caPem, rejectUnauthorized: true },
        enableCleartextPlugin: true,
        connectTimeout: 10_000,
        ...options,
      }),
    password: () => broker.getToken(),
  };
  for (const kind of ['plain', 'audited'] as const) {
    endpoints[kind] = tunnelEndpoint(await broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', audit: createMemoryAuditSink({ queries: kind === 'audited' }) }));
  }
  for (const mode of ['session', 'transaction'] as const) {
    endpoints[mode] = tunnelEndpoint(await broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', pool: { ...POOL, mode } }));
  }
  // Rows over 16 MiB (continuation packets) need a larger max_allowed_packet than MariaDB's default.
  await admin('set global max_allowed_packet = 64 * 1024 * 1024');
  await admin('set global local_infile = 1');
  await admin(`create or replace table shop.transparency_items (
    id int primary key auto_increment, label varchar(40) not null unique, price decimal(10,2), ratio double, small float,
    big bigint unsigned, at datetime(6), day date, span time(3), yr year, flag bit(3), kind enum('a','b'), tags set('x','y'),
    doc json, id2 uuid, addr inet6, note text, raw varbinary(16), fixed char(4) character set latin1)`);
  await admin(`insert into shop.transparency_items (label, price, ratio, small, big, at, day, span, yr, flag, kind, tags, doc, id2, addr, note, raw, fixed) values
    ('one', 1.25, 1/3, 0.5, 18446744073709551615, '2024-05-06 07:08:09.123456', '2024-05-06', '-838:59:58.5', 2024, b'101', 'a', 'x,y',
     '{"n": 1, "ok": true}', '123e4567-e89b-12d3-a456-426614174000', '::1', 'héllo wörld', x'00ff10', 'ab'),
    ('two', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)`);
  await admin('create or replace table shop.transparency_load (id int primary key, label varchar(40))');
  await createAadUser(broker.azure.realMariaDb!, { user: OTHER, identifiedBy: DEMO_IDENTITY.objectId, type: 'service' });
  await admin(`grant select on shop.* to ?@'%'`, [OTHER]);
}, 120_000);

afterAll(async () => {
  if (mariadbd.skip) return;
  await admin('drop table if exists shop.transparency_items, shop.transparency_load').catch(() => {});
  await broker.stop();
});

// ---- What the driver reports, as plain data ------------------------------------------------------

const FIELD_KEYS = ['schema', 'table', 'orgTable', 'name', 'orgName', 'characterSet', 'columnLength', 'columnType', 'flags', 'decimals', 'extendedTypeName', 'extendedFormat'] as const;

function fieldsOf(fields: unknown): unknown {
  if (!Array.isArray(fields)) return fields;
  return fields.map((f) => (f == null ? null : Array.isArray(f) ? fieldsOf(f) : Object.fromEntries(FIELD_KEYS.map((k) => [k, (f as Record<string, unknown>)[k]]))));
}

/** A value with its JavaScript type, so a number that turned into a string shows. */
function typed(value: unknown): unknown {
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return { buffer: value.toString('hex') };
  if (value instanceof Date) return { date: value.toISOString() };
  if (Array.isArray(value)) return value.map(typed);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, typed(v)]));
  if (typeof value === 'string' && value.length > 200) return { string: value.length, head: value.slice(0, 20), tail: value.slice(-20) };
  return { [typeof value]: value };
}

/** What a query or execute gave: rows with typed values and column metadata, or the OK packet's fields. */
function result([rows, fields]: [unknown, unknown]): unknown {
  return { rows: typed(rows), fields: fieldsOf(fields) };
}

interface DriverError {
  errno?: number;
  sqlState?: string;
  code?: string;
  message: string;
}

async function failure(pending: Promise<unknown>): Promise<DriverError> {
  return pending.then(
    () => ({ message: 'no error' }),
    (e: DriverError) => ({ errno: e.errno, sqlState: e.sqlState, code: e.code, message: e.message }),
  );
}

/** One connection: runs `body`, always closes. */
function on<O>(body: (c: mysql.Connection, e: MyEndpoint) => Promise<O>, options: mysql.ConnectionOptions = {}) {
  return async (e: MyEndpoint): Promise<O> => {
    const c = await e.connect(options);
    try {
      return await body(c, e);
    } finally {
      c.destroy();
    }
  };
}

const ITEMS = 'select * from transparency_items order by id';
const flat = (observed: unknown): string => JSON.stringify(observed);

// ---- The scenarios -----------------------------------------------------------------------------

const scenarios = [
  scenario(
    'text protocol: values, JavaScript types and column metadata of every kind of column',
    on(async (c) => [result(await c.query(ITEMS)), result(await c.query({ sql: ITEMS, rowsAsArray: true }))]),
    (o) => {
      const rows = (o[0] as { rows: Array<Record<string, unknown>> }).rows;
      expect(rows[0]!.doc).toEqual({ n: { number: 1 }, ok: { boolean: true } });
      expect(rows[0]!.price).toEqual({ string: '1.25' });
      const fields = (o[0] as { fields: Array<Record<string, unknown>> }).fields;
      expect(fields.find((f) => f.name === 'id2')!.extendedTypeName).toBe('uuid');
      expect(fields.find((f) => f.name === 'doc')!.extendedFormat).toBe('json');
    },
  ),
  scenario(
    'binary protocol: the same through COM_STMT_PREPARE/EXECUTE, parameters of each type, NULLs',
    on(async (c) => {
      const out = [result(await c.execute('select * from transparency_items where id >= ? order by id', [1]))];
      out.push(result(await c.execute('select ? as i, ? as d, ? as s, ? as n, ? as b, ? as big', [42, 1.5, 'héllo', null, Buffer.from([1, 2]), 2n ** 60n])));
      const [rows] = await c.execute<mysql.RowDataPacket[]>('select count(*) as n from transparency_items where label in (?, ?)', ['one', 'nope']);
      out.push(typed(rows));
      return out;
    }),
    (o) => expect(o[2]).toEqual([{ n: { number: 1 } }]),
  ),
  scenario(
    'errors: code, SQLSTATE and message, in text and prepared statements',
    on(async (c) => [
      await failure(c.query('selec 1')),
      await failure(c.query('select * from no_such_table')),
      await failure(c.query("insert into transparency_items (label) values ('one')")),
      await failure(c.execute('select nope from transparency_items where id = ?', [1])),
      await failure(c.query('select 1 from transparency_items where id = (select id from transparency_items)')),
    ]),
    (o) => {
      expect(o[0]).toMatchObject({ errno: 1064, sqlState: '42000' });
      expect(o[1]).toMatchObject({ errno: 1146, sqlState: '42S02' });
      expect(o[2]).toMatchObject({ errno: 1062, sqlState: '23000' });
      expect(o[3]).toMatchObject({ errno: 1054, sqlState: '42S22' });
    },
  ),
  scenario(
    'OK packets: affected rows, insert id, status flags, warnings, info',
    on(async (c) => {
      const out: unknown[] = [];
      // Every run's insert gets the same id: the next after the two rows of beforeAll.
      await c.query('alter table transparency_items auto_increment = 1');
      out.push(typed((await c.query("insert ignore into transparency_items (label, small) values ('three', 1e300)"))[0]));
      out.push(typed((await c.query('show warnings'))[0]));
      out.push(typed((await c.query("update transparency_items set note = 'x' where label in ('one', 'two')"))[0]));
      out.push(typed((await c.query('start transaction'))[0]));
      out.push(typed((await c.query("delete from transparency_items where label = 'three'"))[0]));
      out.push(typed((await c.query('rollback'))[0]));
      out.push(typed((await c.execute("update transparency_items set note = ? where label = 'one'", ['héllo wörld']))[0]));
      await c.query("delete from transparency_items where label = 'three'");
      await c.query("update transparency_items set note = null where label = 'two'");
      return out;
    }),
    (o) => {
      expect(o[0]).toMatchObject({ affectedRows: { number: 1 }, warningStatus: { number: 1 } });
      expect((o[0] as { insertId: { number: number } }).insertId.number).toBeGreaterThan(2);
      expect(o[2]).toMatchObject({ affectedRows: { number: 2 }, changedRows: { number: 2 }, info: { string: 'Rows matched: 2  Changed: 2  Warnings: 0' } });
      expect((o[4] as { serverStatus: { number: number } }).serverStatus.number & 1).toBe(1); // SERVER_STATUS_IN_TRANS
    },
  ),
  scenario(
    'insert ids of multi-row inserts, with the auto-increment numbers normalised to this run',
    on(async (c) => {
      const [ok] = await c.query<mysql.ResultSetHeader>("insert into transparency_items (label) values ('m1'), ('m2'), ('m3')");
      const [rows] = await c.query<mysql.RowDataPacket[]>("select id from transparency_items where label like 'm_' order by id");
      await c.query("delete from transparency_items where label like 'm_'");
      return { affected: ok.affectedRows, info: ok.info, firstIsInsertId: rows[0]!.id === ok.insertId, count: rows.length };
    }),
    (o) => expect(o).toEqual({ affected: 3, info: 'Records: 3  Duplicates: 0  Warnings: 0', firstIsInsertId: true, count: 3 }),
  ),
  scenario(
    'warnings: counts in OK packets, SHOW WARNINGS in the same transaction and in the same multi-statement query',
    on(
      async (c) => {
        const out: unknown[] = [];
        out.push(typed((await c.query('start transaction'))[0]));
        out.push(typed((await c.query("insert ignore into transparency_items (label) values ('one'), ('two')"))[0]));
        out.push(typed((await c.query('show warnings'))[0]));
        out.push(typed((await c.query("update ignore transparency_items set small = 1e300 where label = 'two'"))[0]));
        out.push(typed((await c.query('select @@warning_count as n'))[0]));
        out.push(typed((await c.query('rollback'))[0]));
        out.push(result(await c.query("insert ignore into transparency_items (label) values ('one'); show warnings; select 'after' as a")));
        return out;
      },
      { multipleStatements: true },
    ),
    (o) => {
      expect(o[1]).toMatchObject({ affectedRows: { number: 0 }, warningStatus: { number: 2 } });
      expect(flat(o[2])).toContain('1062');
      expect(o[3]).toMatchObject({ warningStatus: { number: 1 } });
      expect(o[4]).toEqual([{ n: { number: 1 } }]);
      expect(flat(o[6])).toContain('1062');
    },
  ),
  scenario(
    'multi-statement results: result sets and OK packets in order, an error ending them',
    on(
      async (c) => [
        result(await c.query("select 1 as a; select 'two' as b, 2.5 as c; set @x = 3; select @x as x, connection_id() > 0 as own")),
        await failure(c.query('select 1; selec 2; select 3')),
        result(await c.query('select 4 as after')),
      ],
      { multipleStatements: true },
    ),
    (o) => {
      expect((o[0] as { rows: unknown[] }).rows).toHaveLength(4);
      expect(o[1]).toMatchObject({ errno: 1064 });
    },
  ),
  scenario(
    'stored procedure: several result sets and the final OK, text and prepared',
    on(async (c) => {
      await c.query('create or replace procedure transparency_proc(in n int) begin select n as n; select n * 2 as twice; end');
      const out = [result(await c.query('call transparency_proc(5)')), result(await c.execute('call transparency_proc(?)', [6]))];
      await c.query('drop procedure transparency_proc');
      return out;
    }),
    (o) => expect(o).toHaveLength(2),
  ),
  scenario(
    'a row over 16 MiB each way (continuation packets)',
    on(async (c) => {
      const size = 17 * 1024 * 1024;
      const [[sent]] = await c.query<mysql.RowDataPacket[]>(`select length('${'x'.repeat(size)}') as n`);
      const [big] = await c.query<mysql.RowDataPacket[]>(`select repeat('y', ${size}) as big, 'end' as tail`);
      const [prepared] = await c.execute<mysql.RowDataPacket[]>('select length(?) as n', ['z'.repeat(size)]);
      return [typed(sent), typed(big), typed(prepared)];
    }),
    (o) => expect(o[0]).toEqual({ n: { number: 17 * 1024 * 1024 } }),
    60_000,
  ),
  scenario(
    'LOAD DATA LOCAL INFILE: the client streams the file, the server reports the rows',
    on(
      async (c) => {
        await c.query('delete from transparency_load');
        const lines = Array.from({ length: 20_000 }, (_, i) => `${i + 1}\trow ${i + 1}\n`).join('');
        const [ok] = await c.query({ sql: "load data local infile 'rows.tsv' into table transparency_load", infileStreamFactory: () => Readable.from([Buffer.from(lines)]) });
        const [[count]] = await c.query<mysql.RowDataPacket[]>('select count(*) as n, sum(id) as s from transparency_load');
        const refused = await failure(c.query({ sql: "load data local infile 'x' into table no_such_table", infileStreamFactory: () => Readable.from([Buffer.from('1\tx\n')]) }));
        return [typed(ok), typed(count), refused];
      },
      { flags: ['+LOCAL_FILES'] },
    ),
    (o) => expect(o[0]).toMatchObject({ affectedRows: { number: 20_000 } }),
  ),
  scenario(
    'KILL QUERY from a second connection interrupts the first, which stays usable',
    async (e: MyEndpoint) => {
      const a = await e.connect();
      const b = await e.connect();
      try {
        const marker = `transparency-${Math.random()}`;
        const running = failure(a.query(`select sleep(30), '${marker}'`));
        await waitFor(async () => {
          const [rows] = await b.query<mysql.RowDataPacket[]>('select id from information_schema.processlist where info like ? and info not like ?', [`%${marker}%`, '%processlist%']);
          return rows.length > 0;
        }, 'the sleeping query to run');
        // The greeting's id, as mysql's Ctrl+C sends it: azdb's own on its paths, translated.
        const [killed] = await b.query<mysql.ResultSetHeader>(`kill query ${a.threadId}`);
        const interrupted = await running;
        const [[after]] = await a.query<mysql.RowDataPacket[]>('select 1 as ok');
        return [typed(killed), interrupted, typed(after)];
      } finally {
        a.destroy();
        b.destroy();
      }
    },
    (o) => expect(o[1]).toMatchObject({ errno: 1317, sqlState: '70100' }),
  ),
  scenario(
    'COM_RESET_CONNECTION drops session state; COM_CHANGE_USER to another principal and back',
    on(async (c, e) => {
      await c.query('set @mark = 1');
      await c.reset();
      const [[reset]] = await c.query<mysql.RowDataPacket[]>('select @mark as mark, current_user() as user');
      const password = await e.password();
      await c.changeUser({ user: OTHER, password, database: 'shop' });
      const [[other]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user, database() as db');
      const denied = await failure(c.query('delete from transparency_load'));
      await c.changeUser({ user: USER, password, database: 'shop' });
      const [[back]] = await c.query<mysql.RowDataPacket[]>('select current_user() as user');
      return [typed(reset), typed(other), denied, typed(back)];
    }),
    (o) => {
      expect(o[0]).toEqual({ mark: null, user: { string: `${USER}@%` } });
      expect(o[1]).toEqual({ user: { string: `${OTHER}@%` }, db: { string: 'shop' } });
      expect(o[2]).toMatchObject({ errno: 1142 });
    },
  ),
  scenario(
    'connection id: connection_id() is this connection\'s thread, the same in every statement (the greeting\'s id is not compared)',
    on(async (c) => {
      const [[row]] = await c.query<mysql.RowDataPacket[]>('select connection_id() as id');
      const [[processlist]] = await c.query<mysql.RowDataPacket[]>('select count(*) as n from information_schema.processlist where id = connection_id()');
      const [[again]] = await c.execute<mysql.RowDataPacket[]>('select connection_id() as id');
      return { listed: Number(processlist!.n), same: row!.id === again!.id };
    }),
    (o) => expect(o).toEqual({ listed: 1, same: true }),
  ),
];

const path = (name: string, kind: keyof typeof endpoints): Path<MyEndpoint> => ({ name, endpoint: () => endpoints[kind]! });

if (mariadbd.skip) {
  describe.skip('MySQL transparency (no mariadbd)', () => {});
} else {
  describeTransparency('MySQL transparency: what mysql2 sees straight and through azdb', {
    direct: path('the emulated Azure server', 'direct'),
    through: [path('a tunnel', 'plain'), path('a tunnel with audit.queries', 'audited'), path('a session-mode pool', 'session'), path('a transaction-mode pool', 'transaction')],
    scenarios,
  });
}
