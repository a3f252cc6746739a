/**
 * Picking the database user and name for a login from `--db-user` / `--db-name` and what the
 * roles allow (DESIGN "Commands"): a flag left out takes the only value the roles allow; with
 * `*` allowed, `--db-name` falls back to `postgres` (PostgreSQL) or none (MySQL) and `--db-user`
 * has no fallback; anything else is a usage error (exit 2) that lists the allowed values.
 */
import { WILDCARD, type Protocol } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { AllowedValues } from './evaluate.js';

export interface LoginFlags {
  dbUser?: string;
  dbName?: string;
}

export interface Login {
  dbUser: string;
  /** `''` for a MySQL login without a default database. */
  dbName: string;
}

/** What {@link chooseLogin} needs; the denied lists are optional for callers with plain lists. */
export type AllowedLogins = Pick<AllowedValues, 'dbUsers' | 'dbNames'> & Partial<Pick<AllowedValues, 'deniedUsers' | 'deniedNames'>>;

/** The database name a PostgreSQL login uses when `*` is allowed and `--db-name` is left out. */
export const DEFAULT_POSTGRES_DB_NAME = 'postgres';
/** MySQL: no default database. */
export const DEFAULT_MYSQL_DB_NAME = '';

const LOGIN_HINT = 'Run `azdb db ls` to see the database users and names your roles allow.';

interface Field {
  flag: '--db-user' | '--db-name';
  noun: string;
  plural: string;
}

const USER_FIELD: Field = { flag: '--db-user', noun: 'database user', plural: 'database users' };
const NAME_FIELD: Field = { flag: '--db-name', noun: 'database name', plural: 'database names' };

/** The login to use, or a {@link UserError} with exit code 2 naming the allowed values. */
export function chooseLogin(allowed: AllowedLogins, flags: LoginFlags, protocol: Protocol): Login {
  const nameFallback = protocol === 'mysql' ? DEFAULT_MYSQL_DB_NAME : DEFAULT_POSTGRES_DB_NAME;
  return {
    dbUser: choose(USER_FIELD, allowed.dbUsers, allowed.deniedUsers ?? [], flags.dbUser, undefined),
    dbName: choose(NAME_FIELD, allowed.dbNames, allowed.deniedNames ?? [], flags.dbName, nameFallback),
  };
}

function choose(field: Field, allowed: readonly string[], denied: readonly string[], flag: string | undefined, fallback: string | undefined): string {
  const permitted = (value: string): boolean => (allowed.includes(value) || allowed.includes(WILDCARD)) && !denied.includes(value);

  if (allowed.length === 0) {
    throw usage(`your roles allow no ${field.plural} on this database`);
  }
  if (flag !== undefined) {
    if (permitted(flag)) return flag;
    throw usage(`${field.flag} "${flag}" is not allowed by your roles; allowed ${field.plural}: ${describe(allowed, denied)}`);
  }
  if (allowed.includes(WILDCARD)) {
    if (fallback !== undefined && permitted(fallback)) return fallback;
    throw usage(`${field.flag} is required: your roles allow any ${field.noun} (${describe(allowed, denied)})`);
  }
  const [only, ...rest] = allowed;
  if (only !== undefined && rest.length === 0) return only;
  throw usage(`${field.flag} is required: your roles allow several ${field.plural}: ${describe(allowed, denied)}`);
}

/** Values for a message, e.g. `"*" (any), "alice" except "postgres"`. */
function describe(allowed: readonly string[], denied: readonly string[]): string {
  const parts = allowed.map((value) => (value === WILDCARD ? `"${WILDCARD}" (any)` : `"${value}"`));
  const except = allowed.includes(WILDCARD) && denied.length > 0 ? ` except ${denied.map((value) => `"${value}"`).join(', ')}` : '';
  return parts.join(', ') + except;
}

function usage(message: string): UserError {
  return new UserError(message, { usage: true, hint: LOGIN_HINT });
}
