/**
 * The database names the picker offers for a login: where the roles allow any name (`*`), the
 * databases the server really has, asked through the broker as the chosen database user; where
 * they list names, those. Never a name the roles deny; recently used names first.
 */
import { DEFAULT_MYSQL_DB_NAME, DEFAULT_POSTGRES_DB_NAME } from '../access/index.js';
import type { RecentConnection } from '../config/user-state.js';
import { WILDCARD } from '../config/schema.js';
import { listDatabaseNames } from '../diagnostics/database-names.js';
import { withTimeLimit } from '../time-limit.js';
import { loginSession } from './queries.js';
import type { Runtime } from './runtime.js';

/** Logging in and listing together; past it the prompt says so and the person types a name. */
const LIST_LIMIT_MS = 20_000;

/** MySQL's own schemas: listed after the databases that hold data. */
const MYSQL_SYSTEM_SCHEMAS = new Set(['information_schema', 'mysql', 'performance_schema', 'sys']);

export interface DatabaseNamesOptions {
  /** Earlier logins (any database), most recent first: their names on this database come first. */
  recent: readonly RecentConnection[];
  signal?: AbortSignal;
}

export async function databaseNamesFor(rt: Runtime, name: string, dbUser: string, options: DatabaseNamesOptions): Promise<string[]> {
  const db = rt.database(name);
  const allowed = rt.allowed(db);
  const permitted = (value: string) => value !== WILDCARD && !allowed.deniedNames.includes(value);
  const names = allowed.dbNames.includes(WILDCARD) ? await askServer(rt, name, dbUser, options.signal) : allowed.dbNames;
  const recent = options.recent.filter((r) => r.name === name).map((r) => r.db_name);
  return orderDatabaseNames(names.filter(permitted), recent);
}

/** Recently used first (most recent first), then by name; MySQL's system schemas last. */
export function orderDatabaseNames(names: readonly string[], recent: readonly string[]): string[] {
  const rank = (value: string) => {
    const used = recent.indexOf(value);
    return used >= 0 ? used : recent.length + (MYSQL_SYSTEM_SCHEMAS.has(value) ? 1 : 0);
  };
  return [...new Set(names)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

async function askServer(rt: Runtime, name: string, dbUser: string, outer: AbortSignal = new AbortController().signal): Promise<string[]> {
  const protocol = rt.database(name).protocol;
  // The database every server has (or none, on MySQL): the login is only for asking.
  const dbName = protocol === 'mysql' ? DEFAULT_MYSQL_DB_NAME : DEFAULT_POSTGRES_DB_NAME;
  return withTimeLimit(LIST_LIMIT_MS, outer, async (signal) => {
    const { session } = await loginSession(rt, name, { dbUser, dbName }, 'azdb tui databases');
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= session.close().catch(() => {}));
    // Given up meanwhile (the prompt closed, or the time ran out): nobody waits for the answer.
    if (signal.aborted) {
      void close();
      throw signal.reason;
    }
    const onAbort = () => void close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await listDatabaseNames(session);
    } finally {
      signal.removeEventListener('abort', onAbort);
      await close();
    }
  });
}
