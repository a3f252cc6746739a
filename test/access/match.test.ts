import { describe, expect, it } from 'vitest';
import {
  compilePattern,
  evaluateLabels,
  isRegexPattern,
  matchLabels,
  matchLabelValue,
  matchValue,
  patternError,
} from '../../src/access/index.js';

describe('matchLabelValue', () => {
  it.each([
    // [pattern, value, matches]
    ['prod', 'prod', true],
    ['prod', 'production', false],
    ['prod', 'xprod', false],
    ['*', '', true],
    ['*', 'anything at all', true],
    ['eastus*', 'eastus', true],
    ['eastus*', 'eastus2', true],
    ['eastus*', 'westeastus', false],
    ['*-prod', 'orders-prod', true],
    ['*-prod', 'orders-prod-2', false],
    ['a*b*c', 'a--b--c', true],
    ['a*b*c', 'a--c', false],
    // A glob is literal apart from `*`: regex metacharacters mean themselves.
    ['a.b', 'a.b', true],
    ['a.b', 'axb', false],
    ['prod|dev', 'prod', false],
    ['prod|dev', 'prod|dev', true],
    ['(x)', '(x)', true],
    ['Microsoft.DBforPostgreSQL/flexibleServers', 'Microsoft.DBforPostgreSQL/flexibleServers', true],
    ['Microsoft.DBforPostgreSQL/*', 'Microsoft.DBforPostgreSQL/servers', true],
    ['Microsoft.DBforPostgreSQL/*', 'Microsoft.DBforMySQL/servers', false],
    // Only `^…$` is a regular expression.
    ['^us-(east|west)[0-9]*$', 'us-east2', true],
    ['^us-(east|west)[0-9]*$', 'us-north', false],
    ['^us-(east|west)[0-9]*$', 'xus-east', false],
    ['^prod', '^prod', true],
    ['^prod', 'production', false],
    ['prod$', 'prod$', true],
    ['^$', '', true],
    ['^$', 'x', false],
    // As in Teleport (RE2), the pattern is used as written: `|` splits the anchors.
    ['^a|b$', 'a-anything', true],
    // Invalid regular expressions never match.
    ['^(unclosed$', '(unclosed', false],
    ['^[z-a]$', 'z', false],
  ])('%j against %j → %s', (pattern, value, matches) => {
    expect(matchLabelValue(pattern, value)).toBe(matches);
  });

  it('compiles each pattern once', () => {
    const first = compilePattern('^cache-me-[0-9]+$');
    expect(first).toBeInstanceOf(RegExp);
    expect(compilePattern('^cache-me-[0-9]+$')).toBe(first);
    expect(compilePattern('^(bad$')).toBeUndefined();
  });

  it('tells regex from glob and explains invalid ones', () => {
    expect(isRegexPattern('^a$')).toBe(true);
    expect(isRegexPattern('^a')).toBe(false);
    expect(isRegexPattern('a$')).toBe(false);
    expect(patternError('^(bad$')).toMatch(/./);
    expect(patternError('^ok$')).toBeUndefined();
    expect(patternError('(not a regex, a glob')).toBeUndefined();
  });
});

describe('evaluateLabels', () => {
  const prod = { env: 'prod', region: 'eastus', team: 'payments' };

  it.each([
    ['absent selector matches nothing', undefined, prod, 'no-match'],
    ['empty selector matches nothing', {}, prod, 'no-match'],
    ["'*': '*' matches every database", { '*': '*' }, prod, 'match'],
    ["'*': '*' matches a database without labels", { '*': '*' }, {}, 'match'],
    ["'*': ['*'] is the same", { '*': ['*'] }, {}, 'match'],
    ["'*': '*' wins over other keys", { '*': '*', env: 'dev' }, prod, 'match'],
    ["'*' with another value looks for a label named *", { '*': 'prod' }, prod, 'no-match'],
    ["'*': ['*', 'x'] is not the match-all form", { '*': ['*', 'x'] }, prod, 'no-match'],
    ['exact value', { env: 'prod' }, prod, 'match'],
    ['wrong value', { env: 'dev' }, prod, 'no-match'],
    ['keys are exact', { Env: 'prod' }, prod, 'no-match'],
    ['list value: any entry matches', { env: ['dev', 'stage', 'prod'] }, prod, 'match'],
    ['list value: none matches', { env: ['dev', 'stage'] }, prod, 'no-match'],
    ['empty list matches nothing', { env: [] }, prod, 'no-match'],
    ['every key must match', { env: 'prod', region: 'westus' }, prod, 'no-match'],
    ['all keys match', { env: 'prod', region: 'east*' }, prod, 'match'],
    ["key: '*' needs the key", { team: '*' }, prod, 'match'],
    ["key: '*' on a missing key", { owner: '*' }, prod, 'no-match'],
    ['missing labels on the database', { env: 'prod' }, {}, 'no-match'],
    ['regex value', { region: '^(east|west)us[0-9]?$' }, prod, 'match'],
    ['regex value, no match', { region: '^west.*$' }, prod, 'no-match'],
    ['invalid regex alone', { env: '^(prod$' }, prod, 'invalid'],
    ['invalid regex beside a matching value', { env: ['^(prod$', 'prod'] }, prod, 'match'],
    ['invalid regex with a definite no-match elsewhere', { env: '^(prod$', region: 'westus' }, prod, 'no-match'],
    ['invalid regex on a missing key', { owner: '^(x$' }, prod, 'no-match'],
  ] as const)('%s', (_name, selector, labels, want) => {
    const sel = selector === undefined ? undefined : (selector as Record<string, string | string[]>);
    expect(evaluateLabels(sel, labels)).toBe(want);
    expect(matchLabels(sel, labels)).toBe(want === 'match');
  });
});

describe('matchValue (db_users / db_names)', () => {
  it.each([
    [undefined, 'alice', false],
    [[], 'alice', false],
    [['alice'], 'alice', true],
    [['alice'], 'Alice', false],
    [['*'], 'anyone', true],
    [['*'], '', true],
    [['bob', '*'], 'alice', true],
    // Entries are exact: no globbing, no regex.
    [['ali*'], 'alice', false],
    [['^a.*$'], 'alice', false],
  ] as const)('%j has %j → %s', (entries, value, want) => {
    expect(matchValue(entries, value)).toBe(want);
  });
});
