/**
 * PostgreSQL transparency: each scenario runs straight against the emulated Azure server (TLS, the
 * Entra token, the real PostgreSQL 17 behind it — what a client sees without azdb) and then
 * through azdb tunnels with and without `audit.queries` and through a session-mode and a
 * transaction-mode pool (what differs there is listed per path below), and every backend message the client
 * received after AuthenticationOk is compared: values and their formats, column metadata (table
 * and type oids, typmods, formats), errors and notices with all their fields, ParameterStatus,
 * command tags, notifications and COPY streams. Normalised: the login before AuthenticationOk
 * (Entra token over TLS vs. SCRAM with the tunnel password) and BackendKeyData's secret key
 * (azdb's own, so cancels pass through azdb); process ids are named after the scenario's
 * sessions, so "a notification from this session" must stay that.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import { BrokerFixture, USER } from '../helpers/broker-fixtures.js';
import { waitFor } from '../helpers/wait.js';
import { createMemoryAuditSink } from '../../src/broker/audit.js';
import type { Tunnel } from '../../src/broker/tunnel.js';
import { describeTransparency, scenario, type Path } from './harness.js';
import { azureEndpoint, fe, sessionNames, transcript, tunnelEndpoint, type BackendMessage, type PgEndpoint, type PgSession } from './postgres-wire.js';

const broker = new BrokerFixture();
const tunnels: Record<'plain' | 'audited' | 'session' | 'transaction', Tunnel | undefined> = { plain: undefined, audited: undefined, session: undefined, transaction: undefined };
/** Pooled paths: enough connections that a scenario's two sessions never wait for each other. */
const POOL = { maxServerConnections: 4, minIdle: 0, idleTimeoutMs: 600_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 30_000 };
let direct: PgEndpoint;

const INT4 = 23;
const TEXT = 25;
const ROLE = `"${USER.replace(/"/g, '""')}"`;

const admin = (sql: string, params: unknown[] = []) => broker.azure.realPostgres.query(sql, params, 'orders');

beforeAll(async () => {
  await broker.start();
  const server = broker.azure.servers.find((s) => s.name === 'orders')!;
  direct = azureEndpoint(server, broker.azure.caPem, { user: USER, database: 'orders', token: broker.getToken });
  for (const kind of ['plain', 'audited'] as const) {
    tunnels[kind] = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', audit: createMemoryAuditSink({ queries: kind === 'audited' }) });
  }
  for (const mode of ['session', 'transaction'] as const) {
    tunnels[mode] = await broker.tunnel({ target: broker.target('orders'), dbName: 'orders', pool: { ...POOL, mode } });
  }
  // One table for every path, so its oid is the same in each run's column metadata.
  await admin(`
    drop table if exists transparency_items;
    create table transparency_items (
      id int primary key, label text not null, price numeric(10,2), tags text[], payload bytea,
      at timestamptz, doc jsonb, flag boolean, ratio float8, span interval, note varchar(20));
    insert into transparency_items
      select g, 'item ' || g, g * 1.25, array['t' || g, 'u'], decode(repeat(lpad(to_hex(g * 17), 2, '0'), 3), 'hex'),
             timestamptz '2024-05-06 07:08:09.123456+00' + g * interval '1 day', jsonb_build_object('n', g, 'ok', g % 2 = 0),
             g % 2 = 0, g / 3.0, g * interval '90 minutes', 'note ' || g
      from generate_series(1, 5) g;
    grant select, insert, update, delete on transparency_items to ${ROLE};`);
});

afterAll(async () => {
  await admin('drop table if exists transparency_items').catch(() => {});
  await broker.stop();
});

// ---- Scenario helpers ------------------------------------------------------------------------

/** Opens sessions named A, B, … and gives a transcript function that names their pids. */
async function sessions(endpoint: PgEndpoint, ...names: string[]): Promise<{ s: Record<string, PgSession>; show: (messages: BackendMessage[]) => unknown[]; closeAll: () => Promise<void> }> {
  const s: Record<string, PgSession> = {};
  for (const name of names) s[name] = await endpoint.open({ application_name: 'azdb-transparency' });
  const pids = sessionNames(s);
  return { s, show: (messages) => transcript(messages, pids), closeAll: async () => void (await Promise.all(Object.values(s).map((x) => x.wire.close()))) };
}

/** One session: each step's messages are sent and read up to as many ReadyForQuery as they ask for. */
function steps(...list: Array<Buffer[]>) {
  return async (endpoint: PgEndpoint): Promise<unknown[][]> => {
    const { s, show, closeAll } = await sessions(endpoint, 'A');
    const out: unknown[][] = [];
    for (const messages of list) {
      s.A!.wire.send(...messages);
      // Each Query, Sync and FunctionCall ends in one ReadyForQuery.
      const readies = messages.filter((m) => m[0] === 0x51 || m[0] === 0x53 || m[0] === 0x46).length;
      out.push(show(await s.A!.wire.ready(readies)));
    }
    await closeAll();
    return out;
  };
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');
const flat = (observed: unknown): string => JSON.stringify(observed);

/** Sends COPY data in pieces of uneven size, as a client streaming a file does. */
function copyChunks(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 7 + 13) % 9000 + 1) out.push(fe.copyData(bytes.subarray(at, at + size)));
  return out;
}

const copyRows = Array.from({ length: 5000 }, (_, i) => `${i + 1}\trow ${i + 1} ${'·'.repeat(i % 5)}\n`).join('');

// ---- The scenarios ---------------------------------------------------------------------------

const scenarios = [
  scenario(
    'login greeting: ParameterStatus, BackendKeyData, ReadyForQuery',
    async (e: PgEndpoint) => {
      const { s, show, closeAll } = await sessions(e, 'A');
      const greeting = show(s.A!.greeting);
      await closeAll();
      return greeting;
    },
    (o) => {
      expect(o[0]).toEqual({ R: 0 });
      expect(o).toContainEqual({ S: ['application_name', 'azdb-transparency'] });
      expect(o).toContainEqual({ S: ['session_authorization', USER] });
      expect(o.slice(-2)).toEqual([{ K: 'A' }, { Z: 'I' }]);
    },
  ),
  scenario(
    'startup parameters reach the server (options, DateStyle, no application_name)',
    async (e: PgEndpoint) => {
      const a = await e.open({ DateStyle: 'SQL, DMY', options: '-c work_mem=7MB -c search_path=public' });
      a.wire.send(fe.query("show work_mem; show search_path; select current_setting('application_name') as app, date '2024-05-06' as d"));
      const out = [transcript(a.greeting), transcript(await a.wire.ready())];
      await a.wire.close();
      return out;
    },
    (o) => {
      expect(o[0]).toContainEqual({ S: ['DateStyle', 'SQL, DMY'] });
      expect(o[0]).toContainEqual({ S: ['application_name', ''] });
      expect(flat(o[1])).toContain('"D":["7MB"]');
      expect(flat(o[1])).toContain('"D":["","06/05/2024"]');
    },
  ),
  scenario(
    'simple query: values, types and column metadata of a table',
    steps(
      [fe.query('select * from transparency_items order by id')],
      [fe.query(`select 1::int2 as a, 2::int8, 'x'::char(3), 'y'::varchar(7), 1.25::numeric(6,3), array[1,2]::int[], null::text, ''::text,
                        E'tab\\there', 'héllo ✓'::text, '{"k": [1, 2]}'::json, 1e300::float8 * 10 as inf, 'NaN'::numeric, point(1, 2)`)],
    ),
    (o) => {
      const [table, literals] = o as [unknown[], unknown[]];
      const columns = (table[0] as { T: Array<{ table: number; column: number; typmod: number }> }).T;
      expect(columns).toHaveLength(11);
      expect(columns.every((c) => c.table > 0 && c.column > 0)).toBe(true);
      expect(columns.find((c) => c.typmod === 4 + (10 << 16) + 2)).toBeDefined(); // numeric(10,2)
      expect(table.at(-2)).toEqual({ C: 'SELECT 5' });
      expect(flat(literals)).toContain('"C":"SELECT 1"');
    },
  ),
  scenario(
    'extended query: Describe, binary parameters and results, a row limit and PortalSuspended',
    steps([
      fe.parse('by_min_id', 'select id, label, price, at, payload, tags from transparency_items where id >= $1 order by id', [INT4]),
      fe.describe('S', 'by_min_id'),
      fe.bind('p', 'by_min_id', [fe.int32(2)], [1], [1]),
      fe.describe('P', 'p'),
      fe.execute('p', 2),
      fe.execute('p', 0),
      fe.close('P', 'p'),
      fe.close('S', 'by_min_id'),
      fe.sync(),
    ]),
    (o) => {
      const text = flat(o);
      expect(text).toContain('{"t":[23]}');
      expect(text).toContain('"s"');
      expect(text).toContain('"C":"SELECT 2"');
      expect((o[0] as unknown[]).filter((m) => m === '3')).toHaveLength(2);
    },
  ),
  scenario(
    'pipelined Syncs: an error in the middle skips only its own batch',
    steps([
      fe.parse('', 'select 1 as one'), fe.bind('', '', []), fe.execute(''), fe.sync(),
      fe.parse('', 'select 1/0'), fe.bind('', '', []), fe.execute(''), fe.sync(),
      fe.parse('', "select $1::text || '!' as shout", [TEXT]), fe.bind('', '', ['ok']), fe.execute(''), fe.sync(),
    ]),
    (o) => {
      const text = flat(o);
      expect(text).toContain('"C":"22012"');
      expect(text).toContain('"D":["ok!"]');
    },
  ),
  scenario(
    'Describe and Flush without Sync: the server answers at once',
    async (e: PgEndpoint) => {
      const { s, show, closeAll } = await sessions(e, 'A');
      s.A!.wire.send(fe.parse('', 'select label from transparency_items where id = $1', [INT4]), fe.bind('', '', ['3']), fe.describe('P', ''), fe.flush());
      const flushed = show(await s.A!.wire.until((m) => m.code === 'T', 'RowDescription'));
      s.A!.wire.send(fe.execute(''), fe.sync());
      const rest = show(await s.A!.wire.ready());
      await closeAll();
      return [flushed, rest];
    },
    (o) => expect(flat(o)).toContain('"D":["item 3"]'),
  ),
  scenario(
    'prepared statements in SQL, and several statements in one Query',
    steps(
      [fe.query('prepare q(int) as select $1 + 1 as n; execute q(41); deallocate q; execute q(1)')],
      [fe.query("begin; insert into transparency_items (id, label) values (100, 'tmp'); select count(*) from transparency_items; rollback; select count(*) from transparency_items")],
      [fe.query('')],
      [fe.query(';')],
    ),
    (o) => {
      const text = flat(o);
      expect(text).toContain('"D":["42"]');
      expect(text).toContain('"C":"26000"');
      expect(text).toContain('"C":"INSERT 0 1"');
      expect(text).toContain('"D":["6"]');
      expect(o[2]).toEqual(['I', { Z: 'I' }]);
    },
  ),
  scenario(
    'errors with every field: position, mid-transaction abort, constraint details',
    steps(
      [fe.query('selec 1')],
      [fe.query('begin')],
      [fe.query('select 1/0')],
      [fe.query('select 1')],
      [fe.query('rollback')],
      [fe.query("insert into transparency_items (id, label) values (1, 'duplicate')")],
      [fe.query('insert into transparency_items (id, label) values (200, null)')],
      [fe.query("select 'x'::int")],
    ),
    (o) => {
      const text = flat(o);
      for (const code of ['42601', '22012', '25P02', '23505', '23502', '22P02']) expect(text).toContain(`"C":"${code}"`);
      expect(text).toContain('"P":"1"');
      expect(text).toContain('"n":"transparency_items_pkey"');
      expect(text).toContain('"c":"label"');
      expect(text).toContain('{"Z":"E"}');
    },
  ),
  scenario(
    'notices, warnings and ParameterStatus changes',
    steps(
      [fe.query("do $$ begin raise notice 'hello %', 42; raise warning 'careful' using detail = 'the detail', hint = 'the hint'; end $$")],
      [fe.query("set application_name = 'renamed'; set timezone = 'Asia/Tokyo'; set datestyle = 'ISO, YMD'")],
      [fe.query("select timestamptz '2024-01-02 03:04:05+00' as t")],
      [fe.query('reset all')],
      [fe.query('create temp table if not exists notice_me (id int); create temp table if not exists notice_me (id int)')],
    ),
    (o) => {
      const text = flat(o);
      expect(text).toContain('"M":"hello 42"');
      expect(text).toContain('"H":"the hint"');
      expect(text).toContain('{"S":["application_name","renamed"]}');
      expect(text).toContain('{"S":["TimeZone","Asia/Tokyo"]}');
      expect(text).toContain('"D":["2024-01-02 12:04:05+09"]');
      expect(text).toContain('"C":"42P07"');
    },
  ),
  scenario(
    'COPY in: 5000 rows in uneven pieces, checked by the server',
    steps(
      [fe.query('create temp table copy_in (id int, label text)')],
      [fe.query('copy copy_in from stdin'), ...copyChunks(copyRows), fe.copyDone()],
      [fe.query("select count(*), md5(string_agg(id || E'\\t' || label || E'\\n', '' order by id)) from copy_in")],
    ),
    (o) => {
      expect(o[1]![0]).toEqual({ G: { format: 0, columns: [0, 0] } });
      expect(flat(o[1])).toContain('"C":"COPY 5000"');
      expect(flat(o[2])).toContain(`"D":["5000","${md5(copyRows)}"]`);
    },
  ),
  scenario(
    'COPY in that fails: CopyFail from the client, a bad row from the data',
    steps(
      [fe.query('create temp table copy_fail (id int, label text)')],
      [fe.query('copy copy_fail from stdin'), fe.copyData('1\tfine\n'), fe.copyFail('the client gave up')],
      [fe.query('copy copy_fail from stdin'), fe.copyData('1\tfine\nx\tbad\n'), fe.copyDone()],
      [fe.query('select count(*) from copy_fail')],
    ),
    (o) => {
      const text = flat(o);
      expect(text).toContain('"C":"57014"');
      expect(text).toContain('the client gave up');
      expect(text).toContain('"C":"22P02"');
      expect(text).toContain('"W":"COPY copy_fail, line 2, column id: \\"x\\""');
      expect(text).toContain('"D":["0"]');
    },
  ),
  scenario(
    'COPY out: 20 000 rows as text, and a binary COPY',
    steps(
      [fe.query('copy (select g, md5(g::text) from generate_series(1, 20000) g) to stdout')],
      [fe.query("copy (select id, label, payload from transparency_items order by id) to stdout (format binary)")],
    ),
    (o) => {
      expect(o[0]![0]).toEqual({ H: { format: 0, columns: [0, 0] } });
      expect(o[0]![1]).toMatchObject({ d: { messages: 20_000 } });
      expect(flat(o[0])).toContain('"C":"COPY 20000"');
      expect(o[1]![0]).toEqual({ H: { format: 1, columns: [1, 1, 1] } });
    },
  ),
  scenario(
    'large values both ways: an 8 MiB row out, an 8 MiB parameter in, 50 000 rows',
    steps(
      [fe.query("select repeat('x', 8388608) || 'end' as big, 1 as after")],
      [fe.parse('', 'select length($1), md5($1)', [TEXT]), fe.bind('', '', ['y'.repeat(8 * 1024 * 1024)]), fe.execute(''), fe.sync()],
      [fe.query('select g, repeat(g::text, 20) from generate_series(1, 50000) g')],
    ),
    (o) => {
      expect(flat(o[0])).toContain('"bytes":8388611');
      expect(flat(o[1])).toContain(`"D":["8388608","${md5('y'.repeat(8 * 1024 * 1024))}"]`);
      expect(o[2]![1]).toMatchObject({ D: { messages: 50_000 } });
    },
    120_000,
  ),
  scenario(
    'LISTEN/NOTIFY: from another session and to itself, with the sender named',
    async (e: PgEndpoint) => {
      const { s, show, closeAll } = await sessions(e, 'A', 'B');
      const out: unknown[] = [];
      s.A!.wire.send(fe.query('listen transparency_channel'));
      out.push(show(await s.A!.wire.ready()));
      s.B!.wire.send(fe.query("notify transparency_channel, 'from B'"));
      out.push(show(await s.B!.wire.ready()));
      out.push(show([await s.A!.wire.next('the notification')]));
      s.A!.wire.send(fe.query("notify transparency_channel, 'to myself'"));
      out.push(show(await s.A!.wire.ready()));
      s.B!.wire.send(fe.query("begin; select pg_notify('transparency_channel', 'on commit'); commit"));
      out.push(show(await s.B!.wire.ready()));
      out.push(show([await s.A!.wire.next('the notification')]));
      await closeAll();
      return out;
    },
    (o) => {
      const text = flat(o);
      expect(text).toContain('{"A":{"pid":"B","channel":"transparency_channel","payload":"from B"}}');
      expect(text).toContain('{"A":{"pid":"A","channel":"transparency_channel","payload":"to myself"}}');
      expect(text).toContain('"payload":"on commit"');
    },
  ),
  scenario(
    "pg_backend_pid() is the pid of the session's BackendKeyData",
    async (e: PgEndpoint) => {
      const { s, show, closeAll } = await sessions(e, 'A');
      s.A!.wire.send(fe.query('select pg_backend_pid()'));
      const row = (await s.A!.wire.ready()).find((m) => m.code === 'D')!;
      const pid = Number(row.payload.toString('latin1', 6));
      const named = show([{ code: 'A', payload: Buffer.concat([fe.int32(pid), Buffer.from('c\0p\0')]) }]);
      await closeAll();
      return named;
    },
    (o) => expect(o).toEqual([{ A: { pid: 'A', channel: 'c', payload: 'p' } }]),
  ),
  scenario(
    'cancel a running query with the BackendKeyData; the session goes on',
    async (e: PgEndpoint) => {
      const { s, show, closeAll } = await sessions(e, 'A');
      const marker = `cancel-me-${Math.random().toString(36).slice(2)}`;
      s.A!.wire.send(fe.query(`select pg_sleep(60) /* ${marker} */`));
      await waitFor(async () => (await admin("select 1 from pg_stat_activity where state = 'active' and query like $1", [`%${marker}%`])).rowCount, 'the query to run');
      await e.cancel(s.A!);
      const out = [show(await s.A!.wire.ready())];
      s.A!.wire.send(fe.query('select 1'));
      out.push(show(await s.A!.wire.ready()));
      await closeAll();
      return out;
    },
    (o) => {
      expect(flat(o[0])).toContain('"C":"57014"');
      expect(flat(o[1])).toContain('"D":["1"]');
    },
  ),
  scenario(
    // Inside a transaction, so a transaction pool has the connection attached to the client too (between
    // transactions it is the pool's, and its end is not the client's: README "Killed server connections").
    'a session the server terminates in its transaction gets its FATAL error, then the close',
    async (e: PgEndpoint) => {
      const { s, show } = await sessions(e, 'A');
      s.A!.wire.send(fe.query('begin; select pg_backend_pid()'));
      const row = (await s.A!.wire.ready()).find((m) => m.code === 'D')!;
      await admin('select pg_terminate_backend($1)', [Number(row.payload.toString('latin1', 6))]);
      const out = show(await s.A!.wire.untilClosed());
      return { messages: out, closed: s.A!.wire.closed };
    },
    (o) => {
      expect(o.messages).toMatchObject([{ E: { S: 'FATAL', C: '57P01' } }]);
      expect(o.closed).toBe(true);
    },
  ),
  scenario(
    'notices and errors inside a transaction, and after it',
    steps(
      [fe.query('begin')],
      [fe.query("do $$ begin raise notice 'in the transaction'; end $$")],
      [fe.query("do $$ begin raise exception 'failed in it' using errcode = 'P0001', detail = 'd', hint = 'h'; end $$")],
      [fe.query("do $$ begin raise notice 'ignored'; end $$")],
      [fe.query('rollback')],
      [fe.query("do $$ begin raise notice 'after it'; end $$; select 1/0")],
      [fe.query("do $$ begin raise notice 'and on'; end $$")],
    ),
    (o) => {
      const text = flat(o);
      expect(text).toContain('"M":"in the transaction"');
      expect(text).toContain('"C":"P0001"');
      expect(text).toContain('"C":"25P02"');
      expect(text).toContain('"M":"after it"');
      expect(text).toContain('"M":"and on"');
      expect(o[3]!.at(-1)).toEqual({ Z: 'E' });
      expect(o[6]!.at(-1)).toEqual({ Z: 'I' });
    },
  ),
  scenario(
    'an error in an extended-protocol pipeline: the rest up to Sync is skipped, in and out of a transaction',
    steps(
      [
        fe.parse('', 'select 1 as one'), fe.bind('', '', []), fe.execute(''),
        fe.parse('', 'select 1/0'), fe.bind('', '', []), fe.execute(''),
        fe.parse('', 'select 2 as skipped'), fe.bind('', '', []), fe.execute(''), fe.sync(),
      ],
      [fe.query('begin')],
      [fe.parse('bad', 'select nope'), fe.bind('', 'bad', []), fe.execute(''), fe.sync()],
      [fe.parse('', 'select 3'), fe.bind('', '', []), fe.execute(''), fe.sync()],
      [fe.query('rollback')],
      [fe.parse('', 'select 4 as after'), fe.bind('', '', []), fe.execute(''), fe.sync()],
    ),
    (o) => {
      expect(flat(o[0])).toContain('"C":"22012"');
      expect(flat(o[0])).not.toContain('skipped');
      expect(flat(o[2])).toContain('"C":"42703"');
      expect(flat(o[3])).toContain('"C":"25P02"');
      expect(flat(o[5])).toContain('"D":["4"]');
    },
  ),
  scenario(
    'named prepared statements with parameter types, used across transactions and closed',
    steps(
      [fe.parse('typed', 'select $1 + 1 as n, $2 || \'!\' as s, pg_typeof($1)::text as t', [20, TEXT]), fe.describe('S', 'typed'), fe.sync()],
      [fe.bind('', 'typed', ['41', 'one']), fe.execute(''), fe.sync()],
      [fe.query('begin')],
      [fe.bind('', 'typed', ['1', 'two']), fe.describe('P', ''), fe.execute(''), fe.sync()],
      [fe.query('commit')],
      [fe.parse('typed', 'select 1'), fe.sync()],
      [fe.close('S', 'typed'), fe.sync()],
      [fe.bind('', 'typed', ['1', 'gone']), fe.execute(''), fe.sync()],
    ),
    (o) => {
      expect(flat(o[0])).toContain('{"t":[20,25]}');
      expect(flat(o[1])).toContain('"D":["42","one!","bigint"]');
      expect(flat(o[3])).toContain('"D":["2","two!","bigint"]');
      expect(flat(o[5])).toContain('"C":"42P05"');
      expect(flat(o[7])).toContain('"C":"26000"');
    },
  ),
  scenario(
    'client_encoding and TimeZone from the startup packet shape the values, transaction after transaction',
    async (e: PgEndpoint) => {
      const a = await e.open({ client_encoding: 'LATIN1', TimeZone: 'Asia/Tokyo', DateStyle: 'ISO, YMD' });
      const out: unknown[] = [transcript(a.greeting.filter((m) => m.code === 'S'))];
      const probe = "select 'héllo'::text as t, timestamptz '2024-01-02 03:04:05+00' as at, current_setting('client_encoding') as enc";
      for (const sql of [probe, 'begin', probe, 'commit', probe]) {
        a.wire.send(fe.query(sql));
        out.push(transcript(await a.wire.ready()));
      }
      await a.wire.close();
      return out;
    },
    (o) => {
      expect(o[0]).toContainEqual({ S: ['client_encoding', 'LATIN1'] });
      expect(o[0]).toContainEqual({ S: ['TimeZone', 'Asia/Tokyo'] });
      const text = flat(o);
      expect(text).toContain('2024-01-02 12:04:05+09');
      expect(text).toContain('LATIN1');
    },
  ),
  scenario(
    'a fast-path FunctionCall',
    async (e: PgEndpoint) => {
      const { rows } = await admin("select 'int4abs'::regproc::oid as oid");
      return steps([fe.functionCall(Number(rows[0]!.oid), ['-5'])])(e);
    },
    (o) => expect(o).toEqual([[{ V: '5' }, { Z: 'I' }]]),
  ),
];

// ---- What legitimately differs in a pool (README "Pooling (PostgreSQL and MySQL)") --------------

/** Deep copy of an observation with `replace` applied to every object in it. */
function mapObjects(observed: unknown, replace: (o: Record<string, unknown>) => Record<string, unknown>): unknown {
  if (Array.isArray(observed)) return observed.map((x) => mapObjects(x, replace));
  if (observed === null || typeof observed !== 'object' || Buffer.isBuffer(observed)) return observed;
  return replace(Object.fromEntries(Object.entries(observed).map(([k, v]) => [k, mapObjects(v, replace)])));
}

const RESET_TO_SERVER_DEFAULT = {
  why: "README: RESET returns a startup parameter to the server's default, not to the client's startup value",
  normalise: (o: unknown) => mapObjects(o, (m) => (Array.isArray(m.S) && m.S[0] === 'application_name' ? { S: ['application_name', '(the session value)'] } : m)),
};
const POOLED_PIDS = {
  why: "README: in transaction mode BackendKeyData is azdb's own, pg_backend_pid() and a notification's pid name the server connection",
  normalise: (o: unknown) => mapObjects(o, (m) => (typeof m.pid === 'string' ? { ...m, pid: '(a session)' } : m)),
};

const paths: Array<Path<PgEndpoint>> = [
  { name: 'an azdb tunnel', endpoint: () => tunnelEndpoint(() => tunnels.plain!) },
  { name: 'an azdb tunnel with audit.queries', endpoint: () => tunnelEndpoint(() => tunnels.audited!) },
  {
    name: 'a session-mode pool',
    endpoint: () => tunnelEndpoint(() => tunnels.session!),
    differs: { 'notices, warnings and ParameterStatus changes': RESET_TO_SERVER_DEFAULT },
  },
  {
    name: 'a transaction-mode pool',
    endpoint: () => tunnelEndpoint(() => tunnels.transaction!),
    differs: {
      'notices, warnings and ParameterStatus changes': RESET_TO_SERVER_DEFAULT,
      'LISTEN/NOTIFY: from another session and to itself, with the sender named': POOLED_PIDS,
      "pg_backend_pid() is the pid of the session's BackendKeyData": POOLED_PIDS,
    },
  },
];

describeTransparency('PostgreSQL through azdb: what a client observes is what the server sent', {
  direct: { name: 'the emulated Azure server straight', endpoint: () => direct },
  through: paths,
  scenarios,
});
