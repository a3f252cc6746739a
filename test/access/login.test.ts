import { describe, expect, it } from 'vitest';
import {
  BUILTIN_LOCAL_ROLE,
  allowedValues,
  checkAccess,
  chooseLogin,
  validateRoles,
  type AllowedLogins,
  type DatabaseRef,
  type Role,
} from '../../src/access/index.js';
import type { RoleConditions } from '../../src/config/schema.js';
import { UserError } from '../../src/errors.js';

function role(name: string, allow: RoleConditions, deny: RoleConditions = {}): Role {
  return { metadata: { name }, spec: { allow, deny } };
}

const prod: DatabaseRef = { name: 'orders', labels: { env: 'prod', region: 'eastus' } };
const shop: DatabaseRef = { name: 'shop', protocol: 'mysql', labels: { env: 'prod' } };

describe('allowedValues', () => {
  it('unions the roles whose allow labels match, sorted and without duplicates', () => {
    const roles = [
      role('a', { db_labels: { env: 'prod' }, db_users: ['zed', 'alice'], db_names: ['orders'] }),
      role('b', { db_labels: { region: 'east*' }, db_users: ['bob', 'alice'], db_names: ['metrics', 'audit'] }),
      role('elsewhere', { db_labels: { env: 'dev' }, db_users: ['mallory'], db_names: ['dev'] }),
    ];
    expect(allowedValues(roles, prod)).toEqual({
      dbUsers: ['alice', 'bob', 'zed'],
      dbNames: ['audit', 'metrics', 'orders'],
      deniedUsers: [],
      deniedNames: [],
    });
  });

  it('keeps "*" and removes exact values that deny rules refuse', () => {
    const roles = [
      role('prod', { db_labels: { env: 'prod' }, db_users: ['*', 'postgres', 'alice'], db_names: ['*', 'postgres'] }, { db_users: ['postgres'], db_names: ['postgres'] }),
    ];
    expect(allowedValues(roles, prod)).toEqual({ dbUsers: ['*', 'alice'], dbNames: ['*'], deniedUsers: ['postgres'], deniedNames: ['postgres'] });
  });

  it('allows nothing on a database whose labels a deny rule matches', () => {
    const roles = [role('all', { db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] }), role('no-prod', {}, { db_labels: { env: 'prod' } })];
    expect(allowedValues(roles, prod)).toEqual({ dbUsers: [], dbNames: [], deniedUsers: [], deniedNames: [] });
    expect(allowedValues(roles, { name: 'dev', labels: { env: 'dev' } }).dbUsers).toEqual(['*']);
  });

  it('allows nothing when a deny rule refuses every user', () => {
    const roles = [role('all', { db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] }), role('lock', {}, { db_users: ['*'] })];
    expect(allowedValues(roles, prod).dbUsers).toEqual([]);
  });

  it('skips a role that cannot grant a login on its own', () => {
    const roles = [
      role('labels-and-names', { db_labels: { env: 'prod' }, db_names: ['orders'] }),
      role('users-only', { db_labels: { env: 'prod' }, db_users: ['alice'] }),
    ];
    expect(allowedValues(roles, prod)).toEqual({ dbUsers: [], dbNames: [], deniedUsers: [], deniedNames: [] });
  });

  it('reports "*" names for MySQL, where db_names are not enforced', () => {
    const roles = [role('my', { db_labels: { env: 'prod' }, db_users: ['app'], db_names: ['orders'] }, { db_names: ['mysql'] })];
    expect(allowedValues(roles, shop)).toEqual({ dbUsers: ['app'], dbNames: ['*'], deniedUsers: [], deniedNames: [] });
  });

  it('gives "*" for both under the built-in local role, even without labels', () => {
    expect(allowedValues([BUILTIN_LOCAL_ROLE], { name: 'x', labels: {} })).toEqual({ dbUsers: ['*'], dbNames: ['*'], deniedUsers: [], deniedNames: [] });
  });

  it('agrees with checkAccess on the values it lists', () => {
    const roles = [
      role('a', { db_labels: { env: 'prod' }, db_users: ['alice', 'bob'], db_names: ['orders'] }, { db_users: ['bob'] }),
    ];
    const allowed = allowedValues(roles, prod);
    expect(allowed.dbUsers).toEqual(['alice']);
    expect(checkAccess(roles, prod, { dbUser: 'alice', dbName: 'orders' }).allowed).toBe(true);
    expect(checkAccess(roles, prod, { dbUser: 'bob', dbName: 'orders' }).allowed).toBe(false);
  });
});

describe('BUILTIN_LOCAL_ROLE', () => {
  it('is the allow-all v7 role and cannot be changed', () => {
    expect(BUILTIN_LOCAL_ROLE.version).toBe('v7');
    expect(BUILTIN_LOCAL_ROLE.kind).toBe('role');
    expect(BUILTIN_LOCAL_ROLE.spec.allow).toEqual({ db_labels: { '*': '*' }, db_users: ['*'], db_names: ['*'] });
    expect(BUILTIN_LOCAL_ROLE.spec.deny).toEqual({});
    expect(() => BUILTIN_LOCAL_ROLE.spec.allow.db_users?.push('x')).toThrow(TypeError);
  });
});

/** Runs `fn`, expecting a usage UserError; returns its message. */
function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    const userError = error as UserError;
    expect(userError.exitCode).toBe(2);
    expect(userError.hint).toMatch(/azdb db ls/);
    return userError.message;
  }
  throw new Error('expected a UserError');
}

describe('chooseLogin', () => {
  const one: AllowedLogins = { dbUsers: ['alice'], dbNames: ['orders'] };
  const any: AllowedLogins = { dbUsers: ['*'], dbNames: ['*'] };

  it('uses the only allowed values when the flags are left out', () => {
    expect(chooseLogin(one, {}, 'postgres')).toEqual({ dbUser: 'alice', dbName: 'orders' });
    expect(chooseLogin(one, {}, 'mysql')).toEqual({ dbUser: 'alice', dbName: 'orders' });
  });

  it('takes flag values the roles allow', () => {
    expect(chooseLogin(any, { dbUser: 'bob', dbName: 'metrics' }, 'postgres')).toEqual({ dbUser: 'bob', dbName: 'metrics' });
    expect(chooseLogin({ dbUsers: ['alice', 'bob'], dbNames: ['a', 'b'] }, { dbUser: 'bob', dbName: 'a' }, 'postgres')).toEqual({ dbUser: 'bob', dbName: 'a' });
  });

  it('defaults --db-name to postgres (PostgreSQL) or none (MySQL) when "*" is allowed', () => {
    expect(chooseLogin({ dbUsers: ['alice'], dbNames: ['*'] }, {}, 'postgres')).toEqual({ dbUser: 'alice', dbName: 'postgres' });
    expect(chooseLogin({ dbUsers: ['alice'], dbNames: ['*'] }, {}, 'mysql')).toEqual({ dbUser: 'alice', dbName: '' });
  });

  it('has no default for --db-user when "*" is allowed', () => {
    const message = usageError(() => chooseLogin(any, {}, 'postgres'));
    expect(message).toBe('--db-user is required: your roles allow any database user ("*" (any))');
  });

  it('lists the values when several are allowed', () => {
    const message = usageError(() => chooseLogin({ dbUsers: ['alice', 'bob'], dbNames: ['orders'] }, {}, 'postgres'));
    expect(message).toBe('--db-user is required: your roles allow several database users: "alice", "bob"');
    const names = usageError(() => chooseLogin({ dbUsers: ['alice'], dbNames: ['a', 'b'] }, {}, 'mysql'));
    expect(names).toBe('--db-name is required: your roles allow several database names: "a", "b"');
  });

  it('refuses a flag value the roles do not allow, naming the allowed ones', () => {
    const message = usageError(() => chooseLogin({ dbUsers: ['alice', 'bob'], dbNames: ['orders'] }, { dbUser: 'mallory' }, 'postgres'));
    expect(message).toBe('--db-user "mallory" is not allowed by your roles; allowed database users: "alice", "bob"');
    const name = usageError(() => chooseLogin(one, { dbName: 'metrics' }, 'postgres'));
    expect(name).toBe('--db-name "metrics" is not allowed by your roles; allowed database names: "orders"');
  });

  it('refuses a value a deny rule names even where "*" is allowed', () => {
    const allowed: AllowedLogins = { dbUsers: ['*'], dbNames: ['*'], deniedUsers: ['postgres'], deniedNames: ['postgres'] };
    const user = usageError(() => chooseLogin(allowed, { dbUser: 'postgres', dbName: 'x' }, 'postgres'));
    expect(user).toBe('--db-user "postgres" is not allowed by your roles; allowed database users: "*" (any) except "postgres"');
    // The postgres default is itself denied, so --db-name is needed.
    const name = usageError(() => chooseLogin(allowed, { dbUser: 'alice' }, 'postgres'));
    expect(name).toBe('--db-name is required: your roles allow any database name ("*" (any) except "postgres")');
    expect(chooseLogin(allowed, { dbUser: 'alice', dbName: 'orders' }, 'postgres')).toEqual({ dbUser: 'alice', dbName: 'orders' });
  });

  it('says so when the roles allow nothing on the database', () => {
    const message = usageError(() => chooseLogin({ dbUsers: [], dbNames: [] }, { dbUser: 'alice', dbName: 'orders' }, 'postgres'));
    expect(message).toBe('your roles allow no database users on this database');
  });

  it('works on what allowedValues returns', () => {
    const roles = [role('p', { db_labels: { env: 'prod' }, db_users: ['*'], db_names: ['*'] }, { db_users: ['postgres'], db_names: ['postgres'] })];
    const message = usageError(() => chooseLogin(allowedValues(roles, prod), { dbUser: 'postgres', dbName: 'orders' }, 'postgres'));
    expect(message).toMatch(/"postgres" is not allowed/);
  });
});

describe('validateRoles', () => {
  it('finds nothing wrong in sound roles', () => {
    expect(validateRoles([BUILTIN_LOCAL_ROLE, role('ok', { db_labels: { region: ['^east.*$', 'west*'] }, db_users: ['*', 'app'], db_names: ['orders'] })])).toEqual([]);
  });

  it('reports a regex that does not compile, where it is', () => {
    const issues = validateRoles([
      role('fine', { db_labels: { env: 'prod' } }),
      role('broken', { db_labels: { env: ['prod', '^(prod$'] } }, { db_labels: { team: '^[z-a]$' } }),
    ]);
    expect(issues).toHaveLength(2);
    expect(issues[0]).toMatchObject({ severity: 'error', role: 'broken', index: 1, path: 'spec.allow.db_labels.env[1]' });
    expect(issues[0]?.message).toMatch(/invalid regular expression "\^\(prod\$"/);
    expect(issues[1]).toMatchObject({ severity: 'error', role: 'broken', index: 1, path: 'spec.deny.db_labels.team' });
  });

  it("warns about '*' keys with other values and patterns in db_users / db_names", () => {
    const issues = validateRoles([role('odd', { db_labels: { '*': 'prod' }, db_users: ['dev*'], db_names: ['*'] }, { db_names: ['tmp_*'] })]);
    expect(issues.map((issue) => [issue.severity, issue.path])).toEqual([
      ['warning', 'spec.allow.db_labels.*'],
      ['warning', 'spec.allow.db_users[0]'],
      ['warning', 'spec.deny.db_names[0]'],
    ]);
  });
});
