/**
 * From a path in the data (`['databases', 0, 'uri']`) back to the YAML node written there, so a
 * problem can name its line and column.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Path } from './data.js';
import { keyText } from './yaml-data.js';

/**
 * The node to point at for `path`: the value there, or its key when the value is empty (there is
 * nothing else to point at). With `key`, the path ends with a mapping key: the key itself when it
 * is written, else the mapping (a required key left out). A path that leaves the document stops
 * at the last node it reached.
 */
export function nodeAt(root: unknown, path: Path, options: { key?: boolean } = {}): unknown {
  let node = root;
  let keyNode: unknown;
  for (const [index, segment] of path.entries()) {
    const last = index === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((item) => keyText(item.key) === String(segment));
      if (pair === undefined) return node;
      if (last && options.key) return pair.key;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
      keyNode = undefined;
      node = node.items[segment];
    } else {
      return node;
    }
  }
  const empty = node === null || node === undefined || (isScalar(node) && node.value === null);
  return empty && keyNode !== undefined ? keyNode : node;
}

/** `databases[0].tls.mode`. */
export function formatPath(path: Path): string {
  return path.reduce<string>(
    (text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text === '' ? segment : `${text}.${segment}`),
    '',
  );
}
