import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { AliasValue, isMapping, WrittenNumber, type Path } from '../../src/config/data.js';
import { toData } from '../../src/config/yaml-data.js';

function read(text: string): { data: unknown; badKeys: [unknown, Path][] } {
  const badKeys: [unknown, Path][] = [];
  const data = toData(parseDocument(text).contents, (_node, key, path) => badKeys.push([key, path]));
  return { data, badKeys };
}

describe('toData: a YAML document as plain data', () => {
  it('turns mappings into objects without a prototype, lists into arrays, scalars into values', () => {
    const { data } = read('a: [x, 1, true, null]\nb: {__proto__: y}\n');
    expect(isMapping(data)).toBe(true);
    expect(Object.getPrototypeOf(data)).toBeNull();
    expect({ ...(data as object) }).toEqual({ a: ['x', 1, true, null], b: expect.anything() });
    const b = (data as { b: object }).b;
    expect(Object.keys(b)).toEqual(['__proto__']);
  });

  it('keeps the spelling of a number when it says more than the value', () => {
    const { data } = read('a: 14\nb: 14.10\nc: 01234\nd: 0x1F\ne: -3\nf: 1.5\n');
    const values = data as Record<string, unknown>;
    expect(values['a']).toBe(14);
    expect(values['e']).toBe(-3);
    expect(values['f']).toBe(1.5);
    expect(values['b']).toEqual(new WrittenNumber(14.1, '14.10'));
    expect(values['c']).toEqual(new WrittenNumber(1234, '01234'));
    expect(values['d']).toEqual(new WrittenNumber(31, '0x1F'));
  });

  it('leaves aliases unresolved so the schema can reject them', () => {
    const { data } = read('a: &x {b: 1}\nc: *x\n');
    expect((data as Record<string, unknown>)['c']).toEqual(new AliasValue('x'));
  });

  it('reports keys that are not text, with the mapping path, and skips them', () => {
    const { data, badKeys } = read('top:\n  - ok: 1\n    [a]: 2\n    true: 3\n    7: 4\n');
    expect(badKeys).toEqual([
      [['a'], ['top', 0]],
      [true, ['top', 0]],
    ]);
    expect({ ...((data as { top: object[] }).top[0] as object) }).toEqual({ ok: 1, 7: 4 });
  });

  it('tells an empty value (null) from nothing written at all (undefined)', () => {
    const { data } = read('{a: , b}\n');
    const values = data as Record<string, unknown>;
    expect(values['a']).toBeNull();
    expect('b' in values && values['b'] === undefined).toBe(true);
  });
});
