/**
 * The picker's API (see ./api/picker.ts): databases with what the roles allow, tunnels with their
 * session events, doctor, queries, and running psql / mariadb on the terminal. Implemented over
 * the runtime (config, roles, token cache), the broker's tunnels and the one execa wrapper.
 */
import { randomUUID } from 'node:crypto';
import { chooseLogin, DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../access/index.js';
import type { SessionEvent } from '../broker/session-record.js';
import { createUserStateStore, type RecentConnection, type UserStateStore } from '../config/user-state.js';
import type { CheckResult } from '../diagnostics/check.js';
import type { DbSession } from '../diagnostics/db-client.js';
import { CHECK_TITLES, doctorCheckIds, runDoctor } from '../diagnostics/doctor.js';
import { actOnSession, listSessions, SessionActionRefused, type ActiveSession } from '../diagnostics/sessions.js';
import { errorMessage, toAzdbError } from '../errors.js';
import { run } from '../process/exec.js';
import type { CoreEvent, CoreEventBody, TuiActionOutcome, TuiApi, TuiDatabase, TuiLogin, TuiPool, TuiQueries, TuiSession, TuiTunnel, TuiCheck } from './api/picker.js';
import { EVENT_HISTORY } from './api/picker.js';
import type { CoreContext, Log } from './context.js';
import { discoveryWarnings } from './databases.js';
import { doctorDeps } from './doctor.js';
import { poolKeyCounts } from '../broker/serve.js';
import { loginSession } from './queries.js';
import { loadRuntime, type Runtime } from './runtime.js';
import { clientCommandLine, clientInvocation, findClient, passwordReference, recordTunnel, startTunnel, tunnelPasswordFile, type LocalTunnel, type TunnelRequest } from './tunnels.js';
import { databaseNamesFor } from './server-databases.js';

export interface TuiApiOptions {
  /** The user-state store (recent connections, tunnel ports); default the conf-backed one in the state dir. */
  store?: UserStateStore;
  /** Test seam: the runtime; default {@link loadRuntime}. */
  runtime?: Runtime;
}

/** Loads the runtime (config, roles, token cache) and builds the API over it. */
export async function createTuiApi(ctx: CoreContext, options: TuiApiOptions = {}): Promise<TuiApi> {
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
  const toBrokerLog: Log = {
    info: (text) => emit({ type: 'notice', level: 'info', message: text }),
    warn: (text) => emit({ type: 'notice', level: 'warn', message: text }),
  };
  const quietCtx: CoreContext = { ...ctx, log: toBrokerLog };

  interface Open {
    info: TuiTunnel;
    tunnel: LocalTunnel;
    removeRecord: () => Promise<void>;
    stopped: boolean;
  }
  const open = new Map<string, Open>();
  /** Client tunnels prepareConnect opened, by database, until connect takes them. */
  const prepared = new Map<string, { login: TuiLogin; entry: Open }>();
  let clientRunning = false;

  const start = async (name: string, login: TuiLogin, purpose: 'tunnel' | 'client', signal?: AbortSignal): Promise<Open> => {
    const db = rt.database(name);
    // The same rules as --db-user / --db-name: refused values come back with the allowed ones.
    chooseLogin(rt.allowed(db), login, db.protocol);
    const id = randomUUID().slice(0, 8);
    const request: TunnelRequest = {
      dbUser: login.dbUser,
      dbName: login.dbName,
      host: '127.0.0.1',
      port: 0,
      recent: store,
      onEvent: (event) => {
        const body = sessionEvent(id, name, event);
        if (body) emit(body);
      },
      ...(signal ? { signal } : {}),
    };
    const tunnel = purpose === 'tunnel' ? await startKeptTunnel(name, request) : await startTunnel(quietCtx, rt, name, request);
    const entry: Open = { info: describeTunnel(id, tunnel), tunnel, removeRecord: async () => {}, stopped: false };
    // `azdb db logout` in another shell closes this one tunnel; the picker carries on.
    entry.removeRecord = await recordTunnel(rt, name, tunnel, async () => {
      open.delete(id);
      await stop(entry, 0, 'logout');
    });
    emit({ type: 'tunnel.opened', tunnelId: id, name, host: tunnel.host, port: tunnel.port, purpose });
    return entry;
  };
  /**
   * A tunnel for a GUI client, set up once: the port this database's tunnels had before (else any
   * free port, then remembered) and the password kept for it in the state folder. A remembered
   * port in use (another tunnel, another program) gives way to a free one, said in the log, and
   * stays remembered.
   */
  const startKeptTunnel = async (name: string, request: TunnelRequest): Promise<LocalTunnel> => {
    const kept = { ...request, passwordFile: tunnelPasswordFile(rt.stateDir, name) };
    const remembered = store.tunnelPort(name);
    let tunnel: LocalTunnel;
    try {
      tunnel = await startTunnel(quietCtx, rt, name, { ...kept, port: remembered ?? 0 });
    } catch (error) {
      if (remembered === undefined || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      tunnel = await startTunnel(quietCtx, rt, name, kept);
      emit({ type: 'notice', level: 'warn', message: `${name}: port ${remembered}, where its tunnels listen, is in use; this one listens on ${tunnel.port} (${remembered} stays remembered)` });
    }
    if (remembered === undefined) {
      try {
        store.rememberTunnelPort(name, tunnel.port);
      } catch {
        // A convenience: the tunnel works without it.
      }
    }
    return tunnel;
  };
  const stop = async (entry: Open, drainMs: number, by?: 'logout'): Promise<void> => {
    if (entry.stopped) return;
    entry.stopped = true;
    await entry.tunnel.close(drainMs);
    await entry.removeRecord();
    emit({ type: 'tunnel.closed', tunnelId: entry.info.id, name: entry.info.name, ...(by ? { by } : {}) });
  };

  // What `azdb db ls` warns about goes to the broker log (stderr would cut across Ink's frame).
  for (const warning of discoveryWarnings(rt)) {
    emit({ type: 'notice', level: 'warn', message: `${warning.message}${warning.hint ? `; hint: ${warning.hint}` : ''}` });
  }
  const queriesHandles = new Set<TuiQueries>();

  return {
    doctorPlan: (name) => doctorCheckIds(name).map((id) => ({ id, title: CHECK_TITLES[id] })),
    async doctor(name, onResult, signal) {
      // The picker's runtime (config, roles, token cache): the doctor sees what the picker uses.
      const report = await runDoctor({ name }, doctorDeps(quietCtx, { runtime: rt }), signal, (check) => onResult(tuiCheck(check)));
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
    databaseNames: (name, dbUser, signal) => databaseNamesFor(rt, name, dbUser, { recent: store.recentConnections(), ...(signal ? { signal } : {}) }),
    async openTunnel(name, login, signal) {
      const entry = await start(name, login, 'tunnel', signal);
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
    pools: () =>
      [...open.values()].flatMap(({ info, tunnel }): TuiPool[] => {
        if (!tunnel.pool) return [];
        return [
          {
            tunnelId: info.id,
            name: info.name,
            listener: `${info.host}:${info.port}`,
            mode: tunnel.pool.mode,
            maxServerConnections: tunnel.pool.limits.maxServerConnections,
            keys: poolKeyCounts(tunnel.pool),
          },
        ];
      }),
    async prepareConnect(name, login, signal) {
      await findClient(quietCtx, rt.database(name).protocol);
      const entry = await start(name, login, 'client', signal);
      const earlier = prepared.get(name);
      prepared.set(name, { login, entry });
      if (earlier) await stop(earlier.entry, 0);
    },
    async connect(name, login, signal) {
      const client = await findClient(quietCtx, rt.database(name).protocol);
      const ready = prepared.get(name);
      prepared.delete(name);
      const usable = ready && ready.login.dbUser === login.dbUser && ready.login.dbName === login.dbName && !ready.entry.stopped;
      if (ready && !usable) await stop(ready.entry, 0);
      const entry = usable ? ready.entry : await start(name, login, 'client', signal);
      clientRunning = true;
      try {
        const { args, env } = clientInvocation(entry.tunnel, name, ctx.env);
        const result = await run(client.path, args, { stdio: 'inherit', env, extendEnv: false, ...(signal ? { signal } : {}) });
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
      const entries = [...open.values(), ...[...prepared.values()].map((p) => p.entry)];
      open.clear();
      prepared.clear();
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

function sessionEvent(tunnelId: string, name: string, event: SessionEvent): CoreEventBody | undefined {
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
    case 'login-failed':
      return event.announce
        ? { type: 'notice', level: 'warn', message: `${name}: ${event.failures} wrong passwords from ${event.source}; its logins now wait ${event.delayMs / 1000} s` }
        : undefined;
    case 'login-throttled':
      return event.announce ? { type: 'notice', level: 'warn', message: `${name}: logins from ${event.source} refused for ${Math.ceil(event.retryInMs / 1000)} s after wrong passwords` } : undefined;
  }
}

function describeTunnel(id: string, tunnel: LocalTunnel): TuiTunnel {
  return {
    id,
    name: tunnel.name,
    protocol: tunnel.protocol,
    host: tunnel.host,
    port: tunnel.port,
    user: tunnel.user,
    database: tunnel.database,
    uri: tunnel.uri,
    command: clientCommandLine(tunnel, passwordReference(tunnel, '<password>')),
    password: tunnel.password,
    ...(tunnel.passwordFile ? { passwordFile: tunnel.passwordFile } : {}),
    ...(tunnel.caFile ? { caFile: tunnel.caFile } : {}),
    openedAt: new Date().toISOString(),
  };
}
