/**
 * Step 3's SQL for one engine: the Entra principal, then the privilege level chosen, granted the
 * same way on PostgreSQL and MySQL and only on the databases named for that engine (never `*.*`).
 * Pure.
 *
 * PostgreSQL, in each database (schema public):
 *   read-only   CONNECT, USAGE, SELECT on the tables, and on those the admin makes later
 *               (then a check that every table of public was granted: a GRANT the admin may
 *               not give only warns)
 *   read-write  + INSERT, UPDATE, DELETE, and USAGE, SELECT on the sequences (serial columns)
 *   owner       + a schema of its own, named after it (first on its default search_path)
 * MySQL, on each `db`.*:
 *   read-only SELECT; read-write + INSERT, UPDATE, DELETE; owner ALL PRIVILEGES (no GRANT OPTION)
 */
import type { TokenClaims } from '../../azure/token-claims.js';
import type { Protocol } from '../../config/schema.js';
import { createPrincipalSql, principalName } from '../../diagnostics/principal-sql.js';
import type { PrivilegeLevel } from '../api/setup.js';

/** Where PostgreSQL's `pgaadauth_*` functions are run. */
export const POSTGRES_ADMIN_DATABASE = 'postgres';

export interface PrincipalSql {
  protocol: Protocol;
  /** The database user's name on the server. */
  user: string;
  level: PrivilegeLevel;
  /** The databases it is granted on. */
  databases: readonly string[];
  /** Makes the principal; PostgreSQL's returns no row when it exists already, MySQL's fails with 1396. */
  create: string;
  /** The database `create` runs in: PostgreSQL's `postgres`, none ('') on MySQL. */
  createDatabase: string;
  /** The GRANTs, by the database whose session must run them ('' = any: MySQL). */
  grants: Array<{ database: string; statements: string[] }>;
}

export function principalGrants(
  protocol: Protocol,
  options: { dbUser: string; claims: TokenClaims | undefined; level: PrivilegeLevel; databases: readonly string[] },
): PrincipalSql {
  const user = principalName(options.dbUser, options.claims);
  if (protocol === 'postgres') {
    return {
      protocol,
      user,
      level: options.level,
      databases: options.databases,
      create: createPrincipalSql('postgres', options.dbUser, options.claims, undefined, { unlessExists: true }),
      createDatabase: POSTGRES_ADMIN_DATABASE,
      grants: options.databases.map((database) => ({ database, statements: postgresGrants(user, database, options.level) })),
    };
  }
  const statements = options.databases.map((database) => `GRANT ${MYSQL_PRIVILEGES[options.level]} ON ${mysqlDatabaseScope(database)} TO ${mysqlAccount(user)};`);
  return {
    protocol,
    user,
    level: options.level,
    databases: options.databases,
    create: createPrincipalSql('mysql', options.dbUser, options.claims),
    createDatabase: '',
    grants: statements.length > 0 ? [{ database: '', statements }] : [],
  };
}

const MYSQL_PRIVILEGES: Readonly<Record<PrivilegeLevel, string>> = {
  'read-only': 'SELECT',
  'read-write': 'SELECT, INSERT, UPDATE, DELETE',
  owner: 'ALL PRIVILEGES',
};

const TABLE_PRIVILEGES: Readonly<Record<PrivilegeLevel, string>> = {
  'read-only': 'SELECT',
  'read-write': 'SELECT, INSERT, UPDATE, DELETE',
  owner: 'SELECT, INSERT, UPDATE, DELETE',
};

function postgresGrants(user: string, database: string, level: PrivilegeLevel): string[] {
  const role = pgIdentifier(user);
  const tables = TABLE_PRIVILEGES[level];
  const statements = [
    `GRANT CONNECT ON DATABASE ${pgIdentifier(database)} TO ${role};`,
    `GRANT USAGE ON SCHEMA public TO ${role};`,
    `GRANT ${tables} ON ALL TABLES IN SCHEMA public TO ${role};`,
    // Tables the admin makes later; those another role makes take that role's own GRANTs.
    `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ${tables} ON TABLES TO ${role};`,
  ];
  if (level !== 'read-only') {
    statements.push(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};`, `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${role};`);
  }
  statements.push(postgresGrantCheck(user, database, tables));
  if (level === 'owner') {
    // Giving a role a schema takes being able to SET ROLE to it: the admin grants itself the role
    // it administers (PostgreSQL 16+: ADMIN OPTION, which Azure's Entra admin has on the roles it
    // makes) for the one statement, then drops the membership again.
    statements.push(`GRANT ${role} TO CURRENT_USER;`, `CREATE SCHEMA IF NOT EXISTS ${role} AUTHORIZATION ${role};`, `REVOKE ${role} FROM CURRENT_USER;`);
  }
  return statements;
}

/**
 * A GRANT on a table the admin neither owns nor holds WITH GRANT OPTION only warns ("no
 * privileges were granted") and the user gets nothing: this fails the run instead, naming why.
 */
function postgresGrantCheck(user: string, database: string, privileges: string): string {
  const list = privileges.split(', ').map((p) => `'${p}'`).join(', ');
  const role = pgString(user);
  return [
    'DO $grant_check$ BEGIN',
    `  IF EXISTS (SELECT FROM pg_catalog.pg_tables t, unnest(ARRAY[${list}]) AS p(privilege)`,
    `             WHERE t.schemaname = 'public' AND NOT has_table_privilege(${role}, format('public.%I', t.tablename), p.privilege)) THEN`,
    `    RAISE EXCEPTION USING MESSAGE = ${pgString(`${user} did not get ${privileges} on every table of schema public in ${database}: the admin may grant only on tables it owns or holds WITH GRANT OPTION; have their owner grant them`)};`,
    '  END IF;',
    'END $grant_check$;',
  ].join('\n');
}

function pgString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export function pgIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `'user'@'%'`, as `CREATE AADUSER` makes the account. */
function mysqlAccount(user: string): string {
  return `'${mysqlString(user)}'@'%'`;
}

/**
 * `` `db`.* `` for exactly that database: in a database-level GRANT, `_` and `%` are wildcards
 * (`shop_db` would also match `shopXdb`), so they are escaped.
 */
export function mysqlDatabaseScope(database: string): string {
  return `\`${database.replace(/`/g, '``').replace(/([_%])/g, '\\$1')}\`.*`;
}

/** Quoted as createPrincipalSql quotes the name, so both statements name the same account. */
function mysqlString(text: string): string {
  return text.replace(/'/g, "''");
}
