/**
 * Roles that name people: `subjects: {users, groups}` in a rule, and `db_users` entries with the
 * person's traits (`{{external.upn}}`). A person is who a client's Entra token says it is (a
 * shared broker with `client_auth: entra`); local logins have none, so rules about people never
 * match them.
 *
 * Users are matched by object id or UPN, both case-insensitively (Entra treats them so); groups
 * by object id, against the token's `groups` claim.
 */
import { TRAIT_PATTERN, personTrait, type RoleConditions } from '../config/schema.js';

/** Who signed in, from their verified token (never the token). */
export interface Person {
  oid: string;
  upn?: string;
  appid?: string;
  groups: readonly string[];
}

export type Subjects = NonNullable<RoleConditions['subjects']>;

/** Whether the subjects name the person, and through which of their groups (for the audit). */
export function matchSubjects(subjects: Subjects, person: Person | undefined): { matched: boolean; groups: string[] } {
  if (!person) return { matched: false, groups: [] };
  const same = (a: string, b: string | undefined) => b !== undefined && a.toLowerCase() === b.toLowerCase();
  if ((subjects.users ?? []).some((user) => same(user, person.oid) || same(user, person.upn))) return { matched: true, groups: [] };
  const groups = (subjects.groups ?? []).filter((group) => person.groups.some((mine) => same(group, mine)));
  return { matched: groups.length > 0, groups };
}

/** A rule has db_* conditions besides its subjects. */
export function hasConditions(rule: RoleConditions): boolean {
  return rule.db_labels !== undefined || rule.db_users !== undefined || rule.db_names !== undefined;
}

/**
 * `db_users` with the person's traits filled in; an entry whose trait the person lacks (or any
 * trait, without a person) is dropped, so it matches nothing.
 */
export function expandUsers(entries: readonly string[] | undefined, person: Person | undefined): string[] | undefined {
  if (entries === undefined) return undefined;
  return entries.flatMap((entry) => {
    if (!entry.includes('{{')) return [entry];
    let missing = false;
    const expanded = entry.replace(TRAIT_PATTERN, (_, name: string) => {
      const trait = personTrait(name);
      const value = person && trait ? person[trait] : undefined;
      if (value === undefined) missing = true;
      return value ?? '';
    });
    return missing ? [] : [expanded];
  });
}

/** `alice@contoso.com (object id …)` for messages; never a token. */
export function describePerson(person: Person | undefined): string {
  if (!person) return 'nobody signed in';
  const name = person.upn ?? person.appid;
  return name ? `${name} (object id ${person.oid})` : `object id ${person.oid}`;
}
