/**
 * Roles that bind people (`subjects`, `{{external.*}}` traits) for a shared broker's Entra sign-ins,
 * and that local logins (no person) are untouched by them.
 */
import { describe, expect, it } from 'vitest';
import { allowedValues, checkAccess, type DatabaseRef, type Person, type Role } from '../../src/access/index.js';
import type { RoleConditions } from '../../src/config/schema.js';

function role(name: string, allow: RoleConditions, deny: RoleConditions = {}): Role {
  return { metadata: { name }, spec: { allow, deny } };
}

const orders: DatabaseRef = { name: 'orders', labels: { env: 'prod' } };
const ALICE: Person = { oid: 'a11ce000-0000-4000-8000-000000000001', upn: 'Alice@Contoso.com', groups: ['g-dba', 'g-all'] };
const BOB: Person = { oid: 'b0b00000-0000-4000-8000-000000000002', upn: 'bob@contoso.com', groups: ['g-all'] };
const APP: Person = { oid: 'app00000-0000-4000-8000-000000000003', appid: 'c11e0000-0000-4000-8000-000000000004', groups: [] };
const ANY = { db_labels: { '*': '*' }, db_names: ['*'] };

describe('subjects', () => {
  it('allow.subjects.users matches by UPN (any case) or object id, and nobody else', () => {
    const roles = [role('alice-only', { ...ANY, db_users: ['*'], subjects: { users: ['alice@contoso.com'] } })];
    expect(checkAccess(roles, orders, { dbUser: 'x', dbName: 'orders', person: ALICE })).toEqual({ allowed: true, role: 'alice-only' });
    const byOid = [role('by-oid', { ...ANY, db_users: ['*'], subjects: { users: [ALICE.oid.toUpperCase()] } })];
    expect(checkAccess(byOid, orders, { dbUser: 'x', dbName: 'orders', person: ALICE }).allowed).toBe(true);
    const bob = checkAccess(roles, orders, { dbUser: 'x', dbName: 'orders', person: BOB });
    expect(bob).toEqual({ allowed: false, reason: expect.stringContaining('for bob@contoso.com (object id b0b00000') as string });
    expect(checkAccess(roles, orders, { dbUser: 'x', dbName: 'orders' }).allowed).toBe(false);
  });

  it('allow.subjects.groups matches a group in the token, and says which allowed it', () => {
    const roles = [role('dba', { ...ANY, db_users: ['dba'], subjects: { groups: ['G-DBA', 'g-other'] } })];
    expect(checkAccess(roles, orders, { dbUser: 'dba', dbName: 'orders', person: ALICE })).toEqual({ allowed: true, role: 'dba', groups: ['G-DBA'] });
    expect(checkAccess(roles, orders, { dbUser: 'dba', dbName: 'orders', person: BOB }).allowed).toBe(false);
  });

  it('a role without subjects applies to everyone, people and local logins', () => {
    const roles = [role('all', { ...ANY, db_users: ['reader'] })];
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders', person: BOB }).allowed).toBe(true);
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders' }).allowed).toBe(true);
  });

  it('deny.subjects alone refuses those people everything, first; others go on', () => {
    const roles = [role('all', { ...ANY, db_users: ['*'] }, { subjects: { users: [BOB.upn!] } })];
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders', person: BOB })).toEqual({
      allowed: false,
      reason: expect.stringContaining('its deny.subjects name bob@contoso.com') as string,
    });
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders', person: ALICE }).allowed).toBe(true);
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders' }).allowed).toBe(true);
    expect(allowedValues(roles, orders).dbUsers).toEqual(['*']);
  });

  it('deny.subjects with other conditions narrows them to those people', () => {
    const roles = [role('all', { ...ANY, db_users: ['*'] }, { subjects: { groups: ['g-all'] }, db_users: ['admin'] })];
    expect(checkAccess(roles, orders, { dbUser: 'admin', dbName: 'orders', person: BOB }).allowed).toBe(false);
    expect(checkAccess(roles, orders, { dbUser: 'reader', dbName: 'orders', person: BOB }).allowed).toBe(true);
    expect(checkAccess(roles, orders, { dbUser: 'admin', dbName: 'orders' }).allowed).toBe(true);
  });
});

describe('{{external.*}} traits in db_users', () => {
  const roles = [role('self', { ...ANY, db_users: ['{{external.upn}}', 'app-{{external.appid}}'] })];

  it('lets a person log in as themselves only', () => {
    expect(checkAccess(roles, orders, { dbUser: 'Alice@Contoso.com', dbName: 'orders', person: ALICE }).allowed).toBe(true);
    expect(checkAccess(roles, orders, { dbUser: 'bob@contoso.com', dbName: 'orders', person: ALICE }).allowed).toBe(false);
    expect(checkAccess(roles, orders, { dbUser: `app-${APP.appid}`, dbName: 'orders', person: APP }).allowed).toBe(true);
  });

  it('matches nothing without a person, or when the person lacks the trait', () => {
    expect(checkAccess(roles, orders, { dbUser: '{{external.upn}}', dbName: 'orders' }).allowed).toBe(false);
    expect(checkAccess(roles, orders, { dbUser: '', dbName: 'orders', person: APP }).allowed).toBe(false);
    expect(allowedValues(roles, orders).dbUsers).toEqual([]);
  });

  it('deny with a trait refuses the person as themselves', () => {
    const denySelf = [role('r', { ...ANY, db_users: ['*'] }, { db_users: ['{{external.oid}}'] })];
    expect(checkAccess(denySelf, orders, { dbUser: ALICE.oid, dbName: 'orders', person: ALICE }).allowed).toBe(false);
    expect(checkAccess(denySelf, orders, { dbUser: ALICE.oid, dbName: 'orders', person: BOB }).allowed).toBe(true);
  });
});
