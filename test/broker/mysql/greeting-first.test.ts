/**
 * A MySQL client is greeted and its tunnel password checked before azdb opens any server
 * connection: silent sockets and wrong passwords never reach the server (whose Aborted_connects
 * and max_connect_errors would otherwise lock the broker's host out), and mysql's Ctrl+C still
 * reaches the query through azdb's own connection id. On a MariaDB of this file's own, behind the
 * emulated Azure front, so its global counters move only with what this file does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import mysql from 'mysql2/promise';
import { findTool } from '../../harness/tools.js';
import { waitFor } from '../../helpers/wait.js';
import { startRealMariaDb, type RealMariaDb } from '../../../src/emulator/real-mariadb.js';
import { loadMySqlSampleData } from '../../../src/emulator/mysql-sample-data.js';
import { DEMO_AAD_USER } from '../../../src/emulator/demo-identity.js';
import type { Tunnel, TunnelOptions } from '../../../src/broker/tunnel.js';
import { LoginBackoff } from '../../../src/broker/login-backoff.js';
import type { SessionEvent } from '../../../src/broker/session-record.js';
import { forgetGreetings } from '../../../src/broker/mysql/greeting-facts.js';
import { RawMySql, errOf, rawLogin } from '../../helpers/mysql-raw.js';
import { comQuery } from '../../helpers/mysql-payloads.js';
import { BrokerFixture } from '../../helpers/broker-fixtures.js';

const mariadbd = await findTool('mariadbd');
const broker = new BrokerFixture();
let server: RealMariaDb;
let dir: string;

function tunnel(overrides: Partial<TunnelOptions> = {}): Promise<Tunnel> {
  return broker.tunnel({ target: broker.target('shopdb'), dbName: 'shop', ...overrides });
}

function connectTo(t: Tunnel, password = t.password): Promise<mysql.Connection> {
  return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password, database: 'shop', connectTimeout: 10_000 });
}

async function status(): Promise<{ threads: number; aborted: number }> {
  const rows = await server.query<Array<{ Variable_name: string; Value: string }>>("show global status where variable_name in ('Threads_connected', 'Aborted_connects')");
  const value = (name: string) => Number(rows.find((row) => row.Variable_name === name)!.Value);
  return { threads: value('Threads_connected'), aborted: value('Aborted_connects') };
}

/** The server's counters once no session of azdb's is left on it (only the admin connection). */
async function settled(): Promise<{ threads: number; aborted: number }> {
  await waitFor(async () => (await server.query<mysql.RowDataPacket[]>("select id from information_schema.processlist where user <> 'root'")).length === 0, 'the sessions to end on the server');
  return status();
}

async function selectOne(t: Tunnel): Promise<void> {
  const c = await connectTo(t);
  try {
    const [[row]] = await c.query<mysql.RowDataPacket[]>('select 1 as one, database() as db');
    expect(row).toEqual({ one: 1, db: 'shop' });
  } finally {
    await c.end();
  }
}

describe.skipIf(mariadbd.skip)('MySQL: the client logs in before any server connection', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'azdb-greeting-first-'));
    server = await startRealMariaDb({ dir });
    await loadMySqlSampleData(server, [DEMO_AAD_USER]);
    await broker.start({ realMariaDb: server });
    // A new process: nothing learned of this server yet.
    forgetGreetings();
  });

  afterAll(async () => {
    await broker.stop();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('probes a server it has not seen once, at most one aborted connect, then serves from what it learned', async () => {
    const t = await tunnel();
    const before = await status();
    // Three clients at once: one probe for all of them.
    await Promise.all([selectOne(t), selectOne(t), selectOne(t)]);
    await selectOne(t);
    expect((await settled()).aborted - before.aborted).toBeLessThanOrEqual(1);
  });

  it('holds no server connection for 30 silent sockets: Threads_connected and Aborted_connects unchanged', async () => {
    const events: SessionEvent[] = [];
    const t = await tunnel({ onEvent: (event) => events.push(event) });
    await selectOne(t);
    const before = await settled();
    const silent = await Promise.all(Array.from({ length: 30 }, () => RawMySql.connect(t.port)));
    try {
      for (const client of silent) expect((await client.greeting()).serverVersion).toMatch(/MariaDB/);
      // A legitimate login meanwhile is served (one server connection, ended again).
      await selectOne(t);
      await waitFor(async () => (await status()).threads === before.threads, 'the legitimate session to end on the server');
      expect(await status()).toEqual(before);
    } finally {
      for (const client of silent) client.close();
    }
    await Promise.all(silent.map((client) => client.closed));
    // Each is a session that ended before its login: what `azdb serve` counts as rejected.
    await waitFor(() => events.filter((event) => event.type === 'closed' && event.result === 'error').length === 30, 'the silent sessions to be reported');
    expect(await status()).toEqual(before);
  });

  it('answers wrong passwords itself, counted: Aborted_connects unchanged', async () => {
    const events: SessionEvent[] = [];
    // Answered at once (no backoff) so the test is quick; the backoff refuses before a password is checked anyway.
    const t = await tunnel({ logins: new LoginBackoff({ freeFailures: 1000 }), onEvent: (event) => events.push(event) });
    await selectOne(t);
    const before = await settled();
    for (let i = 0; i < 20; i++) {
      const error = await connectTo(t, `wrong-${i}`).then(
        async (c) => {
          await c.end();
          return undefined;
        },
        (e: unknown) => e as { errno?: number },
      );
      expect(error?.errno).toBe(1045);
    }
    expect(await status()).toEqual(before);
    expect(events.filter((event) => event.type === 'login-failed')).toHaveLength(20);
  });

  it("translates KILL QUERY <greeting id> on a second connection to the server's thread of that session", async () => {
    const t = await tunnel();
    const a = await connectTo(t);
    const b = await connectTo(t);
    try {
      const marker = `kill-by-greeting-id-${Date.now()}`;
      const running = a.query(`select sleep(30), '${marker}'`).then(
        () => undefined,
        (e: unknown) => e as { errno?: number },
      );
      const runningQueries = () => server.query<mysql.RowDataPacket[]>('select id from information_schema.processlist where info like ? and info not like ?', [`%${marker}%`, '%processlist%']);
      await waitFor(async () => (await runningQueries()).length > 0, 'the query to run');
      // a.threadId is the greeting's id: azdb's own, not the server's.
      const [[own]] = await b.query<mysql.RowDataPacket[]>('select connection_id() as id');
      expect(a.threadId).not.toBe(own!.id);
      await b.query(`KILL QUERY ${a.threadId}`);
      await waitFor(async () => (await runningQueries()).length === 0, 'the query to be killed', 10_000);
      const outcome = await running;
      // Interrupted (1317) or the statement's own value 1 from SLEEP when killed mid-sleep.
      if (outcome !== undefined) expect(outcome.errno).toBe(1317);
      const [[after]] = await a.query<mysql.RowDataPacket[]>('select 1 as alive');
      expect(after!.alive).toBe(1);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("leaves a KILL of an id that is not azdb's alone: the server answers it", async () => {
    const t = await tunnel();
    const raw = await rawLogin(t, 'shop');
    try {
      raw.send(0, comQuery('KILL QUERY 999999'));
      expect(errOf(await raw.next())).toMatchObject({ code: 1094 });
    } finally {
      raw.close();
    }
  });
});
