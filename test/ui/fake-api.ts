/** A TuiApi for screen tests: databases and tunnels in memory, events on demand, calls recorded. */
import type { CoreEvent, CoreEventBody, TuiActionOutcome, TuiApi, TuiCheck, TuiDatabase, TuiLogin, TuiPool, TuiQueries, TuiSession, TuiTunnel } from '../../src/core/api/picker.js';

export function database(name: string, overrides: Partial<TuiDatabase> = {}): TuiDatabase {
  return {
    name,
    protocol: 'postgres',
    uri: `${name}.postgres.database.azure.com:5432`,
    labels: { env: 'prod' },
    dbUsers: ['azdb-demo'],
    dbNames: ['*'],
    deniedUsers: [],
    deniedNames: [],
    recent: [],
    defaultDbName: 'postgres',
    ...overrides,
  };
}

export const DOCTOR_PLAN = [
  { id: 'config', title: 'Config file' },
  { id: 'credential', title: 'Entra credential' },
  { id: 'tcp', title: 'TCP connect' },
  { id: 'login', title: 'Login through the broker' },
];

export function check(id: string, status: TuiCheck['status'], detail: string, hint = ''): TuiCheck {
  return { id, title: DOCTOR_PLAN.find((p) => p.id === id)?.title ?? id, status, detail, hint };
}

export function session(pid: number, overrides: Partial<TuiSession> = {}): TuiSession {
  return { pid, user: 'azdb-demo', database: 'orders', state: 'idle', durationMs: 1500, query: 'select 1', ...overrides };
}

export interface FakeApi extends TuiApi {
  calls: string[];
  emit(body: CoreEventBody): void;
  /** Makes the next `databases()` wait until `release()`. */
  holdDatabases(): { release(): void };
  failNext: { databases?: Error; openTunnel?: Error; openQueries?: Error; list?: Error; prepareConnect?: Error; databaseNames?: Error };
  /** Makes the next `prepareConnect()` wait until `release()` or its signal. */
  holdPrepare(): { release(): void };
  /** prepareConnect calls started, and how many were stopped by their signal. */
  prepareRuns: { started: number; aborted: number };
  /** What `databaseNames()` answers per database (default none). */
  serverNames: Map<string, string[]>;
  /** Makes the next `databaseNames()` wait until `release()`. */
  holdNames(): { release(): void };
  /** `databaseNames()` calls whose signal gave them up. */
  namesAborted: number;
  /** What `doctor()` reports, in order. */
  doctorResults: TuiCheck[];
  /** With `manualDoctor`, each result waits for `releaseCheck()`. */
  manualDoctor: boolean;
  releaseCheck(): void;
  /** Doctor runs started, and how many were stopped by their signal. */
  doctorRuns: { started: number; aborted: number };
  /** The server's sessions, as `list()` returns them. */
  sessions: TuiSession[];
  /** What `act()` answers for a pid (default: done, and the session goes idle / away). */
  actAnswers: Map<number, TuiActionOutcome>;
  /** Open `openQueries` handles. */
  openHandles: number;
  /** What `pools()` answers for each open tunnel (by tunnel id; the tunnel's pool while it is open). */
  poolOf: Map<string, Omit<TuiPool, 'tunnelId'>>;
}

export function fakeApi(databases: TuiDatabase[]): FakeApi {
  let seq = 0;
  const history: CoreEvent[] = [];
  const listeners = new Set<(e: CoreEvent) => void>();
  const open = new Map<string, TuiTunnel>();
  let hold: Promise<void> | undefined;
  let prepareHold: Promise<void> | undefined;
  let holdNames: Promise<void> | undefined;
  let tunnels = 0;
  const checkWaiters: Array<() => void> = [];
  let released = 0;
  const nextCheck = () =>
    new Promise<void>((resolve) => {
      if (released > 0) {
        released--;
        resolve();
      } else checkWaiters.push(resolve);
    });
  const api: FakeApi = {
    calls: [],
    failNext: {},
    serverNames: new Map(),
    namesAborted: 0,
    holdNames() {
      let release = () => {};
      holdNames = new Promise((r) => (release = r));
      return { release: () => release() };
    },
    async databaseNames(name, dbUser, signal) {
      api.calls.push(`databaseNames ${name} ${dbUser}`);
      let answered = false;
      signal?.addEventListener('abort', () => !answered && api.namesAborted++, { once: true });
      const held = holdNames;
      holdNames = undefined;
      if (held) await held;
      answered = true;
      if (signal?.aborted) throw new Error('aborted');
      const failure = api.failNext.databaseNames;
      if (failure) {
        api.failNext.databaseNames = undefined;
        throw failure;
      }
      return [...(api.serverNames.get(name) ?? [])];
    },
    doctorResults: [check('config', 'pass', '/x/azdb.yaml: 3 databases'), check('credential', 'pass', 'DefaultAzureCredential uses ManagedIdentityCredential'), check('tcp', 'pass', 'connected to 127.0.0.1:5432'), check('login', 'pass', 'logged in as azdb-demo')],
    manualDoctor: false,
    releaseCheck() {
      const waiter = checkWaiters.shift();
      if (waiter) waiter();
      else released++;
    },
    doctorRuns: { started: 0, aborted: 0 },
    prepareRuns: { started: 0, aborted: 0 },
    holdPrepare() {
      let release = () => {};
      prepareHold = new Promise((r) => (release = r));
      return { release: () => release() };
    },
    async prepareConnect(name, login, signal) {
      api.calls.push(`prepareConnect ${name} ${login.dbUser}/${login.dbName}`);
      api.prepareRuns.started++;
      const held = prepareHold;
      prepareHold = undefined;
      if (held) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            api.prepareRuns.aborted++;
            reject(new Error('cancelled'));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          void held.then(resolve);
        });
      }
      const failure = api.failNext.prepareConnect;
      if (failure) {
        api.failNext.prepareConnect = undefined;
        throw failure;
      }
    },
    sessions: [],
    actAnswers: new Map(),
    openHandles: 0,
    doctorPlan: () => DOCTOR_PLAN,
    async doctor(name, onResult, signal) {
      api.calls.push(`doctor ${name}`);
      api.doctorRuns.started++;
      const checks: TuiCheck[] = [];
      for (const result of api.doctorResults) {
        if (api.manualDoctor) await nextCheck();
        if (signal.aborted) {
          api.doctorRuns.aborted++;
          break;
        }
        checks.push(result);
        onResult(result);
      }
      return { ok: checks.every((c) => c.status !== 'fail'), checks };
    },
    async openQueries(name, login) {
      api.calls.push(`openQueries ${name} ${login?.dbUser ?? ''}/${login?.dbName ?? ''}`);
      const failure = api.failNext.openQueries;
      if (failure) {
        api.failNext.openQueries = undefined;
        throw failure;
      }
      api.openHandles++;
      let closed = false;
      const handle: TuiQueries = {
        login: { dbUser: login?.dbUser ?? 'azdb-demo', dbName: login?.dbName ?? 'postgres' },
        async list() {
          api.calls.push('list');
          const failure = api.failNext.list;
          if (failure) {
            api.failNext.list = undefined;
            throw failure;
          }
          return api.sessions.map((s) => ({ ...s }));
        },
        async act(action, pid) {
          api.calls.push(`${action} ${pid}`);
          const answer = api.actAnswers.get(pid);
          if (answer) return answer;
          if (action === 'terminate') {
            api.sessions = api.sessions.filter((s) => s.pid !== pid);
            return { status: 'done', message: `session ${pid} was terminated` };
          }
          api.sessions = api.sessions.map((s) => (s.pid === pid ? { ...s, state: 'idle', query: `${s.query ?? ''}` } : s));
          return { status: 'done', message: `the running query of pid ${pid} was cancelled` };
        },
        async close() {
          if (closed) return;
          closed = true;
          api.openHandles--;
          api.calls.push('closeQueries');
        },
      };
      return handle;
    },
    emit(body) {
      const event = { ...body, seq: ++seq, at: '2025-01-01T12:00:00.000Z' } as CoreEvent;
      history.push(event);
      for (const l of listeners) l(event);
    },
    holdDatabases() {
      let release = () => {};
      hold = new Promise((r) => (release = r));
      return { release: () => release() };
    },
    async databases() {
      api.calls.push('databases');
      if (hold) await hold;
      hold = undefined;
      const failure = api.failNext.databases;
      if (failure) {
        api.failNext.databases = undefined;
        throw failure;
      }
      return databases;
    },
    async openTunnel(name: string, login: TuiLogin) {
      api.calls.push(`openTunnel ${name} ${login.dbUser}/${login.dbName}`);
      const failure = api.failNext.openTunnel;
      if (failure) {
        api.failNext.openTunnel = undefined;
        throw failure;
      }
      const id = `t${++tunnels}`;
      const tunnel: TuiTunnel = {
        id,
        name,
        protocol: 'postgres',
        host: '127.0.0.1',
        port: 40000 + tunnels,
        user: login.dbUser,
        database: login.dbName,
        uri: `postgres://${login.dbUser}@127.0.0.1:${40000 + tunnels}/${login.dbName}`,
        command: `PGPASSWORD=<password> psql "host=127.0.0.1 port=${40000 + tunnels}"`,
        password: 'sekret-password-123',
        passwordFile: `/state/tunnel-passwords/${name}.password`,
        caFile: '/state/tls/ca.pem',
        openedAt: '2025-01-01T12:00:00.000Z',
      };
      open.set(id, tunnel);
      api.emit({ type: 'tunnel.opened', tunnelId: id, name, host: tunnel.host, port: tunnel.port, purpose: 'tunnel' });
      return tunnel;
    },
    async closeTunnel(id: string) {
      api.calls.push(`closeTunnel ${id}`);
      const tunnel = open.get(id);
      open.delete(id);
      if (tunnel) api.emit({ type: 'tunnel.closed', tunnelId: id, name: tunnel.name });
    },
    tunnels: () => [...open.values()].map((t) => ({ ...t, connections: 0 })),
    poolOf: new Map(),
    pools: () => [...open.keys()].flatMap((id) => {
      const pool = api.poolOf.get(id);
      return pool ? [{ ...pool, tunnelId: id }] : [];
    }),
    async connect(name: string, login: TuiLogin) {
      api.calls.push(`connect ${name} ${login.dbUser}/${login.dbName}`);
      return { exitCode: 0, client: 'psql' };
    },
    clientRunning: false,
    eventsSince: (after: number) => history.filter((e) => e.seq > after),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    describeError(error: unknown) {
      const e = error as Error & { hint?: string };
      return e.hint ? { message: e.message, hint: e.hint } : { message: e.message };
    },
    async close() {
      api.calls.push('close');
    },
  };
  return api;
}
