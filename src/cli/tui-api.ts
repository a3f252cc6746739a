/**
 * The core API the terminal UI talks to: databases with what the roles allow, tunnels with their
 * session events, and running psql / mariadb on the terminal. Implemented over the runtime
 * (config, roles, token cache), the broker's tunnels and the one execa wrapper; the UI imports
 * only the types of this file (DESIGN: the UI never imports node:net or broker internals).
 *
 * Events carry a sequence number and the API keeps the latest ones, so a screen that was
 * unmounted while psql had the terminal catches up with `eventsSince` when it comes back.
 */
import { randomUUID } from 'node:crypto';
import { chooseLogin, DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../access/index.js';
import type { SessionEvent } from '../broker/session-record.js';
import type { Tunnel } from '../broker/tunnel.js';
import { createUserStateStore, type RecentConnection, type UserStateStore } from '../config/user-state.js';
import type { CheckResult } from '../diagnostics/check.js';
import { probeCredentials, REAL_CREDS_DEPS } from '../diagnostics/credential-sources.js';
import type { DbSession } from '../diagnostics/db-client.js';
import { CHECK_TITLES, doctorCheckIds, runDoctor, type DoctorDeps } from '../diagnostics/doctor.js';
import { realDoctorDeps } from '../diagnostics/real-deps.js';
import { actOnSession, listSessions, SessionActionRefused, type ActiveSession } from '../diagnostics/sessions.js';
import { errorMessage, toAzdbError } from '../errors.js';
import { run } from '../process/exec.js';
import { credentialSettings } from './commands/creds.js';
import { doctorSetup } from './commands/doctor.js';
import { clientCommandLine, clientInvocation, findClient, startTunnel } from './commands/db-tunnel.js';
import { loginSession } from './commands/queries.js';
import type { CliContext } from './main.js';
import type { Output } from './output.js';
import { loadRuntime, type Runtime } from './runtime.js';
import { writeTunnelRecord } from './tunnel-records.js';

export type Protocol = 'postgres' | 'mysql';

export interface TuiLogin {
  dbUser: string;
  /** '' for a MySQL login without a default database. */
  dbName: string;
}

export interface TuiDatabase {
  name: string;
  protocol: Protocol;
  uri: string;
  labels: Record<string, string>;
  /** What the roles allow (`"*"` = any), as in `azdb db ls`. */
  dbUsers: string[];
  dbNames: string[];
  deniedUsers: string[];
  deniedNames: string[];
  /** Earlier logins to this database, most recent first (from the user-state store). */
  recent: Array<TuiLogin & { at: string }>;
  /** The database name used when `*` is allowed and none is chosen (`postgres`, or none for MySQL). */
  defaultDbName: string;
}

export interface TuiTunnel {
  id: string;
  name: string;
  protocol: Protocol;
  host: string;
  port: number;
  user: string;
  database: string;
  /** Connection URI without the password. */
  uri: string;
  /** The command line of a client, with the password left to the environment variable it names. */
  command: string;
  /** The per-tunnel secret: for the screen to show on demand, never to log. */
  password: string;
  openedAt: string;
}

export type CoreEventBody =
  | { type: 'tunnel.opened'; tunnelId: string; name: string; host: string; port: number; purpose: 'tunnel' | 'client' }
  | { type: 'tunnel.closed'; tunnelId: string; name: string }
  | { type: 'session.opened'; tunnelId: string; name: string; sessionId: string; dbUser: string; dbName: string; client: string }
  | { type: 'session.closed'; tunnelId: string; name: string; sessionId: string; result: 'ok' | 'error'; error?: string }
  | { type: 'cancel'; tunnelId: string; name: string; forwarded: boolean }
  | { type: 'client.exited'; name: string; exitCode: number }
  | { type: 'notice'; level: 'info' | 'warn'; message: string };

export type CoreEvent = CoreEventBody & { seq: number; at: string };

export interface TuiErrorInfo {
  message: string;
  hint?: string;
}

export type TuiCheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One doctor check's result, as `azdb doctor --json` has it. */
export interface TuiCheck {
  id: string;
  title: string;
  status: TuiCheckStatus;
  detail: string;
  /** What to do next; '' when nothing. */
  hint: string;
}

/** An active session of the server, as `azdb queries --json` lists it. */
export interface TuiSession {
  pid: number;
  user: string | null;
  database: string | null;
  state: string | null;
  durationMs: number | null;
  query: string | null;
}

export type TuiSessionAction = 'cancel' | 'terminate';

/**
 * What a cancel / terminate came to: `done` (it took effect), `not-done` (signalled but the query
 * or session is still there, or it was gone already), `refused` (no such pid, or not allowed:
 * the hint says what to do).
 */
export interface TuiActionOutcome {
  status: 'done' | 'not-done' | 'refused';
  message: string;
  hint?: string;
}

/** One login on a database for its sessions, kept while the queries screen is open. */
export interface TuiQueries {
  /** The login used (the roles' rules, as `azdb queries --db-user/--db-name`). */
  readonly login: TuiLogin;
  /** The server's other sessions, longest running first (reconnects after a lost connection). */
  list(): Promise<TuiSession[]>;
  act(action: TuiSessionAction, pid: number): Promise<TuiActionOutcome>;
  close(): Promise<void>;
}

export interface TuiApi {
  /** Databases (static and discovered) visible under the roles (those allowing a user), sorted by name. */
  databases(signal?: AbortSignal): Promise<TuiDatabase[]>;
  /** Opens a tunnel for GUI clients; it stays open until closed or the API closes. */
  openTunnel(name: string, login: TuiLogin): Promise<TuiTunnel>;
  closeTunnel(id: string): Promise<void>;
  /** Open tunnels (from `openTunnel`), oldest first, with their live session counts. */
  tunnels(): Array<TuiTunnel & { connections: number }>;
  /**
   * Runs psql / mariadb on this terminal (stdio inherited) through a tunnel of its own, until it
   * exits. The caller must have released the terminal (Ink unmounted). `signal` ends the client.
   */
  connect(name: string, login: TuiLogin, signal?: AbortSignal): Promise<{ exitCode: number; client: string }>;
  /** True while `connect` runs a client: SIGINT belongs to it then. */
  readonly clientRunning: boolean;
  /** The checks {@link doctor} runs for database `name`, in order (for rows before their results). */
  doctorPlan(name: string): Array<{ id: string; title: string }>;
  /**
   * `azdb doctor NAME`: each check goes to `onResult` as it finishes; never throws for a failing
   * check (that is a `fail` result). `signal` stops it (remaining checks are skipped).
   */
  doctor(name: string, onResult: (check: TuiCheck) => void, signal: AbortSignal): Promise<{ ok: boolean; checks: TuiCheck[] }>;
  /**
   * Logs in to database `name` for its sessions (`azdb queries NAME`), with `login`'s values where
   * given and otherwise the only ones the roles allow; throws (with a hint) when the roles leave a
   * choice or the login fails.
   */
  openQueries(name: string, login?: Partial<TuiLogin>): Promise<TuiQueries>;
  /** Events after `seq` that are still kept (the latest {@link EVENT_HISTORY}). */
  eventsSince(seq: number): CoreEvent[];
  subscribe(listener: (event: CoreEvent) => void): () => void;
  /** What a thrown error means for the screen: the message and the hint. */
  describeError(error: unknown): TuiErrorInfo;
  /** Closes every tunnel and the runtime. */
  close(): Promise<void>;
}

export const EVENT_HISTORY = 500;

export interface TuiApiOptions {
  /** The user-state store (recent connections); default the conf-backed one in the state dir. */
  store?: UserStateStore;
  /** Test seam: the runtime; default {@link loadRuntime}. */
  runtime?: Runtime;
}

/** Loads the runtime (config, roles, token cache) and builds the API over it. */
export async function createTuiApi(ctx: CliContext, options: TuiApiOptions = {}): Promise<TuiApi> {
  const rt = options.runtime ?? (await loadRuntime(ctx));
  const store = options.store ?? createUserStateStore({ cwd: rt.stateDir });
  let seq = 0;
  const history: CoreEvent[] = [];
  const listeners = new Set<(event: CoreEvent) => void>();
  const emit = (body: CoreEventBody): void => {
    const event = { ...body, seq: ++seq, at: new Date().toISOString() } as CoreEvent;
    history.push(event);
    if (history.length > EVENT_HISTORY) history.splice(0, history.length - EVENT_HISTORY);
    for (const listener of listeners) listener(event);
  };
  // Warnings of the tunnel code go to the broker log, not across Ink's frame.
  const quietOut: Output = {
    json: false,
    color: false,
    line: (text = '') => emit({ type: 'notice', level: 'info', message: text }),
    info: (text) => emit({ type: 'notice', level: 'info', message: text }),
    warn: (text) => emit({ type: 'notice', level: 'warn', message: text }),
    document: () => {},
  };
  const quietCtx: CliContext = { ...ctx, out: quietOut };

  interface Open {
    info: TuiTunnel;
    tunnel: Tunnel;
    removeRecord: () => Promise<void>;
  }
  const open = new Map<string, Open>();
  let clientRunning = false;

  const start = async (name: string, login: TuiLogin, purpose: 'tunnel' | 'client'): Promise<Open> => {
    const db = rt.database(name);
    // The same rules as --db-user / --db-name: refused values come back with the allowed ones.
    chooseLogin(rt.allowed(db), login, db.protocol);
    const id = randomUUID().slice(0, 8);
    const tunnel = await startTunnel(quietCtx, rt, name, {
      dbUser: login.dbUser,
      dbName: login.dbName,
      host: '127.0.0.1',
      port: 0,
      recent: store,
      onEvent: (event) => emit(sessionEvent(id, name, event)),
    });
    const removeRecord = await writeTunnelRecord(rt.stateDir, { pid: process.pid, name, host: tunnel.host, port: tunnel.port, started: new Date().toISOString() });
    emit({ type: 'tunnel.opened', tunnelId: id, name, host: tunnel.host, port: tunnel.port, purpose });
    return { info: describeTunnel(id, tunnel), tunnel, removeRecord };
  };
  const stop = async (entry: Open, drainMs: number): Promise<void> => {
    await entry.tunnel.close(drainMs);
    await entry.removeRecord();
    emit({ type: 'tunnel.closed', tunnelId: entry.info.id, name: entry.info.name });
  };

  // What `azdb db ls` warns about goes to the broker log (stderr would cut across Ink's frame).
  for (const failure of rt.discovery?.errors ?? []) {
    emit({ type: 'notice', level: 'warn', message: `discovery could not list ${failure.scope}: ${failure.reason}${failure.permission ? ` (needs ${failure.permission})` : ''}; hint: ${failure.hint}` });
  }
  for (const name of rt.shadowed) {
    emit({ type: 'notice', level: 'warn', message: `discovered server "${name}" is not listed: a database under \`databases:\` has that name` });
  }

  const doctorDeps = (): DoctorDeps =>
    realDoctorDeps(
      {
        // The picker's runtime (config, roles, token cache): the doctor sees what the picker uses.
        load: async () => doctorSetup(ctx, rt),
        probeCredentials: async (signal) => probeCredentials({ ...(await credentialSettings(quietCtx)), env: ctx.env }, REAL_CREDS_DEPS, signal),
      },
      ctx.env,
    );
  const queriesHandles = new Set<TuiQueries>();

  return {
    doctorPlan: (name) => doctorCheckIds(name).map((id) => ({ id, title: CHECK_TITLES[id] })),
    async doctor(name, onResult, signal) {
      const report = await runDoctor({ name }, doctorDeps(), signal, (check) => onResult(tuiCheck(check)));
      return { ok: report.ok, checks: report.checks.map(tuiCheck) };
    },
    async openQueries(name, wanted = {}) {
      const first = await loginSession(rt, name, wanted, 'azdb tui queries');
      const login: TuiLogin = { dbUser: first.login.dbUser, dbName: first.login.dbName };
      let session: DbSession | undefined = first.session;
      let closed = false;
      const current = async (): Promise<DbSession> => {
        if (closed) throw new Error('the queries screen is closed');
        session ??= (await loginSession(rt, name, login, 'azdb tui queries')).session;
        return session;
      };
      // A lost connection (terminated, server restart) is dropped; the next call logs in again.
      const dropOnError = async <T>(work: (s: DbSession) => Promise<T>): Promise<T> => {
        const s = await current();
        try {
          return await work(s);
        } catch (error) {
          if (!(error instanceof SessionActionRefused) && session === s) {
            session = undefined;
            await s.close().catch(() => {});
          }
          throw error;
        }
      };
      const handle: TuiQueries = {
        login,
        list: () => dropOnError(async (s) => (await listSessions(s)).map(tuiSession)),
        act: (action, pid) =>
          dropOnError(async (s) => {
            try {
              const outcome = await actOnSession(s, action, pid);
              return { status: outcome.ok ? 'done' : 'not-done', message: outcome.message } satisfies TuiActionOutcome;
            } catch (error) {
              if (error instanceof SessionActionRefused) return { status: 'refused', message: error.message, ...(error.hint ? { hint: error.hint } : {}) } satisfies TuiActionOutcome;
              throw error;
            }
          }),
        async close() {
          closed = true;
          queriesHandles.delete(handle);
          const s = session;
          session = undefined;
          await s?.close().catch(() => {});
        },
      };
      queriesHandles.add(handle);
      return handle;
    },
    async databases() {
      const recent = store.recentConnections();
      return rt
        .databases()
        .map((db): TuiDatabase => {
          const allowed = rt.allowed(db);
          return {
            name: db.name,
            protocol: db.protocol,
            uri: db.uri,
            labels: { ...db.labels },
            dbUsers: allowed.dbUsers,
            dbNames: allowed.dbNames,
            deniedUsers: allowed.deniedUsers,
            deniedNames: allowed.deniedNames,
            recent: recentFor(recent, db.name),
            defaultDbName: db.protocol === 'mysql' ? DEFAULT_MYSQL_DB_NAME : DEFAULT_POSTGRES_DB_NAME,
          };
        })
        .filter((db) => db.dbUsers.length > 0)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async openTunnel(name, login) {
      const entry = await start(name, login, 'tunnel');
      open.set(entry.info.id, entry);
      return entry.info;
    },
    async closeTunnel(id) {
      const entry = open.get(id);
      if (!entry) return;
      open.delete(id);
      await stop(entry, 0);
    },
    tunnels: () => [...open.values()].map((entry) => ({ ...entry.info, connections: entry.tunnel.connections })),
    async connect(name, login, signal) {
      const client = await findClient(quietCtx, rt.database(name).protocol);
      const entry = await start(name, login, 'client');
      clientRunning = true;
      try {
        const { args, env } = clientInvocation(entry.tunnel, name);
        const result = await run(client.path, args, { stdio: 'inherit', env, ...(signal ? { signal } : {}) });
        emit({ type: 'client.exited', name, exitCode: result.exitCode });
        return { exitCode: result.exitCode, client: client.name };
      } finally {
        clientRunning = false;
        await stop(entry, 0);
      }
    },
    get clientRunning() {
      return clientRunning;
    },
    eventsSince: (after) => history.filter((event) => event.seq > after),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    describeError(error) {
      const failure = toAzdbError(error);
      return failure.hint ? { message: errorMessage(failure), hint: failure.hint } : { message: errorMessage(failure) };
    },
    async close() {
      const entries = [...open.values()];
      open.clear();
      await Promise.all([...entries.map((entry) => stop(entry, 0)), ...[...queriesHandles].map((handle) => handle.close())]);
      await rt.close();
    },
  };
}

function tuiCheck(check: CheckResult): TuiCheck {
  return { id: check.id, title: check.title, status: check.status, detail: check.detail, hint: check.hint };
}

function tuiSession(session: ActiveSession): TuiSession {
  return { pid: session.pid, user: session.user, database: session.database, state: session.state, durationMs: session.duration_ms, query: session.query };
}

function recentFor(recent: readonly RecentConnection[], name: string): Array<TuiLogin & { at: string }> {
  return recent.filter((r) => r.name === name).map((r) => ({ dbUser: r.db_user, dbName: r.db_name, at: r.at }));
}

function sessionEvent(tunnelId: string, name: string, event: SessionEvent): CoreEventBody {
  switch (event.type) {
    case 'relaying':
      return { type: 'session.opened', tunnelId, name, sessionId: event.id.slice(0, 8), dbUser: event.dbUser, dbName: event.dbName, client: event.client };
    case 'closed':
      return {
        type: 'session.closed',
        tunnelId,
        name,
        sessionId: event.id.slice(0, 8),
        result: event.result,
        ...(event.error ? { error: event.error } : {}),
      };
    case 'cancel':
      return { type: 'cancel', tunnelId, name, forwarded: event.forwarded };
  }
}

function describeTunnel(id: string, tunnel: Tunnel): TuiTunnel {
  return {
    id,
    name: tunnel.name,
    protocol: tunnel.protocol,
    host: tunnel.host,
    port: tunnel.port,
    user: tunnel.user,
    database: tunnel.database,
    uri: tunnel.uri,
    command: clientCommandLine(tunnel, '<password>'),
    password: tunnel.password,
    openedAt: new Date().toISOString(),
  };
}
