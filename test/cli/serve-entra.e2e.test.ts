/**
 * `azdb serve` as a shared broker: the built CLI with a `client_auth: entra` listener, taking
 * Entra's keys from AZURE_AUTHORITY_HOST (the emulated authority, verified through
 * NODE_EXTRA_CA_CERTS), roles that bind people, the audit naming them and /metrics counting
 * refusals by reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import pg from 'pg';
import { startTestAzure } from '../harness/emulator.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { BIN, emulatedDatabase, requireBuild } from '../helpers/cli.js';
import { renderConfig } from '../../src/config/generate.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { decodeTokenClaims } from '../../src/azure/token-claims.js';
import type { EmulatedAzure } from '../../src/emulator/emulated-azure.js';
import { JWT } from '../helpers/broker-fixtures.js';

let azure: EmulatedAzure & { dir: string };
let work: string;
const run = randomUUID().slice(0, 8);
const CAROL = { upn: `carol-${run}@contoso.com`, objectId: randomUUID() };
const DAVE = { upn: `dave-${run}@contoso.com`, objectId: randomUUID() };

beforeAll(async () => {
  requireBuild('cli/commands/serve.js');
  azure = await startTestAzure();
  work = await mkdtemp(join(tmpdir(), 'azdb-serve-entra-'));
});

afterAll(async () => {
  await azure?.stop();
});

describe('azdb serve with client_auth: entra', () => {
  it('lets a named person in, refuses the one a deny names and a stranger tenant, audits who, counts refusals by reason', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const auditPath = join(work, 'audit.jsonl');
    const config = join(work, 'azdb.yaml');
    await writeFile(
      config,
      renderConfig({
        version: 'v1',
        databases: azure.servers.filter((s) => s.name === 'orders').map((s) => emulatedDatabase(azure, s)),
        roles: [
          {
            version: 'v7',
            kind: 'role',
            metadata: { name: 'people' },
            spec: {
              allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: [DEMO_IDENTITY.role], subjects: { users: [CAROL.upn, DAVE.objectId] } },
              deny: { subjects: { users: [DAVE.upn] } },
            },
          },
        ],
        broker: {
          roles: ['people'],
          listeners: [{ database: 'orders', host: '127.0.0.1', port, client_auth: 'entra', allowed_tenants: [azure.tenantId] }],
          audit: { path: auditPath },
          http: { address: `127.0.0.1:${httpPort}` },
        },
      }),
    );
    const env = {
      ...azure.identity.env(),
      AZDB_STATE_DIR: join(work, 'state'),
      NO_COLOR: '1',
      AZURE_AUTHORITY_HOST: azure.entraAuthority.directUrl,
      NODE_EXTRA_CA_CERTS: azure.caFile,
    };
    const child = execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => stderr.includes('"listener.up"'), `the listener\n${stderr}`, 30_000);
      const login = async (token: string) => {
        const client = new pg.Client({ host: '127.0.0.1', port, user: DEMO_IDENTITY.role, database: 'orders', password: token });
        client.on('error', () => {});
        try {
          await client.connect();
          const { rows } = await client.query<{ n: string }>('select count(*) as n from orders');
          return { ok: Number(rows[0]!.n) > 0 };
        } catch (error) {
          return { ok: false, error: error as Error & { code?: string } };
        } finally {
          await client.end().catch(() => {});
        }
      };
      expect(await login(await azure.issueUserToken(CAROL))).toEqual({ ok: true });
      const dave = await login(await azure.issueUserToken(DAVE));
      expect(dave.error?.code).toBe('28000');
      expect(dave.error?.message).toContain('deny.subjects');
      const stranger = await login(await azure.issueUserToken({ ...CAROL, tenant: 'other' }));
      expect(stranger.error?.code).toBe('28P01');
      expect(stranger.error?.message).toContain('(tenant)');

      const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
      const metrics = parsePrometheusText(await response.text());
      expect(metrics.value('azdb_client_auth_refusals_total', { listener: `orders@127.0.0.1:${port}`, protocol: 'postgres', reason: 'tenant' })).toBe(1);
      expect(metrics.sum('azdb_client_auth_refusals_total')).toBe(1);

      const lines = (await waitFor(async () => {
        const text = await readFile(auditPath, 'utf8').catch(() => '');
        return text.includes('session.start') && text;
      }, 'the audit line')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.event === 'session.start')).toMatchObject({ oid: CAROL.objectId, upn: CAROL.upn, tid: azure.tenantId, client_auth: 'entra', role: 'people' });
      expect(`${stderr}${JSON.stringify(lines)}`).not.toMatch(JWT);
      // The broker's own log says who, too.
      const logged = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logged.find((l) => l.event === 'session.start')).toMatchObject({ upn: CAROL.upn, oid: CAROL.objectId, tid: azure.tenantId });
      expect(logged.find((l) => l.event === 'client_auth.refused')).toMatchObject({ reason: 'tenant' });
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });

  it('serves disconnect_expired on a pooled listener: an expired session is cut after its commit and counted, its server connection reused', async () => {
    const [port, httpPort] = [await freePort(), await freePort()];
    const config = join(work, 'azdb-pooled.yaml');
    await writeFile(
      config,
      renderConfig({
        version: 'v1',
        databases: azure.servers.filter((s) => s.name === 'orders').map((s) => emulatedDatabase(azure, s)),
        roles: [{ version: 'v7', kind: 'role', metadata: { name: 'people' }, spec: { allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: [DEMO_IDENTITY.role], subjects: { users: [CAROL.upn] } }, deny: {} } }],
        broker: {
          roles: ['people'],
          listeners: [
            { database: 'orders', host: '127.0.0.1', port, client_auth: 'entra', allowed_tenants: [azure.tenantId], disconnect_expired: true, pool: { mode: 'transaction', max_server_connections: 1 } },
          ],
          http: { address: `127.0.0.1:${httpPort}` },
        },
      }),
    );
    const env = { ...azure.identity.env(), AZDB_STATE_DIR: join(work, 'state-pooled'), NO_COLOR: '1', AZURE_AUTHORITY_HOST: azure.entraAuthority.directUrl, NODE_EXTRA_CA_CERTS: azure.caFile };
    const child = execa('node', [BIN, '--config', config, 'serve'], { env, reject: false });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const metrics = async () => parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    const connect = async (token: string) => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: DEMO_IDENTITY.role, database: 'orders', password: token });
      await client.connect();
      return client;
    };
    try {
      await waitFor(() => stderr.includes('"listener.up"'), `the listener\n${stderr}`, 30_000);
      const token = await azure.issueUserToken({ ...CAROL, ttlSeconds: 4 });
      const expiresAt = decodeTokenClaims(token)!.expiresOn!;
      const leaver = await connect(token);
      let cut: (Error & { code?: string }) | undefined;
      leaver.on('error', (error) => (cut ??= error));
      await leaver.query('begin');
      await waitFor(() => Date.now() > expiresAt + 200, 'the token to expire', 15_000);
      await leaver.query('select count(*) from orders');
      await leaver.query('commit');
      expect(await waitFor(() => cut, 'the session to be cut after its commit')).toMatchObject({ code: '57P01' });
      await waitFor(async () => (await metrics()).sum('azdb_expired_disconnects_total') === 1, 'azdb_expired_disconnects_total to count it');
      const logins = (await metrics()).sum('azdb_pool_server_logins_total');
      expect(logins).toBe(1);
      const next = await connect(await azure.issueUserToken(CAROL));
      await next.query('select 1');
      await next.end();
      expect((await metrics()).sum('azdb_pool_server_logins_total')).toBe(logins);
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });
});
