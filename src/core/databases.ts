/**
 * The databases a person may use: static ones from the config and those discovery finds, each
 * with what the roles allow, as `azdb db ls` and the picker list them; and what discovery could
 * not list, as warnings with a hint.
 */
import type { Runtime } from './runtime.js';

export interface DatabaseListing {
  name: string;
  protocol: 'postgres' | 'mysql';
  uri: string;
  labels: Record<string, string>;
  db_users: string[];
  db_names: string[];
}

export interface RuntimeWarning {
  message: string;
  hint?: string;
}

/** The databases whose roles allow some user, sorted by name (the `db ls --json` shape). */
export function listDatabases(rt: Runtime): DatabaseListing[] {
  return rt
    .databases()
    .map((db) => {
      const allowed = rt.allowed(db);
      return { name: db.name, protocol: db.protocol, uri: db.uri, labels: { ...db.labels }, db_users: allowed.dbUsers, db_names: allowed.dbNames };
    })
    .filter((db) => db.db_users.length > 0)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Scopes discovery could not list (which, why, what to grant) and discovered servers a static entry hides. */
export function discoveryWarnings(rt: Runtime): RuntimeWarning[] {
  return [
    ...(rt.discovery?.errors ?? []).map((failure) => ({
      message: `discovery could not list ${failure.scope}: ${failure.reason}${failure.permission ? ` (needs ${failure.permission})` : ''}`,
      hint: failure.hint,
    })),
    ...rt.shadowed.map((name) => ({ message: `discovered server "${name}" is not listed: a database under \`databases:\` has that name` })),
  ];
}
