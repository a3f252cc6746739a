/**
 * The contract between the core and the picker screens (src/ui): the types the screens render and
 * the API object they are handed. Types and constants only, so the UI loads nothing of the core.
 *
 * Events carry a sequence number and the API keeps the latest ones, so a screen that was
 * unmounted while psql had the terminal catches up with `eventsSince` when it comes back.
 */
import type { PoolKeyCounts } from '../../broker/serve.js';

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
  /** The tunnel's secret: for the screen to show on demand, never to log. */
  password: string;
  /** Where the password is kept, the same for every tunnel to this database; absent when random. */
  passwordFile?: string;
  /** The CA of the tunnel's TLS certificate, for a client to verify it; absent without TLS. */
  caFile?: string;
  openedAt: string;
}

/**
 * One key of a connection pool (database user, database name and the identity whose tokens log
 * the server connections in), read from the broker's counters as `azdb pools --json` has them.
 */
/** One key of a pool (database user, database name, identity) and its counters. */
export type TuiPoolKey = PoolKeyCounts;

/** The pool of an open tunnel (a database with `pool:` in azdb.yaml). */
export interface TuiPool {
  tunnelId: string;
  /** The database's name in azdb.yaml. */
  name: string;
  /** Where the tunnel listens, `host:port`. */
  listener: string;
  mode: 'session' | 'transaction';
  maxServerConnections: number;
  keys: TuiPoolKey[];
}

export type CoreEventBody =
  | { type: 'tunnel.opened'; tunnelId: string; name: string; host: string; port: number; purpose: 'tunnel' | 'client' }
  | { type: 'tunnel.closed'; tunnelId: string; name: string; /** Closed from another shell. */ by?: 'logout' }
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
  /**
   * The database names to offer for a login on `name` as `dbUser`, recently used first: where the
   * roles allow any name, those the server has (asked through the broker as `dbUser`; on MySQL ''
   * for none is not among them), else the names the roles list; never one the roles deny. Throws
   * (with a hint) when the server cannot be asked; `signal` gives up.
   */
  databaseNames(name: string, dbUser: string, signal?: AbortSignal): Promise<string[]>;
  /**
   * Opens a tunnel for GUI clients; it stays open until closed or the API closes. `signal` (esc)
   * stops the opening (the wait for the Entra token) at once.
   */
  openTunnel(name: string, login: TuiLogin, signal?: AbortSignal): Promise<TuiTunnel>;
  closeTunnel(id: string): Promise<void>;
  /** Open tunnels (from `openTunnel`), oldest first, with their live session counts. */
  tunnels(): Array<TuiTunnel & { connections: number }>;
  /** The pools of the open tunnels, oldest tunnel first, as their counters stand now. */
  pools(): TuiPool[];
  /**
   * Gets a client's tunnel ready (the client is installed, the Entra token at hand: the slow part)
   * while the picker is still on screen; `connect` with the same database and login then uses it.
   * `signal` (esc, Ctrl+C) stops it at once.
   */
  prepareConnect(name: string, login: TuiLogin, signal?: AbortSignal): Promise<void>;
  /**
   * Runs psql / mariadb on this terminal (stdio inherited) through a tunnel of its own (the one
   * {@link prepareConnect} opened, else a new one), until it exits. The caller must have released
   * the terminal (Ink unmounted). `signal` ends the client.
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

