/**
 * The databases a server has that the logged-in user may connect to: PostgreSQL's
 * `pg_database` (no templates, none closed to connections, only those with CONNECT for the
 * user), MySQL's `SHOW DATABASES` (the server shows only those the user has a privilege on).
 * Runs over any {@link DbSession}.
 */
import type { DbSession } from './db-client.js';

const POSTGRES_NAMES = `
select datname from pg_database
where datallowconn and not datistemplate and has_database_privilege(datname, 'CONNECT')
order by datname`;

export async function listDatabaseNames(session: DbSession): Promise<string[]> {
  if (session.protocol === 'postgres') {
    const { rows } = await session.query(POSTGRES_NAMES);
    return rows.map((r) => String(r.datname));
  }
  const { rows } = await session.query('SHOW DATABASES');
  // The column is named `Database`; take the first whatever the server calls it.
  return rows.map((r) => String(Object.values(r)[0]));
}
