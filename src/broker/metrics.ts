/**
 * Counters and gauges of `azdb serve`, on prom-client. Each broker has a registry of its own,
 * never prom-client's global one, so several brokers in one process (tests) keep their series
 * apart. Values are numbers only: no label or value is ever built from a token or a password.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type Aggregator } from 'prom-client';

export type { Counter, Gauge, Histogram };

/** One process's metrics as data, for `azdb serve --workers N` to sum in the primary. */
export type MetricsSnapshot = object[];

/**
 * How `azdb serve --workers N` merges a gauge over the workers: `sum` (sessions open), or `min` /
 * `max` for a state every worker has alike (listener up, token expiry, audit failing).
 */
export type GaugeMerge = Extract<Aggregator, 'sum' | 'min' | 'max'>;

export class MetricsRegistry {
  private readonly registry = new Registry();
  private readonly collectors: Array<() => void> = [];

  /** Content-Type of what `render` returns. */
  get contentType(): string {
    return this.registry.contentType;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return new Counter({ name, help, labelNames: unreserved(labelNames), registers: [this.registry] });
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], merge: GaugeMerge = 'sum'): Gauge {
    return new Gauge({ name, help, labelNames: unreserved(labelNames), aggregator: merge, registers: [this.registry] });
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: number[]): Histogram {
    return new Histogram({ name, help, labelNames: unreserved(labelNames), buckets, registers: [this.registry] });
  }

  /** Runs before every render: for gauges read from elsewhere (the token's expiry). */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    for (const collect of this.collectors) collect();
    return this.registry.metrics();
  }

  /** Every metric as data (after the collectors ran), to merge with other processes' in {@link renderMerged}. */
  async snapshot(): Promise<MetricsSnapshot> {
    for (const collect of this.collectors) collect();
    return this.registry.getMetricsAsJSON();
  }
}

/** The exposition of several processes' snapshots: counters and histograms summed, gauges as each declares. */
export function renderMerged(snapshots: MetricsSnapshot[]): Promise<string> {
  return AggregatorRegistry.aggregate(snapshots).metrics();
}

/** Content-Type of {@link renderMerged}'s text (prom-client's default registry type). */
export const MERGED_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** prom-client checks label names' syntax but not the `__` prefix Prometheus keeps for itself. */
function unreserved(labelNames: readonly string[]): string[] {
  const reserved = labelNames.find((label) => label.startsWith('__'));
  if (reserved !== undefined) throw new RangeError(`Invalid label name ${reserved}: the __ prefix is reserved by Prometheus`);
  return [...labelNames];
}
