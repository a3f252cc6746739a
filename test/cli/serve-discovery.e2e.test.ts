/**
 * `azdb serve` with ARM discovery: a listener for a discovered database starts, discovery results
 * and failures show in /metrics and the log, and a listener whose database discovery has not found
 * keeps the broker unready (saying which) instead of failing the start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { renderConfig } from '../../src/config/generate.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { SUB_DENIED, startArmWorld, type ArmWorld } from '../helpers/arm-world.js';
import { JWT } from '../helpers/broker-fixtures.js';
import { BIN, requireBuild } from '../helpers/cli.js';


let world: ArmWorld;
let work: string;

beforeAll(async () => {
  requireBuild('cli/commands/serve.js');
  world = await startArmWorld();
  work = await mkdtemp(join(tmpdir(), 'azdb-serve-discovery-'));
});

afterAll(async () => {
  await world?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('azdb serve with discovery', () => {
  it('serves a listener for a discovered database, reports discovery in /metrics, and is unready while a listener waits for its database', async () => {
    const [ordersPort, ghostPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(work, 'azdb.yaml');
    await writeFile(
      file,
      renderConfig({
        version: 'v1',
        azure: { cloud: 'AzureCloud', resource_manager_endpoint: world.arm.endpoint },
        discovery: [{ types: ['postgres', 'mysql'] }],
        broker: {
          listeners: [
            { database: 'orders', host: '127.0.0.1', port: ordersPort, db_user: 'teleport' },
            { database: 'ghost', host: '127.0.0.1', port: ghostPort, db_user: 'teleport' },
          ],
          http: { address: `127.0.0.1:${httpPort}` },
        },
      }),
    );
    const child = execa('node', [BIN, '--config', file, 'serve'], { env: { ...world.env(), AZDB_STATE_DIR: join(work, 'state'), NO_COLOR: '1' }, reject: false });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const logs = () => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    try {
      await waitFor(() => logs().find((l) => l.event === 'serve.start'), `serve.start\n${stderr}`, 45_000);
      const up = logs().find((l) => l.event === 'listener.up' && l.database === 'orders')!;
      expect(up).toMatchObject({ protocol: 'postgres', address: `127.0.0.1:${ordersPort}` });
      const ghost = await waitFor(() => logs().find((l) => l.event === 'listener.failed' && l.database === 'ghost'), 'listener.failed for ghost');
      expect(ghost.error).toMatch(/has not been found by discovery/);
      const discovery = await waitFor(() => logs().find((l) => l.event === 'discovery'), 'the discovery log line');
      expect(discovery.databases).toBeGreaterThan(0);
      expect((discovery.errors as string[]).some((e) => e.includes(SUB_DENIED))).toBe(true);

      const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      expect(metrics.value('azdb_discovery_databases')).toBe(discovery.databases);
      expect(metrics.value('azdb_discovery_errors')).toBe((discovery.errors as string[]).length);
      expect(metrics.value('azdb_listener_up', { listener: `orders@127.0.0.1:${ordersPort}`, database: 'orders' })).toBe(1);
      expect(metrics.value('azdb_listener_up', { listener: `ghost@127.0.0.1:${ghostPort}`, database: 'ghost' })).toBe(0);

      const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toBe(
        `listener ghost@127.0.0.1:${ghostPort} is not listening: database "ghost" has not been found by discovery (yet)`,
      );
      child.kill('SIGTERM');
      expect((await child).exitCode).toBe(0);
      expect(stderr).not.toMatch(JWT);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await child.catch(() => {});
    }
  }, 90_000);
});
