/**
 * Valibot building blocks for azdb.yaml, worded as azdb states problems ("expected a string, got
 * a list"). Values come as `toData` gives them: mappings are objects, lists arrays, numbers
 * keep their spelling where it matters.
 */
import * as v from 'valibot';
import { isMapping, WrittenNumber } from './data.js';
import { clip, didYouMean, expected, oneOf, unknownKey } from './messages.js';

/** Bounds lists, so a wrong file (a log, a dump) fails fast instead of eating memory. */
export const MAX_LIST_ENTRIES = 10_000;

type Message = (issue: v.BaseIssue<unknown>) => string;

const isText = (value: unknown): boolean => typeof value === 'string' || typeof value === 'number' || value instanceof WrittenNumber;
const asText = (value: unknown): string => (value instanceof WrittenNumber ? value.text : String(value));
const notBlank = (text: string): boolean => text.trim() !== '';

/** A non-blank string; a YAML number where text is expected reads as written (`version: 14`). */
export function text<T extends string = string>() {
  return v.pipe(
    v.custom<T>(isText, expected('a string')),
    v.transform((value) => asText(value) as T),
    v.check<T, string>(notBlank, 'expected a non-empty string'),
  );
}

/** Any string, even empty, as label values are. */
export function anyText(what = 'a string') {
  return v.pipe(v.custom<string>(isText, expected(what)), v.transform<string, string>(asText));
}

/** One list item of text: non-blank. */
export function textItem<T extends string = string>() {
  return v.pipe(
    v.custom<T>(isText, expected('a non-empty string')),
    v.transform((value) => asText(value) as T),
    v.check<T, Message>(notBlank, expected('a non-empty string')),
  );
}

/** Exactly one of `values`, suggesting the nearest when misspelt. */
export function pick<const T extends readonly string[]>(values: T) {
  return v.picklist(values, (issue) => {
    const got = String(issue.input);
    return `expected ${oneOf(values)}, got "${clip(got)}"${didYouMean(got, values)}`;
  });
}

export function choice<const T extends readonly string[]>(values: T) {
  return v.pipe(text<T[number]>(), pick(values));
}

export function port() {
  const asNumber = (value: unknown): unknown => (value instanceof WrittenNumber ? value.value : value);
  return v.pipe(
    v.custom<number>((value) => {
      const number = asNumber(value);
      return typeof number === 'number' && Number.isInteger(number) && number >= 1 && number <= 65535;
    }, expected('an integer 1..65535')),
    v.transform((value) => asNumber(value) as number),
  );
}

export function boolean() {
  return v.boolean(expected('a boolean (true or false)'));
}

/** A list of `item`s; `nonEmpty` where an empty list would match nothing by mistake. */
export function list<const S extends v.GenericSchema>(item: S, options: { nonEmpty?: boolean; message?: Message } = {}) {
  return v.pipe(
    v.array(item, options.message ?? expected('a list')),
    v.check((items) => !options.nonEmpty || items.length > 0, 'expected a non-empty list (use ["*"] for any)'),
  );
}

export function textList(options: { nonEmpty?: boolean } = {}) {
  return list(textItem(), options);
}

/** The entries under a list key such as `databases`; they are checked only when there are not too many. */
export function entryList<const S extends v.GenericSchema>(name: string, entry: S) {
  return v.pipe(
    v.custom<v.InferInput<S>[]>(Array.isArray, expected('a list')),
    v.check(
      (list) => list.length <= MAX_LIST_ENTRIES,
      (issue) => `too many entries: ${(issue.input as unknown[]).length}; azdb.yaml may list at most ${MAX_LIST_ENTRIES} ${name}`,
    ),
    v.array(entry),
  );
}

/** A check whose message is the problem `problem` finds in the value (undefined: none). */
export function refine<T>(problem: (value: T) => string | undefined) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    // One problem at a time: a value that failed an earlier check is not checked further.
    if (!dataset.typed || dataset.issues) return;
    const message = problem(dataset.value);
    if (message !== undefined) addIssue({ message });
  });
}

// ---- mappings ------------------------------------------------------------------------------------

export interface MappingIssue extends v.BaseIssue<unknown> {
  readonly kind: 'schema';
  readonly type: 'mapping' | 'string_map';
}

type ObjectOf<E extends v.ObjectEntries> = v.ObjectSchema<E, undefined>;

export interface MappingSchema<E extends v.ObjectEntries>
  extends v.BaseSchema<v.InferInput<ObjectOf<E>>, v.InferOutput<ObjectOf<E>>, MappingIssue | v.InferIssue<ObjectOf<E>>> {
  readonly type: 'mapping';
  readonly reference: typeof mapping;
  readonly expects: 'Object';
  readonly entries: E;
  readonly message: Message;
}

const OPTIONAL_TYPES: readonly string[] = ['optional', 'exact_optional', 'nullish'];

/**
 * A mapping with these keys, as `v.object` reads it, except that a list is not a mapping, every
 * unknown key is reported with the nearest known one (`v.strictObject` stops at the first), and
 * `key:` with nothing after it leaves an optional key out so that its default applies.
 */
export function mapping<const E extends v.ObjectEntries>(
  entries: E,
  message: Message = expected('a mapping'),
): MappingSchema<E> {
  const object = v.object(entries, (issue) => `missing required key ${issue.expected ?? ''}`);
  const allowed = Object.keys(entries);
  const optional = (key: string): boolean => Object.hasOwn(entries, key) && OPTIONAL_TYPES.includes(entries[key]!.type);
  return v._standardSchema<MappingSchema<E>>({
    kind: 'schema',
    type: 'mapping',
    reference: mapping,
    expects: 'Object',
    async: false,
    entries,
    message,
    '~run'(dataset, config) {
      const input = dataset.value;
      if (!isMapping(input)) {
        v._addIssue(this, 'type', dataset, config);
        return dataset as unknown as v.OutputDataset<v.InferOutput<ObjectOf<E>>, MappingIssue>;
      }
      const present = Object.create(null) as Record<string, unknown>;
      for (const [key, value] of Object.entries(input)) if (value !== null || !optional(key)) present[key] = value;
      const result = object['~run']({ value: present }, config);
      for (const key of Object.keys(input)) {
        if (Object.hasOwn(entries, key)) continue;
        v._addIssue(this, 'key', result, config, {
          input: key,
          expected: 'never',
          message: unknownKey(key, allowed),
          path: [{ type: 'object', origin: 'key', input, key, value: input[key] }],
        });
      }
      return result;
    },
  });
}

export interface StringMapSchema<S extends v.GenericSchema>
  extends v.BaseSchema<Record<string, v.InferInput<S>>, Record<string, v.InferOutput<S>>, MappingIssue | v.InferIssue<S>> {
  readonly type: 'string_map';
  readonly reference: typeof stringMap;
  readonly expects: 'Object';
  readonly value: S;
  readonly message: Message;
}

/** A mapping of any keys (labels, tags) to `value`s; unlike `v.record`, a key may be `__proto__`. */
export function stringMap<const S extends v.GenericSchema>(value: S): StringMapSchema<S> {
  return v._standardSchema<StringMapSchema<S>>({
    kind: 'schema',
    type: 'string_map',
    reference: stringMap,
    expects: 'Object',
    async: false,
    value,
    message: expected('a mapping'),
    '~run'(dataset, config) {
      const input = dataset.value;
      if (!isMapping(input)) {
        v._addIssue(this, 'type', dataset, config);
        return dataset as unknown as v.OutputDataset<Record<string, v.InferOutput<S>>, MappingIssue>;
      }
      // Built without a prototype, so that `__proto__` is stored as a key; spread back to a plain object.
      const values = Object.create(null) as Record<string, v.InferOutput<S>>;
      const issues: v.BaseIssue<unknown>[] = [];
      let typed = true;
      for (const [key, entry] of Object.entries(input)) {
        const result = this.value['~run']({ value: entry }, config);
        for (const issue of result.issues ?? []) {
          const item: v.ObjectPathItem = { type: 'object', origin: 'value', input, key, value: entry };
          issues.push({ ...issue, path: [item, ...(issue.path ?? [])] });
        }
        typed &&= result.typed;
        values[key] = result.value as v.InferOutput<S>;
      }
      return { typed, value: { ...values }, issues: issues.length > 0 ? issues : undefined } as v.OutputDataset<
        Record<string, v.InferOutput<S>>,
        MappingIssue | v.InferIssue<S>
      >;
    },
  });
}

/** A whole number from `min` up, as YAML writes it (`10`, `0x0A`). */
export function count(min: number) {
  const asNumber = (value: unknown): unknown => (value instanceof WrittenNumber ? value.value : value);
  return v.pipe(
    v.custom<number>((value) => {
      const number = asNumber(value);
      return typeof number === 'number' && Number.isSafeInteger(number) && number >= min;
    }, expected(`an integer ≥ ${min}`)),
    v.transform((value) => asNumber(value) as number),
  );
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const MAX_DURATION_MS = 7 * 24 * 3_600_000;

/**
 * A length of time, in seconds once read (so that a read config written back reads the same): a
 * number of seconds (`30`, `0.5`) or a number with a unit (`250ms`, `30s`, `10m`, `1h`); from 0
 * up to a week, to the millisecond.
 */
export function duration() {
  const what = 'a duration: seconds (30) or a number with ms, s, m or h (250ms, 10m)';
  const toMs = (value: unknown): number | undefined => {
    const number = value instanceof WrittenNumber ? value.value : value;
    let ms: number | undefined;
    if (typeof number === 'number') ms = number * 1_000;
    else if (typeof number === 'string') {
      const match = DURATION_PATTERN.exec(number.trim());
      if (match) ms = Number(match[1]) * DURATION_UNITS_MS[match[2]!]!;
    }
    return ms !== undefined && Number.isFinite(ms) && ms >= 0 && ms <= MAX_DURATION_MS ? Math.round(ms) : undefined;
  };
  return v.pipe(
    v.custom<number>((value) => toMs(value) !== undefined, expected(what)),
    v.transform((value) => toMs(value)! / 1_000),
  );
}
