/**
 * The per-source login backoff through real broker listeners (the tunnel code `azdb proxy db` and
 * `azdb serve` share) against the emulated Azure over real PostgreSQL and MariaDB, with the pg
 * and mysql2 drivers. The backoff is made long so "not answered yet" is a state, not a timing:
 * after the free failures a wrong password is held unanswered while a client from another source
 * address (127.0.0.2) is served and the waiting source is refused unchecked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socket, connect, createServer, type NetConnectOpts } from 'node:net';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { LoginBackoff } from '../../src/broker/login-backoff.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import { CancelRegistry } from '../../src/broker/cancel-registry.js';
import { runMySqlSession } from '../../src/broker/mysql/session.js';
import { runPostgresSession } from '../../src/broker/postgres/session.js';
import type { SessionOptions } from '../../src/broker/session-record.js';
import type { SessionEvent } from '../../src/broker/session-record.js';
import type { Tunnel, TunnelOptions } from '../../src/broker/tunnel.js';
import { BrokerFixture } from '../helpers/broker-fixtures.js';
import { waitFor } from '../helpers/wait.js';

const broker = new BrokerFixture();
const FREE = 3;
/** Far longer than any test: a held answer stays held until the client leaves. */
const LONG_DELAY_MS = 10 * 60_000;
const OTHER_SOURCE = '127.0.0.2';

beforeAll(() => broker.start());
afterAll(() => broker.stop());

/** A tunnel with a backoff of its own and every session event kept. */
async function guardedTunnel(options: Pick<TunnelOptions, 'target' | 'dbName'>): Promise<{ t: Tunnel; logins: LoginBackoff; events: SessionEvent[] }> {
  const logins = new LoginBackoff({ freeFailures: FREE, firstDelayMs: LONG_DELAY_MS, maxDelayMs: LONG_DELAY_MS });
  const events: SessionEvent[] = [];
  const t = await broker.tunnel({ ...options, logins, onEvent: (e) => events.push(e) });
  return { t, logins, events };
}

/** Settles with the outcome; `settled` says whether it has yet. */
function track<T>(promise: Promise<T>): { settled: boolean; outcome: Promise<T | Error> } {
  const state = { settled: false, outcome: undefined as unknown as Promise<T | Error> };
  state.outcome = promise.then(
    (value) => ((state.settled = true), value),
    (error: Error) => ((state.settled = true), error),
  );
  return state;
}

describe('login backoff through a PostgreSQL tunnel (pg)', () => {
  /** pg connects its own socket with (port, host); this binds the client end to `localAddress`. */
  function streamFrom(localAddress: string) {
    return () => {
      const socket = new Socket();
      const plain = socket.connect.bind(socket) as (options: NetConnectOpts) => Socket;
      (socket as unknown as { connect: (port: number, host: string) => Socket }).connect = (port, host) => plain({ port, host, localAddress });
      return socket;
    };
  }

  function client(t: Tunnel, password: string, localAddress?: string): pg.Client {
    return new pg.Client({
      host: t.host,
      port: t.port,
      user: t.user,
      database: t.database,
      password,
      ...(localAddress ? { stream: streamFrom(localAddress) } : {}),
    } as pg.ClientConfig);
  }

  async function loginError(c: pg.Client): Promise<Error & { code?: string }> {
    const error = await c.connect().then(() => undefined, (e: Error) => e);
    await c.end().catch(() => {});
    if (!error) throw new Error('login unexpectedly succeeded');
    return error;
  }

  it('answers the free failures at once, then holds a wrong password while other sources are served', async () => {
    const { t, logins, events } = await guardedTunnel({ target: broker.target('orders'), dbName: 'orders' });
    for (let i = 0; i < FREE; i++) expect((await loginError(client(t, 'wrong-password'))).code).toBe('28P01');
    expect(events.filter((e) => e.type === 'login-failed').map((e) => (e as { delayMs: number }).delayMs)).toEqual([0, 0, 0]);

    const held = client(t, 'wrong-password');
    const attempt = track(held.connect());
    const failure = await waitFor(() => events.find((e) => e.type === 'login-failed' && e.delayMs > 0), 'the held failure');
    expect(failure).toMatchObject({ source: '127.0.0.1', failures: FREE + 1, delayMs: LONG_DELAY_MS, announce: true });

    // Another source logs in and queries meanwhile.
    const other = client(t, t.password, OTHER_SOURCE);
    await other.connect();
    const { rows } = await other.query('select inet_client_addr() is not null as upstream, 1 as one');
    expect(rows[0].one).toBe(1);
    await other.end();

    // The waiting source is refused unchecked, even with the right password.
    const refused = await loginError(client(t, t.password));
    expect(refused.code).toBe('28000');
    expect(refused.message).toMatch(/^too many failed logins from 127\.0\.0\.1; try again in \d+ s$/);
    expect(events.at(-1)).toMatchObject({ type: 'login-throttled', source: '127.0.0.1' });

    expect(attempt.settled).toBe(false);
    expect(logins.admit(OTHER_SOURCE)).toEqual({ allowed: true });
    // The held client gives up: its session ends at once, not after the delay.
    (held as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
    await attempt.outcome;
    await waitFor(() => t.connections === 0, 'the held session to end');
  });
});

describe('login backoff through a MySQL tunnel (mysql2)', () => {
  function connectTo(t: Tunnel, password: string, localAddress?: string): Promise<mysql.Connection> {
    // mysql2 takes localAddress but does not bind to it: a stream of our own does.
    const stream = localAddress ? { stream: () => connect({ port: t.port, host: t.host, localAddress }) } : {};
    return mysql.createConnection({ host: t.host, port: t.port, user: t.user, password, database: t.database, connectTimeout: 60_000, ...stream });
  }

  async function loginError(t: Tunnel, password: string): Promise<{ errno?: number; sqlState?: string; message: string }> {
    const error = await connectTo(t, password).then(
      async (c) => void (await c.end()),
      (e: unknown) => e as { errno?: number; sqlState?: string; message: string },
    );
    if (!error) throw new Error('login unexpectedly succeeded');
    return error;
  }

  it('holds a wrong password after the free ones without holding a server connection, and serves other sources', async () => {
    // Counts the broker's connections to the server: a relay in front of the emulated front.
    const real = broker.target('shopdb');
    let upstreamOpen = 0;
    const counter = createServer((socket) => {
      upstreamOpen += 1;
      const server = connect(real.port, real.host);
      socket.pipe(server).pipe(socket);
      const closed = () => {
        socket.destroy();
        server.destroy();
      };
      socket.on('close', closed).on('error', closed);
      server.on('close', closed).on('error', closed);
      let counted = true;
      socket.on('close', () => counted && ((counted = false), (upstreamOpen -= 1)));
    });
    const port = await broker.listen(counter);
    const { t, events } = await guardedTunnel({ target: { ...real, host: '127.0.0.1', port }, dbName: 'shop' });

    for (let i = 0; i < FREE; i++) expect(await loginError(t, 'wrong-password')).toMatchObject({ errno: 1045 });
    const attempt = track(connectTo(t, 'wrong-password'));
    await waitFor(() => events.find((e) => e.type === 'login-failed' && e.delayMs > 0), 'the held failure');
    await waitFor(() => upstreamOpen === 0, 'the server connection of the held login to close');

    const other = await connectTo(t, t.password, OTHER_SOURCE);
    const [[row]] = await other.query<mysql.RowDataPacket[]>('select 1 as one');
    expect(row!.one).toBe(1);
    await other.end();

    const before = upstreamOpen;
    const refused = await loginError(t, t.password);
    expect(refused).toMatchObject({ errno: 1129, sqlState: 'HY000' });
    expect(refused.message).toMatch(/^Host '127\.0\.0\.1' is blocked for \d+ s because of too many failed logins/);
    // Refused before any server connection was opened for it.
    expect(upstreamOpen).toBe(before);
    // Already announced by the held failure: one log line per source per window.
    expect(events.at(-1)).toMatchObject({ type: 'login-throttled', source: '127.0.0.1', announce: false });

    expect(attempt.settled).toBe(false);
    await t.close();
    const outcome = await attempt.outcome;
    expect(outcome).toBeInstanceOf(Error);
  });
});

describe('a held wrong password and the login deadline', () => {
  /** Every wrong password held for ten minutes, sessions with a 2 s login deadline. */
  function sessionOptions(name: string): SessionOptions {
    return {
      target: broker.target(name),
      localPassword: 'the-right-password-here',
      defaults: {},
      authorize: () => ({ allowed: true }),
      getToken: broker.getToken,
      audit: NO_AUDIT,
      logins: new LoginBackoff({ freeFailures: 0, firstDelayMs: LONG_DELAY_MS, maxDelayMs: LONG_DELAY_MS }),
      handshakeTimeoutMs: 2_000,
    };
  }

  it('answers PostgreSQL 28P01 at the deadline instead of waiting out the delay', async () => {
    const options = { ...sessionOptions('orders'), cancels: new CancelRegistry() };
    const listener = await broker.listener((socket) => runPostgresSession(socket, options));
    const c = new pg.Client({ host: '127.0.0.1', port: listener.port, user: 'u', database: 'orders', password: 'wrong-password' });
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
    await c.end().catch(() => {});
  });

  it('answers MySQL 1045 at the deadline instead of waiting out the delay', async () => {
    const options = sessionOptions('shopdb');
    const listener = await broker.listener((socket) => runMySqlSession(socket, options));
    const error = await mysql.createConnection({ host: '127.0.0.1', port: listener.port, user: 'u', password: 'wrong-password', connectTimeout: 60_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ errno: 1045, sqlState: '28000' });
  });
});
