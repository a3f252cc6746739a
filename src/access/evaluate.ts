/**
 * Role evaluation for database logins, with Teleport role v7 semantics for the db_* fields.
 *
 * What Teleport does, and so what this does (gravitational/teleport `lib/services/role.go`,
 * `RoleSet.checkAccess` with `CheckLabelsMatch`, `MatchLabelGetter`, `databaseUserMatcher`,
 * `DatabaseNameMatcher`, `RoleMatchers.MatchAny/MatchAll`; `lib/srv/db/common/role`
 * `databaseNameMatcher`; docs "Database Access RBAC", "Deny rules will match greedily"):
 *
 * 1. Deny first, every role, greedy — any ONE of these in a role's `deny` refuses the login:
 *    - its `db_labels` match the database: the whole database is denied, whatever the user and
 *      name (labels alone deny);
 *    - its `db_users` lists the user (or `*`), on ANY database — deny `db_users`/`db_names` do not
 *      wait for deny labels (the docs' `deny: {db_users: [postgres]}` refuses "postgres"
 *      "regardless of database instance");
 *    - its `db_names` lists the database name (or `*`), on any database.
 *    An empty or absent deny field denies nothing.
 * 2. Then allow — one role must match on its own: `db_labels` AND `db_users` AND `db_names`.
 *    Empty or absent fields match nothing (v7 has no defaults), so labels in one role and users in
 *    another allow nothing.
 * 3. People (a `client_auth: entra` listener): a rule with `subjects` is about the people it names
 *    (by object id or UPN, or a group in their token) and no one else; a deny rule with only
 *    `subjects` refuses them everything. `db_users` entries may name the person's traits
 *    (`{{external.upn}}`, `{{external.oid}}`, `{{external.appid}}`); without a person such an entry
 *    matches nothing (subjects.ts).
 * 4. MySQL: `db_names` are not checked at all (allow or deny): in MySQL a database is a schema
 *    and a session can reach the others, so Teleport leaves that to MySQL grants.
 *
 * One deliberate difference: where Teleport's label matching meets a pattern that does not
 * compile it returns an error, refusing the login. Here an invalid pattern never matches in
 * `allow` (other roles may still allow), and in `deny` it refuses the database (fail closed)
 * rather than silently dropping the deny rule. `validateRoles` reports such patterns up front.
 */
import { WILDCARD, type Protocol, type RoleConfig } from '../config/schema.js';
import { evaluateLabels, matchValue } from './match.js';
import { describePerson, expandUsers, hasConditions, matchSubjects, type Person } from './subjects.js';

/** What evaluation needs of a role; a validated {@link RoleConfig} is one. */
export type Role = Pick<RoleConfig, 'metadata' | 'spec'>;

/** The database a login is for: its azdb name and labels (discovered or static). */
export interface DatabaseRef {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** `mysql`: `db_names` are not enforced (as in Teleport). Absent: enforced. */
  protocol?: Protocol;
}

/** The login asked for; `person` when the client signed in with Entra (a shared broker). */
export interface AccessRequest {
  dbUser: string;
  dbName: string;
  person?: Person;
}

export type AccessResult = { allowed: true; role: string; groups?: string[] } | { allowed: false; reason: string };

/** What the roles allow on one database (`"*"` = any), each list sorted. */
export interface AllowedValues {
  dbUsers: string[];
  dbNames: string[];
  /** Exact values a deny rule refuses even where `dbUsers` has `"*"`. */
  deniedUsers: string[];
  /** Exact values a deny rule refuses even where `dbNames` has `"*"`. */
  deniedNames: string[];
}

/** Whether `db_names` take part for a database of this protocol. */
export function namesEnforced(protocol: Protocol | undefined): boolean {
  return protocol !== 'mysql';
}

/** Decides one login: deny rules first, then one role that allows it all. */
export function checkAccess(roles: readonly Role[], db: DatabaseRef, request: AccessRequest): AccessResult {
  const checkNames = namesEnforced(db.protocol);
  const login = describeLogin(db, request, checkNames);

  const person = request.person;
  for (const role of roles) {
    const name = role.metadata.name;
    const deny = role.spec.deny;
    // A deny rule about certain people applies to them only; with nothing else in it, to everything.
    if (deny.subjects !== undefined) {
      if (!matchSubjects(deny.subjects, person).matched) continue;
      if (!hasConditions(deny)) return refuse(`role "${name}" denies ${login}: its deny.subjects name ${describePerson(person)}`);
    }
    switch (evaluateLabels(deny.db_labels, db.labels)) {
      case 'match':
        return refuse(`role "${name}" denies ${login}: its deny.db_labels match database "${db.name}"`);
      case 'invalid':
        return refuse(
          `role "${name}" denies ${login}: its deny.db_labels have a pattern that does not compile, ` +
            'so the database is refused until it is fixed (run `azdb config check`)',
        );
      case 'no-match':
        break;
    }
    if (matchValue(expandUsers(deny.db_users, person), request.dbUser)) {
      return refuse(`role "${name}" denies ${login}: its deny.db_users ${listedAs(deny.db_users, request.dbUser)}`);
    }
    if (checkNames && matchValue(deny.db_names, request.dbName)) {
      return refuse(`role "${name}" denies ${login}: its deny.db_names ${listedAs(deny.db_names, request.dbName)}`);
    }
  }

  for (const role of roles) {
    const allow = role.spec.allow;
    const subjects = allow.subjects === undefined ? { matched: true, groups: [] } : matchSubjects(allow.subjects, person);
    if (!subjects.matched) continue;
    if (evaluateLabels(allow.db_labels, db.labels) !== 'match') continue;
    if (!matchValue(expandUsers(allow.db_users, person), request.dbUser)) continue;
    if (checkNames && !matchValue(allow.db_names, request.dbName)) continue;
    return { allowed: true, role: role.metadata.name, ...(subjects.groups.length > 0 ? { groups: subjects.groups } : {}) };
  }

  const who = person ? ` for ${describePerson(person)}` : '';
  const why = roles.length === 0 ? 'no roles apply' : `none of ${roles.map((r) => `"${r.metadata.name}"`).join(', ')} allows it${who}`;
  return refuse(`no role allows ${login} (${why})`);
}

/**
 * What the roles allow on a database: the union over roles whose allow rule matches it on its
 * own, without the exact values deny rules refuse (`"*"` stays `"*"`; the refused exact values
 * are in `deniedUsers` / `deniedNames`). A database whose labels a deny rule matches allows
 * nothing. For MySQL, `dbNames` is `["*"]`: names are not enforced. It is what a local login (no
 * person signed in) may use, so rules about people (subjects, `{{external.*}}` traits) do not apply.
 */
export function allowedValues(roles: readonly Role[], db: DatabaseRef): AllowedValues {
  const checkNames = namesEnforced(db.protocol);
  const none: AllowedValues = { dbUsers: [], dbNames: [], deniedUsers: [], deniedNames: [] };
  const deniedUsers = new Set<string>();
  const deniedNames = new Set<string>();
  for (const role of roles) {
    const deny = role.spec.deny;
    if (deny.subjects !== undefined) continue;
    if (evaluateLabels(deny.db_labels, db.labels) !== 'no-match') return none;
    expandUsers(deny.db_users, undefined)?.forEach((user) => deniedUsers.add(user));
    if (checkNames) deny.db_names?.forEach((name) => deniedNames.add(name));
  }

  const users = new Set<string>();
  const names = new Set<string>();
  for (const role of roles) {
    const allow = role.spec.allow;
    if (allow.subjects !== undefined) continue;
    if (evaluateLabels(allow.db_labels, db.labels) !== 'match') continue;
    const roleUsers = expandUsers(allow.db_users, undefined) ?? [];
    const roleNames = checkNames ? (allow.db_names ?? []) : [WILDCARD];
    // A role grants a login only with a user AND a name of its own.
    if (roleUsers.length === 0 || roleNames.length === 0) continue;
    roleUsers.forEach((user) => users.add(user));
    roleNames.forEach((name) => names.add(name));
  }

  if (deniedUsers.has(WILDCARD) || deniedNames.has(WILDCARD)) return none;
  const dbUsers = sorted([...users].filter((user) => !deniedUsers.has(user)));
  const dbNames = sorted([...names].filter((name) => !deniedNames.has(name)));
  if (dbUsers.length === 0 || dbNames.length === 0) return none;
  return { dbUsers, dbNames, deniedUsers: sorted([...deniedUsers]), deniedNames: sorted([...deniedNames]) };
}

function describeLogin(db: DatabaseRef, request: AccessRequest, withName: boolean): string {
  const name = withName ? ` with database name "${request.dbName}"` : '';
  return `database user "${request.dbUser}"${name} on database "${db.name}"`;
}

function listedAs(entries: readonly string[] | undefined, value: string): string {
  return entries?.includes(value) ? `list "${value}"` : `list "${WILDCARD}" (any)`;
}

function refuse(reason: string): AccessResult {
  return { allowed: false, reason };
}

function sorted(values: string[]): string[] {
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
