/**
 * The HTTP endpoint of `azdb serve`, shared by one process and the primary of --workers N: a
 * failing request is answered 500, logged and counted in azdb_errors_total{kind="http"}; a busy
 * address stops what started and names the address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { createJsonLogger } from '../../src/broker/log.js';
import { MetricsRegistry } from '../../src/broker/metrics.js';
import { openHttpEndpoint } from '../../src/core/serve.js';
import type { HealthServer } from '../../src/broker/health-server.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function setup() {
  const registry = new MetricsRegistry();
  const errors = registry.counter('azdb_errors_total', 'Errors by kind.', ['kind']);
  const lines: string[] = [];
  const log = createJsonLogger((line) => lines.push(line));
  return { registry, errors, lines, log };
}

const readiness = async () => ({ ready: true, checks: {} });
const metrics = async () => ({ contentType: 'text/plain', body: '' });

describe('openHttpEndpoint', () => {
  it('answers a failing request 500, logs http.error and counts azdb_errors_total{kind="http"}', async () => {
    const { registry, errors, lines, log } = setup();
    let undone = false;
    const health = (await openHttpEndpoint(
      { address: '127.0.0.1:0', host: '127.0.0.1', port: 0 },
      { readiness: () => Promise.reject(new Error('readiness broke')), metrics },
      { log, errors, undo: async () => void (undone = true) },
    )) as HealthServer;
    closers.push(() => health.close());
    const response = await fetch(`http://127.0.0.1:${health.port}/readyz`);
    expect(response.status).toBe(500);
    expect(await registry.render()).toContain('azdb_errors_total{kind="http"} 1');
    expect(lines.map((l) => JSON.parse(l) as { event: string; error: string })).toContainEqual(expect.objectContaining({ event: 'http.error', error: 'readiness broke' }));
    expect(undone).toBe(false);
  });

  it('on a taken address runs undo and throws a UserError naming the address', async () => {
    const { errors, log } = setup();
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as { port: number }).port;
    let undone = false;
    await expect(
      openHttpEndpoint({ address: `127.0.0.1:${port}`, host: '127.0.0.1', port }, { readiness, metrics }, { log, errors, undo: async () => void (undone = true) }),
    ).rejects.toMatchObject({ kind: 'user', message: expect.stringContaining(`cannot serve /healthz, /readyz and /metrics on 127.0.0.1:${port}: `) as string, hint: 'Pick a free `broker.http.address`, or stop the process holding it.' });
    expect(undone).toBe(true);
  });

  it('opens nothing without an address', async () => {
    const { errors, log } = setup();
    expect(await openHttpEndpoint(undefined, { readiness, metrics }, { log, errors, undo: async () => {} })).toBeUndefined();
  });
});
