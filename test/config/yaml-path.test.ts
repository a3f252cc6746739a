import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import type { Path } from '../../src/config/data.js';
import { Issues } from '../../src/config/issues.js';
import { formatPath, nodeAt } from '../../src/config/yaml-path.js';

const TEXT = [
  'databases:',
  '  - name: orders',
  '    labels: {env: prod, 14: x}',
  '    tls:',
  '  - name:',
  'broker: {roles: [a, b]}',
  '',
].join('\n');

function at(path: Path, options: { key?: boolean } = {}): [number, number] {
  const lines = new LineCounter();
  const doc = parseDocument(TEXT, { lineCounter: lines });
  const node = nodeAt(doc.contents, path, options) as { range: [number, number, number] };
  const { line, col } = lines.linePos(node.range[0]);
  return [line, col];
}

describe('nodeAt: a data path back to where it is written', () => {
  it('finds values in mappings and lists', () => {
    expect(at([])).toEqual([1, 1]);
    expect(at(['databases', 0, 'name'])).toEqual([2, 11]);
    expect(at(['databases', 0, 'labels', 'env'])).toEqual([3, 19]);
    expect(at(['broker', 'roles', 1])).toEqual([6, 21]);
  });

  it('matches a key written as a number by its text', () => {
    expect(at(['databases', 0, 'labels', '14'])).toEqual([3, 29]);
  });

  it('points at the key when the value is empty', () => {
    expect(at(['databases', 0, 'tls'])).toEqual([4, 5]);
    expect(at(['databases', 1, 'name'])).toEqual([5, 5]);
  });

  it('points at a written key, or at the mapping when the key is missing', () => {
    expect(at(['databases', 0, 'labels', 'env'], { key: true })).toEqual([3, 14]);
    expect(at(['databases', 1, 'uri'], { key: true })).toEqual([5, 5]);
  });

  it('stops at the last node reached when the path leaves the document', () => {
    expect(at(['databases', 7, 'name'])).toEqual([2, 3]);
    expect(at(['broker', 'roles', 1, 'x'])).toEqual([6, 21]);
  });
});

describe('formatPath', () => {
  it('writes keys with dots and indices in brackets', () => {
    expect(formatPath([])).toBe('');
    expect(formatPath(['databases', 2, 'tls', 'mode'])).toBe('databases[2].tls.mode');
    expect(formatPath([0, 'a'])).toBe('[0].a');
  });
});

describe('Issues.addSchemaIssues', () => {
  const issues = (): Issues => {
    const lines = new LineCounter();
    return new Issues('a.yaml', lines, parseDocument(TEXT, { lineCounter: lines }).contents);
  };
  const item = (key: string | number, origin: 'key' | 'value' = 'value') => ({ type: 'unknown', origin, input: {}, key, value: undefined }) as const;

  it('names the value, with its path in front of the message', () => {
    const list = issues();
    list.addSchemaIssues([{ kind: 'schema', type: 'string', input: 1, expected: null, received: '1', message: 'bad', path: [item('databases'), item(0), item('name')] }]);
    expect(list.errors).toEqual([{ file: 'a.yaml', line: 2, column: 11, path: 'databases[0].name', message: 'databases[0].name: bad' }]);
  });

  it('names a key issue at the key and by the path of its mapping', () => {
    const list = issues();
    list.addSchemaIssues([
      { kind: 'schema', type: 'object', input: undefined, expected: null, received: '', message: 'missing', path: [item('databases'), item(1), item('uri', 'key')] },
      { kind: 'schema', type: 'object', input: 'env', expected: null, received: '', message: 'unknown', path: [item('databases'), item(0), item('labels'), item('env', 'key')] },
    ]);
    expect(list.errors.map((e) => [e.line, e.column, e.message])).toEqual([
      [5, 5, 'databases[1]: missing'],
      [3, 14, 'databases[0].labels: unknown'],
    ]);
  });

  it('keeps the first 1000 errors and counts the rest', () => {
    const list = issues();
    for (let i = 0; i < 1003; i++) list.error(['broker'], `e${i}`);
    expect(list.errors).toHaveLength(1000);
    expect(list.dropped).toBe(3);
  });
});
