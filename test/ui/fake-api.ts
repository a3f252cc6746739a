/** A TuiApi for screen tests: databases and tunnels in memory, events on demand, calls recorded. */
import type { CoreEvent, CoreEventBody, TuiApi, TuiDatabase, TuiLogin, TuiTunnel } from '../../src/cli/tui-api.js';

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

export interface FakeApi extends TuiApi {
  calls: string[];
  emit(body: CoreEventBody): void;
  /** Makes the next `databases()` wait until `release()`. */
  holdDatabases(): { release(): void };
  failNext: { databases?: Error; openTunnel?: Error };
}

export function fakeApi(databases: TuiDatabase[]): FakeApi {
  let seq = 0;
  const history: CoreEvent[] = [];
  const listeners = new Set<(e: CoreEvent) => void>();
  const open = new Map<string, TuiTunnel>();
  let hold: Promise<void> | undefined;
  let tunnels = 0;
  const api: FakeApi = {
    calls: [],
    failNext: {},
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
    async connect(name: string, login: TuiLogin) {
      api.calls.push(`connect ${name} ${login.dbUser}/${login.dbName}`);
      return { exitCode: 0 };
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
