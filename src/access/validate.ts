/**
 * Problems in the db_* fields of roles that evaluation would otherwise swallow: a `^…$` label
 * value that does not compile (it never matches in allow and refuses the database in deny), and
 * values that look like patterns where only exact values or `*` count.
 */
import { WILDCARD, type LabelMatcher, type RoleConditions } from '../config/schema.js';
import type { Role } from './evaluate.js';
import { labelValues, patternError } from './match.js';

export interface RoleIssue {
  severity: 'error' | 'warning';
  /** The role's `metadata.name`. */
  role: string;
  /** Index of the role in the list given. */
  index: number;
  /** Inside the role, like `spec.allow.db_labels.env[1]`. */
  path: string;
  message: string;
}

const CONDITIONS = ['allow', 'deny'] as const;
const EXACT_FIELDS = ['db_users', 'db_names'] as const;

/** Every problem found, in role order; an empty list when the roles are sound. */
export function validateRoles(roles: readonly Role[]): RoleIssue[] {
  const issues: RoleIssue[] = [];
  roles.forEach((role, index) => {
    const report = (severity: RoleIssue['severity'], path: string, message: string): void => {
      issues.push({ severity, role: role.metadata.name, index, path, message });
    };
    for (const condition of CONDITIONS) {
      const conditions: RoleConditions = role.spec[condition];
      checkLabels(conditions.db_labels, `spec.${condition}.db_labels`, report);
      for (const field of EXACT_FIELDS) {
        conditions[field]?.forEach((value, i) => {
          if (value !== WILDCARD && value.includes(WILDCARD)) {
            report('warning', `spec.${condition}.${field}[${i}]`, `"${value}" is not a pattern: ${field} entries are exact values or "${WILDCARD}", so it matches only that literal name`);
          }
        });
      }
    }
  });
  return issues;
}

function checkLabels(
  selector: LabelMatcher | undefined,
  path: string,
  report: (severity: RoleIssue['severity'], path: string, message: string) => void,
): void {
  if (selector === undefined) return;
  for (const [key, value] of Object.entries(selector)) {
    const list = labelValues(value);
    const at = (i: number): string => (typeof value === 'string' ? `${path}.${key}` : `${path}.${key}[${i}]`);
    list.forEach((pattern, i) => {
      const error = patternError(pattern);
      if (error !== undefined) report('error', at(i), `invalid regular expression "${pattern}": ${error}; it never matches`);
    });
    if (key === WILDCARD && !(list.length === 1 && list[0] === WILDCARD)) {
      report('warning', `${path}.${key}`, `the key "${WILDCARD}" only means "every database" as '${WILDCARD}': '${WILDCARD}'; here it matches only a label literally named "${WILDCARD}"`);
    }
  }
}
