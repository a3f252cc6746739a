/**
 * A strict reader of the Prometheus text format for tests: every sample line must parse, every
 * family must have HELP and TYPE before its samples. Returns samples keyed `name{a="x",b="y"}`
 * with labels in the order written.
 */
export interface ParsedMetrics {
  samples: Map<string, number>;
  types: Map<string, string>;
  /** Value of `name` with exactly these labels (any order), or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Sum of `name` over all series whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

export function parsePrometheusText(text: string): ParsedMetrics {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const parsed: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const helped = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      helped.add(line.split(' ')[2]!);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const name = match[1]!;
    // A histogram's series are its family's name with _bucket, _sum or _count.
    const family = /_(bucket|sum|count)$/.test(name) && types.get(name.replace(/_(bucket|sum|count)$/, '')) === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name;
    if (!types.has(family) || !helped.has(family)) throw new Error(`sample before HELP/TYPE: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[3] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const start = LABEL.lastIndex;
      const label = LABEL.exec(body);
      if (!label || label.index !== start) throw new Error(`bad labels in: ${line}`);
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = match[4] === '+Inf' ? Infinity : match[4] === '-Inf' ? -Infinity : Number(match[4]);
    samples.set(`${name}${match[2] ?? ''}`, value);
    parsed.push({ name, labels, value });
  }
  const matches = (have: Record<string, string>, want: Record<string, string>) => Object.entries(want).every(([k, v]) => have[k] === v);
  return {
    samples,
    types,
    value: (name, labels = {}) =>
      parsed.find((s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && matches(s.labels, labels))?.value,
    sum: (name, labels = {}) => parsed.filter((s) => s.name === name && matches(s.labels, labels)).reduce((total, s) => total + s.value, 0),
  };
}
