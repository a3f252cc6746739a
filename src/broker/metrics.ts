/**
 * Counters and gauges of `azdb serve`, rendered in the Prometheus text exposition format
 * (version 0.0.4). A metric is a family of series keyed by label values; label names are fixed
 * when the family is declared, so every series of a family has the same labels in the same order.
 * Values are numbers only: no label or value is ever built from a token or a password.
 */

export type MetricType = 'counter' | 'gauge';

export type Labels = Record<string, string>;

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  labelNames: readonly string[];
  /** Label values (in `labelNames` order) → value. */
  series: Map<string, { labels: string[]; value: number }>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Counter {
  constructor(private readonly family: MetricFamily) {}

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.family.name} can only go up (got ${by})`);
    const entry = seriesOf(this.family, labels);
    entry.value += by;
  }

  value(labels: Labels = {}): number {
    return this.family.series.get(keyOf(this.family, labels))?.value ?? 0;
  }
}

export class Gauge {
  constructor(private readonly family: MetricFamily) {}

  set(labels: Labels, value: number): void {
    seriesOf(this.family, labels).value = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    seriesOf(this.family, labels).value += by;
  }

  dec(labels: Labels = {}, by = 1): void {
    seriesOf(this.family, labels).value -= by;
  }

  /** Forgets one series (a listener that was removed), so it stops being exported. */
  remove(labels: Labels): void {
    this.family.series.delete(keyOf(this.family, labels));
  }

  value(labels: Labels = {}): number {
    return this.family.series.get(keyOf(this.family, labels))?.value ?? 0;
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, MetricFamily>();
  private readonly collectors: Array<() => void> = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new Counter(this.declare(name, help, 'counter', labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return new Gauge(this.declare(name, help, 'gauge', labelNames));
  }

  /** Runs before every render: for gauges read from elsewhere (the token's expiry). */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  render(): string {
    for (const collect of this.collectors) collect();
    return renderFamilies([...this.families.values()]);
  }

  private declare(name: string, help: string, type: MetricType, labelNames: readonly string[]): MetricFamily {
    if (!METRIC_NAME.test(name)) throw new RangeError(`bad metric name ${name}`);
    for (const label of labelNames) if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new RangeError(`bad label name ${label}`);
    if (this.families.has(name)) throw new RangeError(`metric ${name} declared twice`);
    const family: MetricFamily = { name, help, type, labelNames: [...labelNames], series: new Map() };
    this.families.set(name, family);
    return family;
  }
}

function keyOf(family: MetricFamily, labels: Labels): string {
  return JSON.stringify(family.labelNames.map((name) => labels[name] ?? ''));
}

function seriesOf(family: MetricFamily, labels: Labels): { labels: string[]; value: number } {
  for (const name of Object.keys(labels)) {
    if (!family.labelNames.includes(name)) throw new RangeError(`metric ${family.name} has no label ${name}`);
  }
  const key = keyOf(family, labels);
  let entry = family.series.get(key);
  if (!entry) {
    entry = { labels: family.labelNames.map((name) => labels[name] ?? ''), value: 0 };
    family.series.set(key, entry);
  }
  return entry;
}

/** The text format: HELP and TYPE per family, then one line per series, sorted by labels. */
export function renderFamilies(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    const series = [...family.series.values()].sort((a, b) => compareLabels(a.labels, b.labels));
    // A family without labels is always exported, at 0 before anything happened.
    if (series.length === 0 && family.labelNames.length === 0) series.push({ labels: [], value: 0 });
    for (const { labels, value } of series) {
      const pairs = labels.map((v, i) => `${family.labelNames[i]}="${escapeLabelValue(v)}"`);
      lines.push(`${family.name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function compareLabels(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i += 1) {
    const order = a[i]! < b[i]! ? -1 : a[i]! > b[i]! ? 1 : 0;
    if (order !== 0) return order;
  }
  return 0;
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
