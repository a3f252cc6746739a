/**
 * checkAccess against the cases of Teleport's "Database Access RBAC" docs and the database tables
 * of `lib/services/role_test.go` (TestCheckAccessToDatabase, …DatabaseUser, …DatabaseService),
 * rewritten for role v7 (no default labels), plus the matcher corners azdb relies on.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_LOCAL_ROLE, checkAccess, type DatabaseRef, type Role } from '../../src/access/index.js';
import type { RoleConditions } from '../../src/config/schema.js';

function role(name: string, allow: RoleConditions, deny: RoleConditions = {}): Role {
  return { metadata: { name }, spec: { allow, deny } };
}

// ---- databases ----
const stage: DatabaseRef = { name: 'stage', labels: { env: 'stage', arch: 'x86' } };
const stage2: DatabaseRef = { name: 'stage2', labels: { env: 'stage', arch: 'amd64' } };
const prod: DatabaseRef = { name: 'prod', labels: { env: 'prod', region: 'eastus2' } };
const dev: DatabaseRef = { name: 'dev', labels: { environment: 'dev' } };
const bare: DatabaseRef = { name: 'bare', labels: {} };
const azurePg: DatabaseRef = {
  name: 'orders',
  labels: { engine: 'Microsoft.DBforPostgreSQL/flexibleServers', region: 'eastus', 'resource-group': 'rg-prod-1' },
};
const azureMy: DatabaseRef = {
  name: 'shop',
  protocol: 'mysql',
  labels: { engine: 'Microsoft.DBforMySQL/flexibleServers', region: 'eastus' },
};

// ---- roles ----
// Docs, "Role configuration".
const docsDeveloper = role('developer', {
  db_labels: { environment: ['dev', 'stage'] },
  db_users: ['viewer', 'editor'],
  db_names: ['main', 'metrics', 'postgres'],
});
// Docs: any user/name on prod except the "postgres" user and database; deny has no labels.
const docsProdExceptPostgres = role(
  'prod-developer',
  { db_labels: { env: ['prod'] }, db_users: ['*'], db_names: ['*'] },
  { db_users: ['postgres'], db_names: ['postgres'] },
);
// role_test.go TestCheckAccessToDatabase.
const devStage = role('dev-stage', { db_labels: { env: ['stage'] }, db_names: ['*'], db_users: ['*'] }, { db_names: ['supersecret'] });
const devProd = role('dev-prod', { db_labels: { env: ['prod'] }, db_names: ['test'], db_users: ['dev'] });
// role_test.go TestCheckAccessToDatabaseUser.
const devStageUsers = role('dev-stage-users', { db_labels: { env: 'stage' }, db_users: ['*'], db_names: ['*'] }, { db_users: ['superuser'] });
// role_test.go TestCheckAccessToDatabaseService.
const admin = role('admin', { db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] });
const devArch = role('dev-arch', { db_labels: { env: 'stage' }, db_users: ['*'], db_names: ['*'] }, { db_labels: { arch: ['amd64'] } });
const intern = role('intern', {});
// DESIGN.md's example role.
const azureAccess = role('azure-database-access', {
  db_labels: { engine: ['Microsoft.DBforPostgreSQL/flexibleServers'] },
  db_names: ['*'],
  db_users: ['teleport'],
});

interface Case {
  name: string;
  roles: Role[];
  db: DatabaseRef;
  user: string;
  dbName: string;
  /** The allowing role's name, or patterns the refusal reason must contain. */
  want: { role: string } | { reason: RegExp[] };
}

const allow = (r: string): Case['want'] => ({ role: r });
const refuse = (...reason: RegExp[]): Case['want'] => ({ reason });
const noRole = /no role allows/;

const cases: Case[] = [
  // -- docs: role configuration --
  { name: 'docs: listed user and name on a dev database', roles: [docsDeveloper], db: dev, user: 'viewer', dbName: 'main', want: allow('developer') },
  { name: 'docs: list value matches stage too', roles: [docsDeveloper], db: { name: 's', labels: { environment: 'stage' } }, user: 'editor', dbName: 'postgres', want: allow('developer') },
  { name: 'docs: unlisted user', roles: [docsDeveloper], db: dev, user: 'admin', dbName: 'main', want: refuse(noRole, /"admin"/, /"dev"/) },
  { name: 'docs: unlisted database name', roles: [docsDeveloper], db: dev, user: 'viewer', dbName: 'billing', want: refuse(noRole, /"billing"/) },
  { name: 'docs: label value not in the list', roles: [docsDeveloper], db: { name: 'p', labels: { environment: 'prod' } }, user: 'viewer', dbName: 'main', want: refuse(noRole) },
  // -- docs: wildcards with a greedy deny --
  { name: 'docs: * users and * names on prod', roles: [docsProdExceptPostgres], db: prod, user: 'alice', dbName: 'orders', want: allow('prod-developer') },
  { name: 'docs: deny of a user overrides allow *', roles: [docsProdExceptPostgres], db: prod, user: 'postgres', dbName: 'orders', want: refuse(/role "prod-developer" denies/, /database user "postgres"/, /deny\.db_users/, /"prod"/) },
  { name: 'docs: deny of a database name overrides allow *', roles: [docsProdExceptPostgres], db: prod, user: 'alice', dbName: 'postgres', want: refuse(/role "prod-developer" denies/, /deny\.db_names/) },
  { name: 'docs: deny without labels applies on every database', roles: [docsProdExceptPostgres, admin], db: bare, user: 'postgres', dbName: 'x', want: refuse(/role "prod-developer" denies/, /"bare"/) },
  { name: 'deny in one role overrides allow in another', roles: [admin, docsProdExceptPostgres], db: stage, user: 'alice', dbName: 'postgres', want: refuse(/role "prod-developer"/) },
  { name: 'deny of * users refuses everyone', roles: [admin, role('lockdown', {}, { db_users: ['*'] })], db: stage, user: 'alice', dbName: 'x', want: refuse(/role "lockdown" denies/, /"\*" \(any\)/) },
  { name: 'deny rule of an unrelated user does not refuse', roles: [admin, role('no-root', {}, { db_users: ['root'] })], db: stage, user: 'alice', dbName: 'x', want: allow('admin') },
  // -- role_test.go TestCheckAccessToDatabase --
  { name: 'teleport: any user/name on stage', roles: [devStage, devProd], db: stage, user: 'superuser', dbName: 'superdb', want: allow('dev-stage') },
  { name: 'teleport: stage, dev/test', roles: [devStage, devProd], db: stage, user: 'dev', dbName: 'test', want: allow('dev-stage') },
  { name: 'teleport: stage, denied database name', roles: [devStage, devProd], db: stage, user: 'dev', dbName: 'supersecret', want: refuse(/role "dev-stage" denies/, /"supersecret"/) },
  { name: 'teleport: prod, only dev/test', roles: [devStage, devProd], db: prod, user: 'dev', dbName: 'test', want: allow('dev-prod') },
  { name: 'teleport: prod, wrong user and name', roles: [devStage, devProd], db: prod, user: 'superuser', dbName: 'superdb', want: refuse(noRole) },
  { name: 'teleport: prod, right user wrong name', roles: [devStage, devProd], db: prod, user: 'dev', dbName: 'superdb', want: refuse(noRole) },
  { name: 'teleport: prod, right name wrong user', roles: [devStage, devProd], db: prod, user: 'superuser', dbName: 'test', want: refuse(noRole) },
  { name: 'teleport: denied name is denied on prod too', roles: [devStage, devProd], db: prod, user: 'dev', dbName: 'supersecret', want: refuse(/role "dev-stage" denies/) },
  // -- role_test.go TestCheckAccessToDatabaseUser --
  { name: 'teleport: stage denies superuser', roles: [devStageUsers, devProd], db: stage, user: 'superuser', dbName: 'x', want: refuse(/role "dev-stage-users" denies/, /"superuser"/) },
  { name: 'teleport: stage allows other users', roles: [devStageUsers, devProd], db: stage, user: 'test', dbName: 'x', want: allow('dev-stage-users') },
  { name: 'teleport: superuser denied on prod as well', roles: [devStageUsers, devProd], db: prod, user: 'superuser', dbName: 'test', want: refuse(/role "dev-stage-users" denies/) },
  // -- role_test.go TestCheckAccessToDatabaseService: labels --
  { name: "teleport: '*': '*' reaches a database without labels", roles: [admin], db: bare, user: 'u', dbName: 'n', want: allow('admin') },
  { name: 'teleport: deny by labels only (arch amd64)', roles: [devArch], db: stage2, user: 'u', dbName: 'n', want: refuse(/role "dev-arch" denies/, /deny\.db_labels/, /"stage2"/) },
  { name: 'teleport: deny labels leave other databases alone', roles: [devArch], db: stage, user: 'u', dbName: 'n', want: allow('dev-arch') },
  { name: 'teleport: allow labels do not reach a database without labels', roles: [devArch], db: bare, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'teleport: deny labels beat an admin role', roles: [admin, devArch], db: stage2, user: 'u', dbName: 'n', want: refuse(/role "dev-arch"/) },
  { name: 'teleport: intern (empty role) gets nothing', roles: [intern], db: stage, user: 'u', dbName: 'n', want: refuse(noRole, /"intern"/) },
  { name: 'teleport: no roles at all', roles: [], db: stage, user: 'u', dbName: 'n', want: refuse(noRole, /no roles apply/) },
  // -- v7: nothing defaults --
  { name: 'v7: allow without db_labels matches no database', roles: [role('no-labels', { db_users: ['*'], db_names: ['*'] })], db: bare, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'v7: allow without db_names allows nothing', roles: [role('no-names', { db_labels: { '*': '*' }, db_users: ['*'] })], db: stage, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'v7: allow with empty db_users allows nothing', roles: [role('empty-users', { db_labels: { '*': '*' }, db_users: [], db_names: ['*'] })], db: stage, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'deny with empty lists denies nothing', roles: [role('empty-deny', { db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] }, { db_labels: {}, db_users: [], db_names: [] })], db: stage, user: 'u', dbName: 'n', want: allow('empty-deny') },
  // -- one role must allow it all --
  {
    name: 'allow split across two roles (labels+names in one, users in another) is denied',
    roles: [role('labels', { db_labels: { env: 'prod' }, db_names: ['*'] }), role('users', { db_labels: { env: 'stage' }, db_users: ['alice'], db_names: ['*'] })],
    db: prod,
    user: 'alice',
    dbName: 'orders',
    want: refuse(noRole, /"labels", "users"/),
  },
  {
    name: 'allow split: users without labels in the second role',
    roles: [role('labels', { db_labels: { env: 'prod' }, db_names: ['*'] }), role('users', { db_users: ['alice'], db_names: ['*'] })],
    db: prod,
    user: 'alice',
    dbName: 'orders',
    want: refuse(noRole),
  },
  { name: 'first allowing role is reported', roles: [devProd, admin], db: prod, user: 'dev', dbName: 'test', want: allow('dev-prod') },
  // -- label matching --
  { name: 'glob label value', roles: [role('east', { db_labels: { region: 'east*' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: allow('east') },
  { name: 'regex label value', roles: [role('re', { db_labels: { region: '^(east|west)us[0-9]*$' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: allow('re') },
  { name: 'regex label value, no match', roles: [role('re', { db_labels: { region: '^west.*$' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'missing label on the database', roles: [role('needs-team', { db_labels: { team: '*' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'every label key must match', roles: [role('two', { db_labels: { env: 'prod', region: 'westus' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'DESIGN example: engine label, teleport user', roles: [azureAccess], db: azurePg, user: 'teleport', dbName: 'orders', want: allow('azure-database-access') },
  { name: 'DESIGN example: other user refused', roles: [azureAccess], db: azurePg, user: 'alice', dbName: 'orders', want: refuse(noRole, /"alice"/, /"orders"/) },
  { name: 'DESIGN example: MySQL engine does not match', roles: [azureAccess], db: azureMy, user: 'teleport', dbName: '', want: refuse(noRole) },
  // -- invalid patterns --
  {
    name: 'invalid regex in allow never matches; another role still allows',
    roles: [role('broken', { db_labels: { env: '^(prod$' }, db_users: ['*'], db_names: ['*'] }), role('ok', { db_labels: { env: 'prod' }, db_users: ['*'], db_names: ['*'] })],
    db: prod,
    user: 'u',
    dbName: 'n',
    want: allow('ok'),
  },
  { name: 'invalid regex in allow alone', roles: [role('broken', { db_labels: { env: '^(prod$' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'invalid regex in deny refuses (fail closed)', roles: [admin, role('broken-deny', {}, { db_labels: { env: '^(prod$' } })], db: prod, user: 'u', dbName: 'n', want: refuse(/role "broken-deny" denies/, /does not compile/) },
  { name: 'invalid regex in deny on a key the database lacks does not refuse', roles: [admin, role('broken-deny', {}, { db_labels: { owner: '^(x$' } })], db: prod, user: 'u', dbName: 'n', want: allow('admin') },
  // -- MySQL: db_names are not enforced --
  { name: 'mysql: allow without matching db_names', roles: [role('my', { db_labels: { '*': '*' }, db_users: ['app'], db_names: ['orders'] })], db: azureMy, user: 'app', dbName: 'other', want: allow('my') },
  { name: 'mysql: allow without any db_names', roles: [role('my', { db_labels: { '*': '*' }, db_users: ['app'] })], db: azureMy, user: 'app', dbName: '', want: allow('my') },
  { name: 'mysql: deny db_names ignored', roles: [admin, role('no-mysql', {}, { db_names: ['mysql'] })], db: azureMy, user: 'app', dbName: 'mysql', want: allow('admin') },
  { name: 'mysql: deny db_users still applies', roles: [admin, role('no-root', {}, { db_users: ['root'] })], db: azureMy, user: 'root', dbName: '', want: refuse(/role "no-root" denies/) },
  { name: 'postgres without protocol: db_names enforced', roles: [role('pg', { db_labels: { '*': '*' }, db_users: ['app'], db_names: ['orders'] })], db: { ...azureMy, protocol: undefined }, user: 'app', dbName: 'other', want: refuse(noRole) },
  // -- docs: "Deny rules will match greedily" — every form a deny can take --
  { name: "deny '*': '*' labels refuse every database, an admin role notwithstanding", roles: [admin, role('freeze', {}, { db_labels: { '*': '*' } })], db: bare, user: 'u', dbName: 'n', want: refuse(/role "freeze" denies/, /deny\.db_labels/) },
  { name: 'deny labels by glob', roles: [admin, role('no-prod', {}, { db_labels: { env: 'pro*' } })], db: prod, user: 'u', dbName: 'n', want: refuse(/role "no-prod" denies/) },
  { name: 'deny labels by glob leave a non-matching database', roles: [admin, role('no-prod', {}, { db_labels: { env: 'pro*' } })], db: stage, user: 'u', dbName: 'n', want: allow('admin') },
  { name: 'deny labels by ^regex$', roles: [admin, role('no-east', {}, { db_labels: { region: '^east.*[0-9]$' } })], db: prod, user: 'u', dbName: 'n', want: refuse(/role "no-east" denies/) },
  { name: 'deny labels need every key: one missing key means no deny', roles: [admin, role('narrow', {}, { db_labels: { env: 'prod', team: '*' } })], db: prod, user: 'u', dbName: 'n', want: allow('admin') },
  { name: 'deny of * names refuses every name on PostgreSQL', roles: [admin, role('no-names', {}, { db_names: ['*'] })], db: stage, user: 'u', dbName: 'anything', want: refuse(/role "no-names" denies/, /deny\.db_names list "\*" \(any\)/) },
  { name: 'deny of a name in a role whose allow matches nothing still applies', roles: [admin, role('other', { db_labels: { env: 'nowhere' }, db_users: ['x'], db_names: ['x'] }, { db_names: ['secrets'] })], db: stage, user: 'u', dbName: 'secrets', want: refuse(/role "other" denies/) },
  // -- label selectors: the corners of '*' --
  { name: "a key '*' with another value only matches a label literally named '*'", roles: [role('odd', { db_labels: { '*': 'prod' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: "value '*' needs the key to exist", roles: [role('any-env', { db_labels: { env: '*' }, db_users: ['*'], db_names: ['*'] })], db: dev, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: "value '*' accepts any value of an existing key", roles: [role('any-env', { db_labels: { env: ['*'] }, db_users: ['*'], db_names: ['*'] })], db: stage, user: 'u', dbName: 'n', want: allow('any-env') },
  { name: 'empty db_labels in allow matches nothing', roles: [role('empty-labels', { db_labels: {}, db_users: ['*'], db_names: ['*'] })], db: bare, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'label values are case-sensitive', roles: [role('caps', { db_labels: { env: 'PROD' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  { name: 'a glob matches the whole value, not a part', roles: [role('part', { db_labels: { region: 'east' }, db_users: ['*'], db_names: ['*'] })], db: prod, user: 'u', dbName: 'n', want: refuse(noRole) },
  // -- db_users / db_names: exact or '*' --
  { name: 'db_users are exact and case-sensitive', roles: [azureAccess], db: azurePg, user: 'Teleport', dbName: 'n', want: refuse(noRole, /"Teleport"/) },
  { name: 'db_users entries are not globs', roles: [role('globby', { db_labels: { '*': '*' }, db_users: ['app-*'], db_names: ['*'] })], db: stage, user: 'app-1', dbName: 'n', want: refuse(noRole) },
  { name: 'db_users entry written like a glob matches itself', roles: [role('globby', { db_labels: { '*': '*' }, db_users: ['app-*'], db_names: ['*'] })], db: stage, user: 'app-*', dbName: 'n', want: allow('globby') },
  // -- the guide's role on discovered databases (labels as discovery sets them) --
  {
    name: "guide role: MySQL flexible server, user teleport, names not enforced",
    roles: [role('azure-database-access', { db_labels: { engine: ['Microsoft.DBforMySQL/servers', 'Microsoft.DBforMySQL/flexibleServers', 'Microsoft.DBforPostgreSQL/servers', 'Microsoft.DBforPostgreSQL/flexibleServers'] }, db_names: ['*'], db_users: ['teleport'] })],
    db: azureMy,
    user: 'teleport',
    dbName: 'shop',
    want: allow('azure-database-access'),
  },
  {
    name: 'discovery labels: region and resource group selectors together',
    roles: [role('rg', { db_labels: { region: 'eastus', 'resource-group': '^rg-prod-[0-9]+$' }, db_users: ['*'], db_names: ['*'] })],
    db: azurePg,
    user: 'u',
    dbName: 'n',
    want: allow('rg'),
  },
  // -- built-in local role --
  { name: 'built-in local role allows everything', roles: [BUILTIN_LOCAL_ROLE], db: bare, user: 'anyone', dbName: 'anything', want: allow(BUILTIN_LOCAL_ROLE.metadata.name) },
];

describe('checkAccess (Teleport db_* semantics)', () => {
  it.each(cases)('$name', ({ roles, db, user, dbName, want }) => {
    const decision = checkAccess(roles, db, { dbUser: user, dbName });
    if ('role' in want) {
      expect(decision).toEqual({ allowed: true, role: want.role });
    } else {
      expect(decision.allowed).toBe(false);
      const reason = decision.allowed ? '' : decision.reason;
      for (const pattern of want.reason) expect(reason).toMatch(pattern);
    }
  });

  it('names the user, the database name and the database in every refusal', () => {
    const denied = checkAccess([docsProdExceptPostgres], prod, { dbUser: 'postgres', dbName: 'orders' });
    expect(denied).toEqual({
      allowed: false,
      reason: 'role "prod-developer" denies database user "postgres" with database name "orders" on database "prod": its deny.db_users list "postgres"',
    });
    const none = checkAccess([devProd], prod, { dbUser: 'alice', dbName: 'test' });
    expect(none).toEqual({
      allowed: false,
      reason: 'no role allows database user "alice" with database name "test" on database "prod" (none of "dev-prod" allows it)',
    });
  });
});
