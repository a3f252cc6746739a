/**
 * Typed reads over a parsed YAML document that never throw: every problem becomes a
 * {@link ConfigIssue} with the file, line and column of the node at fault, and reading goes on so
 * that one run reports every error.
 */
import { isAlias, isMap, isScalar, isSeq, type LineCounter, type YAMLMap, type YAMLSeq } from 'yaml';
import { nearest } from './nearest.js';
import type { ConfigIssue, LabelMatcher, SourcePosition } from './schema.js';

// Past this many errors the rest is noise (and memory); the count still says how bad it is.
const MAX_ISSUES = 1000;

export class Issues {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];
  dropped = 0;

  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  position(node: unknown): SourcePosition {
    const { line, col } = this.lines.linePos(offsetOf(node));
    return { file: this.file, line, column: col };
  }

  positionAt(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  error(node: unknown, path: string, message: string): void {
    if (this.errors.length >= MAX_ISSUES) {
      this.dropped++;
      return;
    }
    this.errors.push(this.issue(node, path, message));
  }

  warn(node: unknown, path: string, message: string): void {
    this.warnings.push(this.issue(node, path, message));
  }

  private issue(node: unknown, path: string, message: string): ConfigIssue {
    return { ...this.position(node), path, message: path === '' ? message : `${path}: ${message}` };
  }
}

function offsetOf(node: unknown): number {
  if (typeof node === 'number') return node;
  const range = (node as { range?: readonly number[] | null } | null)?.range;
  return range?.[0] ?? 0;
}

/** One `key: value` of a mapping; `value` is null when nothing follows the colon. */
export interface Field {
  name: string;
  key: unknown;
  value: unknown;
  path: string;
}

/** Where to point for a field's value: the value, or the key when nothing follows the colon. */
export function at(field: Field): unknown {
  return isEmpty(field.value) ? field.key : field.value;
}

export function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** "a list", "the string \"x\"", … for "expected X, got Y" messages. */
export function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isAlias(node)) return `an alias (*${node.source}); aliases are not supported in azdb.yaml`;
  if (isScalar(node)) {
    const value = node.value;
    if (value === null || value === undefined) return 'an empty value';
    if (typeof value === 'string') return `the string "${clip(value)}"`;
    if (typeof value === 'boolean') return `the boolean ${String(value)}`;
    if (typeof value === 'number' || typeof value === 'bigint') {
      const text = node.source ?? String(value);
      return Number.isInteger(Number(value)) ? `the integer ${text}` : `the number ${text}`;
    }
  }
  return 'an unsupported value';
}

export function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function isEmpty(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && (node.value === null || node.value === undefined));
}

/** Text of a scalar usable as a string: strings as-is, numbers as written (`version: 14`). */
function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  if (typeof node.value === 'number' || typeof node.value === 'bigint') return node.source ?? String(node.value);
  return undefined;
}

/**
 * Reads a mapping whose keys are fixed. Unknown keys are errors that list the allowed keys and
 * suggest the nearest one. Returns undefined (after reporting) when `node` is not a mapping.
 */
export function readMapping(
  issues: Issues,
  node: unknown,
  path: string,
  allowed: readonly string[],
): Map<string, Field> | undefined {
  if (!isMap(node)) {
    issues.error(node, path, `expected a mapping, got ${describe(node)}`);
    return undefined;
  }
  const fields = new Map<string, Field>();
  for (const pair of (node as YAMLMap<unknown, unknown>).items) {
    const name = scalarText(pair.key);
    if (name === undefined) {
      issues.error(pair.key, path, `expected a key name, got ${describe(pair.key)}`);
      continue;
    }
    if (!allowed.includes(name)) {
      const guess = nearest(name, allowed);
      const hint = guess === undefined ? '' : ` Did you mean "${guess}"?`;
      issues.error(pair.key, path, `unknown key "${clip(name)}".${hint} Allowed keys: ${allowed.join(', ')}`);
      continue;
    }
    fields.set(name, { name, key: pair.key, value: pair.value, path: joinPath(path, name) });
  }
  return fields;
}

/** Reports each key of `required` missing from `fields`, at the mapping itself. */
export function requireKeys(
  issues: Issues,
  mapping: unknown,
  path: string,
  fields: Map<string, Field>,
  required: readonly string[],
): boolean {
  let ok = true;
  for (const name of required) {
    if (!fields.has(name)) {
      issues.error(mapping, path, `missing required key "${name}"`);
      ok = false;
    }
  }
  return ok;
}

/** Reads a string field. Empty (`key:`) counts as absent unless the key is required. */
export function readString(
  issues: Issues,
  field: Field | undefined,
  options: { required?: boolean } = {},
): string | undefined {
  if (field === undefined) return undefined;
  if (isEmpty(field.value) && !options.required) return undefined;
  const text = scalarText(field.value);
  if (text === undefined) {
    issues.error(at(field), field.path, `expected a string, got ${describe(field.value)}`);
    return undefined;
  }
  if (text.trim() === '') {
    issues.error(field.value, field.path, 'expected a non-empty string');
    return undefined;
  }
  return text;
}

export function readEnum<T extends string>(
  issues: Issues,
  field: Field | undefined,
  values: readonly T[],
  options: { required?: boolean } = {},
): T | undefined {
  const text = readString(issues, field, options);
  if (text === undefined || field === undefined) return undefined;
  if ((values as readonly string[]).includes(text)) return text as T;
  issues.error(field.value, field.path, `expected ${oneOf(values)}, got "${clip(text)}"${didYouMean(text, values)}`);
  return undefined;
}

export function readBoolean(issues: Issues, field: Field | undefined): boolean | undefined {
  if (field === undefined || isEmpty(field.value)) return undefined;
  if (isScalar(field.value) && typeof field.value.value === 'boolean') return field.value.value;
  issues.error(field.value, field.path, `expected a boolean (true or false), got ${describe(field.value)}`);
  return undefined;
}

export function readPort(issues: Issues, field: Field | undefined, options: { required?: boolean } = {}): number | undefined {
  if (field === undefined) return undefined;
  if (isEmpty(field.value) && !options.required) return undefined;
  const node = field.value;
  const value = isScalar(node) ? node.value : undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  issues.error(at(field), field.path, `expected an integer 1..65535, got ${describe(node)}`);
  return undefined;
}

/** A list of non-empty strings; each bad item is reported at the item. */
export function readStringList(
  issues: Issues,
  field: Field | undefined,
  options: { nonEmpty?: boolean } = {},
): string[] | undefined {
  if (field === undefined || isEmpty(field.value)) return undefined;
  const list = readSeq(issues, field.value, field.path);
  if (list === undefined) return undefined;
  if (options.nonEmpty && list.items.length === 0) {
    issues.error(field.value, field.path, 'expected a non-empty list (use ["*"] for any)');
    return undefined;
  }
  const out: string[] = [];
  list.items.forEach((item, index) => {
    const text = scalarText(item);
    if (text === undefined || text.trim() === '') {
      issues.error(item, `${field.path}[${index}]`, `expected a non-empty string, got ${describe(item)}`);
    } else {
      out.push(text);
    }
  });
  return out;
}

export function readSeq(issues: Issues, node: unknown, path: string): YAMLSeq<unknown> | undefined {
  if (isSeq(node)) return node as YAMLSeq<unknown>;
  issues.error(node, path, `expected a list, got ${describe(node)}`);
  return undefined;
}

/** A free-form `key: string` mapping such as `labels`. */
export function readStringRecord(issues: Issues, field: Field | undefined): Record<string, string> | undefined {
  if (field === undefined || isEmpty(field.value)) return undefined;
  return readRecord(issues, field, (value, path) => {
    const text = scalarText(value);
    if (text === undefined) issues.error(value, path, `expected a string, got ${describe(value)}`);
    return text;
  });
}

/** `key: glob | ^regex$ | [globs…]`, as in role `db_labels` and discovery `tags`. */
export function readLabelMatcher(issues: Issues, field: Field | undefined): LabelMatcher | undefined {
  if (field === undefined || isEmpty(field.value)) return undefined;
  const check = (value: unknown, path: string): string | undefined => {
    const text = scalarText(value);
    if (text === undefined) {
      issues.error(value, path, `expected a string or a list of strings, got ${describe(value)}`);
      return undefined;
    }
    const problem = regexProblem(text);
    if (problem !== undefined) {
      issues.error(value, path, `"${clip(text)}" is not a valid regular expression: ${problem}`);
      return undefined;
    }
    return text;
  };
  return readRecord<string | string[]>(issues, field, (value, path) => {
    if (!isSeq(value)) return check(value, path);
    const out: string[] = [];
    (value as YAMLSeq<unknown>).items.forEach((item, index) => {
      const text = check(item, `${path}[${index}]`);
      if (text !== undefined) out.push(text);
    });
    return out;
  });
}

function readRecord<T>(
  issues: Issues,
  field: Field,
  readValue: (value: unknown, path: string) => T | undefined,
): Record<string, T> | undefined {
  if (!isMap(field.value)) {
    issues.error(field.value, field.path, `expected a mapping, got ${describe(field.value)}`);
    return undefined;
  }
  // A null-prototype object so a label called "__proto__" is just a label.
  const out = Object.create(null) as Record<string, T>;
  for (const pair of (field.value as YAMLMap<unknown, unknown>).items) {
    const key = scalarText(pair.key);
    if (key === undefined) {
      issues.error(pair.key, field.path, `expected a key name, got ${describe(pair.key)}`);
      continue;
    }
    const value = readValue(pair.value, `${field.path}.${key}`);
    if (value !== undefined) out[key] = value;
  }
  return { ...out };
}

/** Label values written `^…$` are regular expressions (Teleport semantics). */
function regexProblem(text: string): string | undefined {
  if (!(text.startsWith('^') && text.endsWith('$'))) return undefined;
  try {
    new RegExp(text);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function oneOf(values: readonly string[]): string {
  if (values.length <= 2) return values.join(' or ');
  return `one of ${values.join(', ')}`;
}

export function didYouMean(text: string, candidates: Iterable<string>): string {
  const guess = nearest(text, candidates);
  return guess === undefined ? '' : `; did you mean "${guess}"?`;
}
