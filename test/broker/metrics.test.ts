import { describe, expect, it } from 'vitest';
import { MetricsRegistry, escapeLabelValue, formatValue } from '../../src/broker/metrics.js';
import { parsePrometheusText } from '../helpers/prometheus.js';

describe('MetricsRegistry', () => {
  it('renders HELP, TYPE and one sorted line per series, and counters move', () => {
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
    expect(registry.render()).toBe(
      [
        '# HELP azdb_sessions_total Sessions by result.',
        '# TYPE azdb_sessions_total counter',
        'azdb_sessions_total{database="inventory",result="error"} 1',
        'azdb_sessions_total{database="orders",result="ok"} 3',
        '# HELP azdb_sessions_open Open sessions.',
        '# TYPE azdb_sessions_open gauge',
        'azdb_sessions_open{database="orders"} 1',
        '# HELP azdb_token_fetch_failures_total Failed fetches.',
        '# TYPE azdb_token_fetch_failures_total counter',
        'azdb_token_fetch_failures_total 0',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values so a database name cannot break the format', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('x_total', 'help with a \\ backslash\nand a newline', ['name']);
    const odd = 'we"ird\\name\nx';
    c.inc({ name: odd });
    const text = registry.render();
    expect(text).toContain('# HELP x_total help with a \\\\ backslash\\nand a newline');
    expect(text.split('\n').filter((l) => l.startsWith('x_total'))).toEqual(['x_total{name="we\\"ird\\\\name\\nx"} 1']);
    expect(parsePrometheusText(text).value('x_total', { name: odd })).toBe(1);
    expect(escapeLabelValue('a"b')).toBe('a\\"b');
  });

  it('refuses what would render an invalid exposition', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('ok_total', 'ok', ['a']);
    expect(() => c.inc({ a: 'x' }, -1)).toThrow(/only go up/);
    expect(() => c.inc({ b: 'x' })).toThrow(/no label b/);
    expect(() => registry.counter('ok_total', 'again')).toThrow(/declared twice/);
    expect(() => registry.gauge('bad-name', 'x')).toThrow(/bad metric name/);
    expect(() => registry.gauge('g', 'x', ['__reserved'])).toThrow(/bad label name/);
  });

  it('runs collectors before rendering and forgets removed gauge series', () => {
    const registry = new MetricsRegistry();
    const up = registry.gauge('up', 'up', ['listener']);
    let expiry = 0;
    const token = registry.gauge('token_expiry', 'expiry');
    registry.onCollect(() => token.set({}, expiry));
    up.set({ listener: 'a' }, 1);
    up.set({ listener: 'b' }, 1);
    up.remove({ listener: 'a' });
    expiry = 1_700_000_000;
    const parsed = parsePrometheusText(registry.render());
    expect(parsed.value('up', { listener: 'a' })).toBeUndefined();
    expect(parsed.value('up', { listener: 'b' })).toBe(1);
    expect(parsed.value('token_expiry')).toBe(1_700_000_000);
  });

  it('formats special values as Prometheus does', () => {
    expect([NaN, Infinity, -Infinity, 0.5, 12].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '0.5', '12']);
  });
});
