/**
 * A parsed azdb.yaml as plain data for the schema: mappings become objects, lists arrays, scalars
 * their values. What YAML allows but azdb.yaml does not stays visible for the schema to name:
 * an alias becomes an {@link AliasValue}, and a key that is not text is reported, then skipped.
 */
import { isAlias, isMap, isScalar, isSeq, type Scalar } from 'yaml';
import { AliasValue, WrittenNumber, type Path } from './data.js';

/** The text of a key: strings as-is, numbers as written (`14: x`); undefined for anything else. */
export function keyText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'string') return node.value;
  if (typeof node.value === 'number') return node.source ?? String(node.value);
  return undefined;
}

/** Calls `badKey` for each key that is not text (`[a]: x`, `true: x`), with the key as data. */
export function toData(node: unknown, badKey: (node: unknown, key: unknown, path: Path) => void, path: Path = []): unknown {
  if (isAlias(node)) return new AliasValue(node.source);
  if (isScalar(node)) return scalarData(node);
  if (isSeq(node)) return node.items.map((item, index) => toData(item, badKey, [...path, index]));
  if (isMap(node)) {
    const out = Object.create(null) as Record<string, unknown>;
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key === undefined) badKey(pair.key, toData(pair.key, () => undefined), path);
      else out[key] = toData(pair.value, badKey, [...path, key]);
    }
    return out;
  }
  // Nothing written at all, as in the flow mapping `{name}`.
  return undefined;
}

function scalarData(scalar: Scalar): unknown {
  const { value, source } = scalar;
  if (typeof value === 'number' && source !== undefined && source !== String(value)) return new WrittenNumber(value, source);
  return value ?? null;
}
