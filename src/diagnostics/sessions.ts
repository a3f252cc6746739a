/**
 * Active sessions of a server and the cancel / terminate helpers behind `azdb queries`:
 * PostgreSQL `pg_stat_activity` with `pg_cancel_backend` / `pg_terminate_backend`, MySQL
 * `information_schema.processlist` with `KILL QUERY` / `KILL`. Runs over any {@link DbSession}.
 */
import { serverError, type DbSession } from './db-client.js';
import { UserError } from '../errors.js';

export interface ActiveSession {
  pid: number;
  user: string | null;
  database: string | null;
  state: string | null;
  duration_ms: number | null;
  query: string | null;
}

export type SessionAction = 'cancel' | 'terminate';

export interface ActionOutcome {
  /** The signal or KILL was accepted and the query / session is gone. */
  ok: boolean;
  message: string;
}

/** A refusal the user must act on: no such pid, or not allowed to touch it. */
export class SessionActionRefused extends UserError {
  constructor(
    message: string,
    readonly reason: 'not-found' | 'privilege' | 'server',
    hint: string,
  ) {
    super(message, { hint });
  }
}

const POSTGRES_LIST = `
select pid, usename as "user", datname as "database", state,
  round(extract(epoch from (now() - case when state = 'active' then query_start else coalesce(state_change, backend_start) end)) * 1000)::bigint as duration_ms,
  query
from pg_stat_activity
where pid <> pg_backend_pid() and backend_type = 'client backend'
order by duration_ms desc nulls last, pid`;

const MYSQL_LIST = `
select id as pid, user, db as \`database\`, command, state, time, info as query
from information_schema.processlist
where id <> connection_id() and command <> 'Daemon'
order by time desc, id`;

export async function listSessions(session: DbSession): Promise<ActiveSession[]> {
  if (session.protocol === 'postgres') {
    const { rows } = await session.query(POSTGRES_LIST);
    return rows.map((r) => ({
      pid: Number(r.pid),
      user: text(r.user),
      database: text(r.database),
      state: text(r.state),
      duration_ms: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
      query: text(r.query),
    }));
  }
  const { rows } = await session.query(MYSQL_LIST);
  return rows.map((r) => ({
    pid: Number(r.pid),
    user: text(r.user),
    database: text(r.database),
    state: mysqlState(text(r.command), text(r.state)),
    duration_ms: r.time === null || r.time === undefined ? null : Number(r.time) * 1000,
    query: text(r.query),
  }));
}

function text(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** MySQL's COMMAND as PostgreSQL's words, keeping MySQL's own state after it. */
function mysqlState(command: string | null, state: string | null): string | null {
  const base = command === 'Query' ? 'active' : command === 'Sleep' ? 'idle' : command?.toLowerCase() ?? null;
  return state && base !== 'idle' ? `${base}: ${state}` : base;
}

/** Cancels the running query (or ends the session) of `pid`; throws {@link SessionActionRefused}. */
export async function actOnSession(session: DbSession, action: SessionAction, pid: number, options: { settleMs?: number } = {}): Promise<ActionOutcome> {
  return session.protocol === 'postgres' ? postgresAction(session, action, pid, options.settleMs ?? 3_000) : mysqlAction(session, action, pid, options.settleMs ?? 3_000);
}

async function postgresAction(session: DbSession, action: SessionAction, pid: number, settleMs: number): Promise<ActionOutcome> {
  const before = await session.query('select state, query_start from pg_stat_activity where pid = $1', [pid]);
  if (before.rows.length === 0) {
    throw new SessionActionRefused(`no session with pid ${pid} on the server`, 'not-found', 'Run `azdb queries NAME` to list the sessions and their pids.');
  }
  let signalled: boolean;
  try {
    const fn = action === 'cancel' ? 'pg_cancel_backend($1)' : 'pg_terminate_backend($1)';
    const { rows } = await session.query(`select ${fn} as ok`, [pid]);
    signalled = rows[0]?.ok === true;
  } catch (error) {
    throw refusalFrom(error, action, pid, session.user);
  }
  if (!signalled) {
    return { ok: false, message: `the server did not signal pid ${pid} (it may have ended meanwhile)` };
  }
  const startedAt = before.rows[0]!.query_start;
  const wasActive = before.rows[0]!.state === 'active';
  const settled = await waitUntil(settleMs, async () => {
    const { rows } = await session.query('select state, query_start from pg_stat_activity where pid = $1', [pid]);
    if (action === 'terminate') return rows.length === 0;
    const row = rows[0];
    return !row || row.state !== 'active' || String(row.query_start) !== String(startedAt);
  });
  if (action === 'terminate') {
    return settled
      ? { ok: true, message: `session ${pid} was terminated` }
      : { ok: false, message: `pg_terminate_backend signalled pid ${pid}, but the session is still there after ${settleMs / 1000} s` };
  }
  if (!wasActive) return { ok: true, message: `pid ${pid} was not running a query (state ${String(before.rows[0]!.state)}); nothing to cancel` };
  return settled
    ? { ok: true, message: `the running query of pid ${pid} was cancelled` }
    : { ok: false, message: `pg_cancel_backend signalled pid ${pid}, but its query is still running after ${settleMs / 1000} s (it may be in a step that ignores cancels); try --terminate` };
}

async function mysqlAction(session: DbSession, action: SessionAction, pid: number, settleMs: number): Promise<ActionOutcome> {
  try {
    await session.query(action === 'cancel' ? `KILL QUERY ${pid}` : `KILL ${pid}`);
  } catch (error) {
    throw refusalFrom(error, action, pid, session.user);
  }
  const settled = await waitUntil(settleMs, async () => {
    const { rows } = await session.query('select command, info from information_schema.processlist where id = ?', [pid]);
    if (action === 'terminate') return rows.length === 0;
    const row = rows[0];
    return !row || row.command !== 'Query';
  });
  if (action === 'terminate') {
    return settled ? { ok: true, message: `session ${pid} was terminated` } : { ok: false, message: `KILL ${pid} was accepted, but the session is still there after ${settleMs / 1000} s` };
  }
  return settled ? { ok: true, message: `the running query of session ${pid} was cancelled` } : { ok: false, message: `KILL QUERY ${pid} was accepted, but the query still runs after ${settleMs / 1000} s; try --terminate` };
}

function refusalFrom(error: unknown, action: SessionAction, pid: number, user: string): SessionActionRefused {
  const e = serverError(error);
  const what = action === 'cancel' ? 'cancel the query of' : 'terminate';
  // PostgreSQL 42501 insufficient_privilege; MySQL 1095 ER_KILL_DENIED_ERROR.
  if (e.code === '42501' || e.errno === 1095 || /permission denied|must be a (superuser|member)|not owner/i.test(e.message)) {
    return new SessionActionRefused(
      `${user} may not ${what} pid ${pid}: ${e.message}`,
      'privilege',
      'Ask the server\'s admin, or grant the role pg_signal_backend (PostgreSQL) / CONNECTION_ADMIN (MySQL); without it you may only cancel your own sessions.',
    );
  }
  // MySQL 1094 ER_NO_SUCH_THREAD.
  if (e.errno === 1094 || /Unknown thread id/i.test(e.message)) {
    return new SessionActionRefused(`no session with id ${pid} on the server: ${e.message}`, 'not-found', 'Run `azdb queries NAME` to list the sessions and their ids.');
  }
  return new SessionActionRefused(`could not ${what} pid ${pid}: ${e.message}`, 'server', '');
}

async function waitUntil(limitMs: number, done: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + limitMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= until) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
