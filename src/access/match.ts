/**
 * Matching for the db_* fields of a role, as Teleport does it.
 *
 * - Label values (`db_labels`): a glob (`*` is any run of characters, the whole value must match)
 *   or, when written `^…$`, a regular expression. Source: gravitational/teleport
 *   `lib/utils/replace.go` (`SliceMatchesRegex`, `matchString`, `GlobToRegexp`).
 * - A label selector (`db_labels` as a whole): empty matches nothing; `'*': '*'` matches every
 *   database, one without labels too; otherwise every key must be a label of the database (keys are
 *   exact) and, unless its values include `*`, its value must match one of them. Source:
 *   `lib/services/role.go` `MatchLabelGetter`.
 * - `db_users` / `db_names` entries: exact, or `*` for any. Source: `lib/services/role.go`
 *   `MatchDatabaseUser`, `MatchDatabaseName`.
 *
 * Patterns are compiled once and cached. A pattern JavaScript cannot compile never matches here;
 * {@link patternError} says why, and `validateRoles` reports it.
 */
import { WILDCARD, type LabelMatcher } from '../config/schema.js';

/**
 * The outcome of a label selector against a database's labels. `invalid` means the outcome
 * depends on a pattern that does not compile (no valid value of that key matched).
 */
export type LabelMatch = 'match' | 'no-match' | 'invalid';

/** Patterns kept compiled; past this the cache starts over (Teleport keeps an LRU of 1000). */
const MAX_CACHED_PATTERNS = 1000;

/** `null`: the pattern does not compile. */
const compiled = new Map<string, RegExp | null>();

/** True when a label value is a regular expression (`^…$`) rather than a glob. */
export function isRegexPattern(pattern: string): boolean {
  return pattern.startsWith('^') && pattern.endsWith('$');
}

/** The regular expression for a label value, or `undefined` when it does not compile. */
export function compilePattern(pattern: string): RegExp | undefined {
  let expr = compiled.get(pattern);
  if (expr === undefined) {
    expr = tryCompile(pattern);
    if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear();
    compiled.set(pattern, expr);
  }
  return expr ?? undefined;
}

/** Why a label value does not compile, or `undefined` when it does. */
export function patternError(pattern: string): string | undefined {
  if (!isRegexPattern(pattern)) return undefined;
  try {
    new RegExp(pattern);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Whether one label value (glob or `^regex$`) matches a label's value. */
export function matchLabelValue(pattern: string, value: string): boolean {
  if (pattern === WILDCARD) return true;
  return compilePattern(pattern)?.test(value) ?? false;
}

/** A selector entry's values as a list (`env: prod` and `env: [prod]` are the same). */
export function labelValues(value: string | string[]): string[] {
  return typeof value === 'string' ? [value] : value;
}

/** True for the selector `'*': '*'` (one value, `*`), which matches every database. */
export function isMatchAll(selector: LabelMatcher | undefined): boolean {
  const values = selector?.[WILDCARD];
  if (values === undefined) return false;
  const list = labelValues(values);
  return list.length === 1 && list[0] === WILDCARD;
}

/**
 * A label selector against a database's labels (Teleport's `MatchLabelGetter`). A missing key
 * or a value no pattern matches is a definite `no-match`, whatever else the selector says.
 */
export function evaluateLabels(selector: LabelMatcher | undefined, labels: Readonly<Record<string, string>>): LabelMatch {
  if (selector === undefined || Object.keys(selector).length === 0) return 'no-match';
  if (isMatchAll(selector)) return 'match';
  let invalid = false;
  for (const [key, value] of Object.entries(selector)) {
    if (!Object.hasOwn(labels, key)) return 'no-match';
    const patterns = labelValues(value);
    if (patterns.includes(WILDCARD)) continue;
    const actual = labels[key] ?? '';
    if (patterns.some((pattern) => matchLabelValue(pattern, actual))) continue;
    if (!patterns.some((pattern) => patternError(pattern) !== undefined)) return 'no-match';
    invalid = true;
  }
  return invalid ? 'invalid' : 'match';
}

/** Whether a label selector matches; an invalid pattern never matches. */
export function matchLabels(selector: LabelMatcher | undefined, labels: Readonly<Record<string, string>>): boolean {
  return evaluateLabels(selector, labels) === 'match';
}

/** `db_users` / `db_names`: whether an entry is the value itself or `*`. Empty or absent: no. */
export function matchValue(entries: readonly string[] | undefined, value: string): boolean {
  return entries?.some((entry) => entry === value || entry === WILDCARD) ?? false;
}

function tryCompile(pattern: string): RegExp | null {
  // Teleport does not wrap a `^…$` pattern: `^a|b$` means what it says in RE2, and the same in JS.
  const source = isRegexPattern(pattern) ? pattern : `^${pattern.split(WILDCARD).map(escapeRegExp).join('.*')}$`;
  try {
    return new RegExp(source);
  } catch {
    return null;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
