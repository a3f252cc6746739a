import { describe, expect, it } from 'vitest';
import { MetricsRegistry, renderMerged } from '../../src/broker/metrics.js';
import { parsePrometheusText } from '../helpers/prometheus.js';

describe('MetricsRegistry', () => {
  it('renders HELP, TYPE and one line per series, and counters move', async () => {
    const registry = new MetricsRegistry();
    const sessions = registry.counter('azdb_sessions_total', 'Sessions by result.', ['database', 'result']);
    const open = registry.gauge('azdb_sessions_open', 'Open sessions.', ['database']);
    registry.counter('azdb_token_fetch_failures_total', 'Failed fetches.');
    sessions.inc({ database: 'orders', result: 'ok' });
    sessions.inc({ database: 'orders', result: 'ok' }, 2);
    sessions.inc({ database: 'inventory', result: 'error' });
    open.inc({ database: 'orders' });
    open.inc({ database: 'orders' });
    open.dec({ database: 'orders' });
    expect(await registry.render()).toBe(
      [
        '# HELP azdb_sessions_total Sessions by result.',
        '# TYPE azdb_sessions_total counter',
        'azdb_sessions_total{database="orders",result="ok"} 3',
        'azdb_sessions_total{database="inventory",result="error"} 1',
        '',
        '# HELP azdb_sessions_open Open sessions.',
        '# TYPE azdb_sessions_open gauge',
        'azdb_sessions_open{database="orders"} 1',
        '',
        '# HELP azdb_token_fetch_failures_total Failed fetches.',
        '# TYPE azdb_token_fetch_failures_total counter',
        'azdb_token_fetch_failures_total 0',
        '',
      ].join('\n'),
    );
  });

  it('merges the snapshots of several workers: counters and session gauges summed, state gauges by min or max, collectors run', async () => {
    const worker = (open: number, up: number, failing: number, expiry: number) => {
      const registry = new MetricsRegistry();
      registry.counter('azdb_sessions_total', 'Sessions.', ['result']).inc({ result: 'ok' }, open * 10);
      registry.gauge('azdb_sessions_open', 'Open.').set(open);
      registry.gauge('azdb_listener_up', 'Up.', ['listener'], 'min').set({ listener: 'a' }, up);
      registry.gauge('azdb_audit_failing', 'Failing.', [], 'max').set(failing);
      const expiryGauge = registry.gauge('azdb_token_expiry_timestamp_seconds', 'Expiry.', [], 'min');
      registry.onCollect(() => expiryGauge.set(expiry));
      return registry.snapshot();
    };
    const merged = parsePrometheusText(await renderMerged([await worker(2, 1, 0, 2000), await worker(3, 0, 1, 1000)]));
    expect(merged.value('azdb_sessions_total', { result: 'ok' })).toBe(50);
    expect(merged.value('azdb_sessions_open')).toBe(5);
    expect(merged.value('azdb_listener_up', { listener: 'a' })).toBe(0);
    expect(merged.value('azdb_audit_failing')).toBe(1);
    expect(merged.value('azdb_token_expiry_timestamp_seconds')).toBe(1000);
  });

  it('escapes label values so a database name cannot break the format', async () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('x_total', 'help with a \\ backslash\nand a newline', ['name']);
    const odd = 'we"ird\\name\nx';
    c.inc({ name: odd });
    const text = await registry.render();
    expect(text).toContain('# HELP x_total help with a \\\\ backslash\\nand a newline');
    expect(text.split('\n').filter((l) => l.startsWith('x_total'))).toEqual(['x_total{name="we\\"ird\\\\name\\nx"} 1']);
    expect(parsePrometheusText(text).value('x_total', { name: odd })).toBe(1);
  });

  it('refuses what would render an invalid exposition', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('ok_total', 'ok', ['a']);
    expect(() => c.inc({ a: 'x' }, -1)).toThrow(/not possible to decrease/);
    expect(() => c.inc({ b: 'x' })).toThrow(/label "b" is not included/);
    expect(() => registry.counter('ok_total', 'again')).toThrow(/already been registered/);
    expect(() => registry.gauge('bad-name', 'x')).toThrow(/invalid metric name/i);
    expect(() => registry.gauge('g', 'x', ['bad-label'])).toThrow(/invalid label name/i);
    expect(() => registry.gauge('g', 'x', ['__reserved'])).toThrow(/invalid label name __reserved/i);
  });

  it('runs collectors before rendering and forgets removed gauge series', async () => {
    const registry = new MetricsRegistry();
    const up = registry.gauge('up', 'up', ['listener']);
    let expiry = 0;
    const token = registry.gauge('token_expiry', 'expiry');
    registry.onCollect(() => token.set({}, expiry));
    up.set({ listener: 'a' }, 1);
    up.set({ listener: 'b' }, 1);
    up.remove({ listener: 'a' });
    expiry = 1_700_000_000;
    const parsed = parsePrometheusText(await registry.render());
    expect(parsed.value('up', { listener: 'a' })).toBeUndefined();
    expect(parsed.value('up', { listener: 'b' })).toBe(1);
    expect(parsed.value('token_expiry')).toBe(1_700_000_000);
  });

  it('formats special values as Prometheus reads them', async () => {
    const registry = new MetricsRegistry();
    const g = registry.gauge('g', 'g', ['v']);
    for (const [v, value] of [['nan', NaN], ['inf', Infinity], ['-inf', -Infinity], ['half', 0.5], ['twelve', 12]] as const) g.set({ v }, value);
    const samples = (await registry.render()).split('\n').filter((line) => line.startsWith('g{'));
    // Prometheus parses NaN case-insensitively; prom-client spells it Nan.
    expect(samples).toEqual(['g{v="nan"} Nan', 'g{v="inf"} +Inf', 'g{v="-inf"} -Inf', 'g{v="half"} 0.5', 'g{v="twelve"} 12']);
  });

  it('keeps the series of two registries apart', async () => {
    const [a, b] = [new MetricsRegistry(), new MetricsRegistry()];
    a.counter('same_total', 'same').inc(2);
    b.counter('same_total', 'same');
    expect(parsePrometheusText(await a.render()).value('same_total')).toBe(2);
    expect(parsePrometheusText(await b.render()).value('same_total')).toBe(0);
  });

  it('exposes the Prometheus text format content type', () => {
    expect(new MetricsRegistry().contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
