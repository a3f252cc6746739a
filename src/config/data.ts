/**
 * The data the schema reads: what `toData` makes of a YAML document, or what a program writes.
 * Kept apart from the YAML walking so that the schema does not load the YAML parser.
 */

/** Keys and list indices from the top of the document, e.g. `['databases', 0, 'uri']`. */
export type Path = readonly (string | number)[];

/** An alias (`*name`) where a value should be; no schema accepts one. */
export class AliasValue {
  constructor(readonly name: string) {}
}

/**
 * A number written other than as JavaScript would (`14.10`, `01234`, `0x1F`): a text field reads
 * what was written (`version: 14.10` is not `14.1`), a numeric field the value.
 */
export class WrittenNumber {
  constructor(
    readonly value: number,
    readonly text: string,
  ) {}
}

/** A mapping as `toData` makes it (null prototype, so `__proto__` is just a key) or as code writes it. */
export function isMapping(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}
