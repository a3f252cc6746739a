import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { AliasValue, WrittenNumber } from '../../src/config/data.js';
import { entryList, mapping, port, refine, stringMap, text } from '../../src/config/schema-parts.js';

/** Each issue as `path: message`, the path as keys joined with dots. */
function problems(schema: v.GenericSchema, input: unknown): string[] {
  const result = v.safeParse(schema, input);
  return (result.issues ?? []).map((issue) => `${(issue.path ?? []).map((item) => String(item.key)).join('.')}: ${issue.message}`);
}

// As toData makes mappings; JSON.parse so that `__proto__` is a key, not the prototype.
const nullProto = (json: string): Record<string, unknown> => Object.assign(Object.create(null) as object, JSON.parse(json) as object);

describe('mapping', () => {
  const schema = mapping({ name: text(), mode: v.optional(text(), 'fast'), note: v.optional(text()) });

  it('reports every unknown key, at the key, with the nearest known one', () => {
    expect(problems(schema, { name: 'a', nmae: 'b', colour: 'c' })).toEqual([
      'nmae: unknown key "nmae". Did you mean "name"? Allowed keys: name, mode, note',
      'colour: unknown key "colour". Allowed keys: name, mode, note',
    ]);
    expect(v.safeParse(schema, { name: 'a', nmae: 'b' }).issues?.[0]?.path?.[0]?.origin).toBe('key');
  });

  it('reports unknown keys that v.object would skip as special', () => {
    expect(problems(schema, nullProto('{"name": "a", "constructor": 1, "__proto__": 2}'))).toEqual([
      'constructor: unknown key "constructor". Allowed keys: name, mode, note',
      '__proto__: unknown key "__proto__". Allowed keys: name, mode, note',
    ]);
  });

  it('does not take a list for a mapping', () => {
    expect(problems(schema, ['a'])).toEqual([': expected a mapping, got a list']);
    expect(problems(mapping({}, () => 'top level'), 'x')).toEqual([': top level']);
  });

  it('reads an empty optional key as absent, so its default applies, but an empty required key as empty', () => {
    expect(v.parse(schema, { name: 'a', mode: null, note: null })).toEqual({ name: 'a', mode: 'fast' });
    expect(problems(schema, { name: null })).toEqual(['name: expected a string, got an empty value']);
    expect(problems(schema, {})).toEqual(['name: missing required key "name"']);
  });

  it('still checks the known keys of a mapping with unknown ones', () => {
    expect(problems(schema, { name: [1], extra: 1 })).toEqual([
      'name: expected a string, got a list',
      'extra: unknown key "extra". Allowed keys: name, mode, note',
    ]);
  });
});

describe('stringMap', () => {
  const schema = stringMap(text());

  it('keeps a key called __proto__ as a key of a plain object', () => {
    const output = v.parse(schema, nullProto('{"__proto__": "x", "constructor": "y"}'));
    expect(Object.keys(output)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
  });

  it('names each bad value by its key', () => {
    expect(problems(schema, { a: 'ok', b: [1], c: ' ' })).toEqual(['b: expected a string, got a list', 'c: expected a non-empty string']);
    expect(problems(schema, new AliasValue('l'))).toEqual([': expected a mapping, got an alias (*l); aliases are not supported in azdb.yaml']);
  });
});

describe('text and port', () => {
  it('read a number where text is expected as it was written', () => {
    expect(v.parse(text(), 14)).toBe('14');
    expect(v.parse(text(), new WrittenNumber(14.1, '14.10'))).toBe('14.10');
  });

  it('read a number written with leading zeros as its value where a port is expected', () => {
    expect(v.parse(port(), new WrittenNumber(8080, '08080'))).toBe(8080);
    expect(problems(port(), new WrittenNumber(1.5, '1.50'))).toEqual([': expected an integer 1..65535, got the number 1.50']);
    expect(problems(port(), '5432')).toEqual([': expected an integer 1..65535, got the string "5432"']);
  });
});

describe('refine', () => {
  it('says what is wrong, and only about a value that passed the checks before it', () => {
    const schema = v.pipe(text(), refine((value: string) => (value.startsWith('x') ? undefined : `"${value}" must start with x`)));
    expect(problems(schema, 'abc')).toEqual([': "abc" must start with x']);
    expect(problems(schema, '  ')).toEqual([': expected a non-empty string']);
    expect(problems(schema, 'xyz')).toEqual([]);
  });
});

describe('entryList', () => {
  it('checks no entry of a list that is too long', () => {
    const schema = entryList('things', mapping({ name: text() }));
    expect(problems(schema, Array.from({ length: 10_001 }, () => ({})))).toEqual([
      ': too many entries: 10001; azdb.yaml may list at most 10000 things',
    ]);
    expect(problems(schema, [{}, { name: 'a' }])).toEqual(['0.name: missing required key "name"']);
  });
});
