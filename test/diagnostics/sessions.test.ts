import { describe, expect, it } from 'vitest';
import { actOnSession, listSessions, SessionActionRefused } from '../../src/diagnostics/sessions.js';
import type { DbSession } from '../../src/diagnostics/db-client.js';

type Handler = (sql: string, params: unknown[]) => Array<Record<string, unknown>>;

function session(protocol: 'postgres' | 'mysql', handler: Handler): DbSession & { sql: string[] } {
  const sql: string[] = [];
  return {
    protocol,
    user: 'app',
    database: 'db',
    sql,
    query: async (text, params = []) => {
      sql.push(text.trim());
      return { rows: handler(text, params) };
    },
    close: async () => {},
  };
}

const fail = (fields: Record<string, unknown>) => {
  throw Object.assign(new Error(String(fields.message)), fields);
};

describe('listSessions', () => {
  it('maps processlist rows to the contract shape, MySQL words to PostgreSQL ones', async () => {
    const s = session('mysql', () => [
      { pid: 7, user: 'app', database: 'shop', command: 'Query', state: 'User sleep', time: 12, query: 'select sleep(60)' },
      { pid: 8, user: 'app', database: null, command: 'Sleep', state: '', time: 3, query: null },
    ]);
    expect(await listSessions(s)).toEqual([
      { pid: 7, user: 'app', database: 'shop', state: 'active: User sleep', duration_ms: 12_000, query: 'select sleep(60)' },
      { pid: 8, user: 'app', database: null, state: 'idle', duration_ms: 3_000, query: null },
    ]);
  });

  it('reads pg_stat_activity without its own session', async () => {
    const s = session('postgres', () => [{ pid: '42', user: 'app', database: 'orders', state: 'active', duration_ms: '1500', query: 'select pg_sleep(9)' }]);
    expect(await listSessions(s)).toEqual([{ pid: 42, user: 'app', database: 'orders', state: 'active', duration_ms: 1500, query: 'select pg_sleep(9)' }]);
    expect(s.sql[0]).toContain('pid <> pg_backend_pid()');
  });
});

describe('actOnSession', () => {
  it('refuses a pid that does not exist before signalling anything (PostgreSQL)', async () => {
    const s = session('postgres', () => []);
    const error = await actOnSession(s, 'cancel', 99).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionActionRefused);
    expect((error as SessionActionRefused).reason).toBe('not-found');
    expect(s.sql.some((q) => q.includes('pg_cancel_backend'))).toBe(false);
  });

  it('says when the user lacks the privilege (PostgreSQL 42501, MySQL 1095)', async () => {
    const pg = session('postgres', (sql) => (sql.includes('pg_terminate_backend') ? fail({ code: '42501', message: 'permission denied to terminate process' }) : [{ state: 'active', query_start: 't' }]));
    const pgError = (await actOnSession(pg, 'terminate', 5).catch((e: unknown) => e)) as SessionActionRefused;
    expect(pgError.reason).toBe('privilege');
    expect(pgError.message).toBe('app may not terminate pid 5: permission denied to terminate process');
    expect(pgError.hint).toContain('pg_signal_backend');
    const my = session('mysql', () => fail({ errno: 1095, sqlState: 'HY000', sqlMessage: 'You are not owner of thread 5' }));
    expect(((await actOnSession(my, 'cancel', 5).catch((e: unknown) => e)) as SessionActionRefused).reason).toBe('privilege');
    const gone = session('mysql', () => fail({ errno: 1094, sqlState: 'HY000', sqlMessage: 'Unknown thread id: 5' }));
    expect(((await actOnSession(gone, 'cancel', 5).catch((e: unknown) => e)) as SessionActionRefused).reason).toBe('not-found');
  });

  it('reports a cancel that the query ignores as not done', async () => {
    const s = session('postgres', (sql) => (sql.includes('pg_cancel_backend') ? [{ ok: true }] : [{ state: 'active', query_start: 'same' }]));
    const outcome = await actOnSession(s, 'cancel', 5, { settleMs: 60 });
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toContain('still running');
  });

  it('reports a terminated session once it is gone', async () => {
    let terminated = false;
    const s = session('postgres', (sql) => {
      if (sql.includes('pg_terminate_backend')) {
        terminated = true;
        return [{ ok: true }];
      }
      return terminated ? [] : [{ state: 'idle', query_start: 'x' }];
    });
    expect(await actOnSession(s, 'terminate', 5)).toEqual({ ok: true, message: 'session 5 was terminated' });
  });
});
