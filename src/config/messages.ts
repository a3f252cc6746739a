/** The wording of config problems: "expected a string, got a list", "did you mean …?". */
import { nearest } from './nearest.js';
import { AliasValue, isMapping, WrittenNumber } from './data.js';

/** "a list", "the string \"x\"", … for "expected X, got Y" messages; `value` is as {@link toData} gives it. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (value instanceof AliasValue) return `an alias (*${value.name}); aliases are not supported in azdb.yaml`;
  if (Array.isArray(value)) return 'a list';
  if (isMapping(value)) return 'a mapping';
  if (typeof value === 'string') return `the string "${clip(value)}"`;
  if (typeof value === 'boolean') return `the boolean ${String(value)}`;
  if (typeof value === 'number') return Number.isInteger(value) ? `the integer ${value}` : `the number ${value}`;
  if (value instanceof WrittenNumber) return Number.isInteger(value.value) ? `the integer ${value.text}` : `the number ${value.text}`;
  return 'an unsupported value';
}

/** A valibot message: `expected ${what}, got …` naming what the file has. */
export function expected(what: string): (issue: { input: unknown }) => string {
  return (issue) => `expected ${what}, got ${describe(issue.input)}`;
}

/** A scalar as written, quoted, for "unsupported version \"1.0\""; anything else described. */
export function written(value: unknown): string {
  if (value instanceof WrittenNumber) return `"${clip(value.text)}"`;
  return ['string', 'number', 'boolean'].includes(typeof value) ? `"${clip(String(value))}"` : describe(value);
}

export function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function oneOf(values: readonly string[]): string {
  if (values.length <= 2) return values.join(' or ');
  return `one of ${values.join(', ')}`;
}

export function didYouMean(text: string, candidates: Iterable<string>): string {
  const guess = nearest(text, candidates);
  return guess === undefined ? '' : `; did you mean "${guess}"?`;
}

export function unknownKey(key: string, allowed: readonly string[]): string {
  const guess = nearest(key, allowed);
  const hint = guess === undefined ? '' : ` Did you mean "${guess}"?`;
  return `unknown key "${clip(key)}".${hint} Allowed keys: ${allowed.join(', ')}`;
}
