/**
 * What a broker process loads before its first client (docs/performance.md, "Base memory"): each
 * package below costs megabytes of resident memory for the whole life of the process, so the
 * modules a tunnel or `azdb proxy db` loads at start must not pull them in where they are not used.
 * Runs the built modules (dist/) in a fresh Node with a loader hook that records every module.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HOOKS = resolve(ROOT, 'test/fixtures/startup-imports/record-loads.mjs');

let work: string;
beforeAll(async () => {
  requireBuild('broker/tunnel.js');
  work = await mkdtemp(join(tmpdir(), 'azdb-startup-imports-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** The URLs of every module loaded by running `script` (an ES module's text). */
async function urlsLoadedBy(script: string): Promise<string[]> {
  const file = join(work, `loads-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`);
  await execa(process.execPath, ['--import', pathToFileURL(HOOKS).href, '--input-type=module', '-e', script], { env: { RECORD_LOADS_FILE: file } });
  return (await readFile(file, 'utf8')).split('\n');
}

const distUrl = (module: string): string => JSON.stringify(pathToFileURL(resolve(ROOT, 'dist', module)).href);

/** The packages (node_modules/<name>) loaded by importing `modules` of dist/. */
async function packagesLoadedBy(modules: string[]): Promise<Set<string>> {
  const urls = await urlsLoadedBy(modules.map((m) => `await import(${distUrl(m)});`).join('\n'));
  const names = urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((n): n is string => n !== undefined);
  return new Set(names);
}

/** The broker modules (dist/broker/…) a process loads that opens a pooled tunnel of `protocol` and closes it (no client). */
async function brokerModulesOfTunnel(protocol: 'postgres' | 'mysql'): Promise<string[]> {
  const target = { name: 'db', protocol, host: '127.0.0.1', port: 1, tls: { mode: 'verify-full', ca: '', caSource: 'test', serverName: 'db' }, serverKind: 'flexible' };
  const pool = { mode: 'transaction', maxServerConnections: 2, maxClientWaitMs: 1000, idleTimeoutMs: 1000 };
  const urls = await urlsLoadedBy(
    `const { openTunnel } = await import(${distUrl('broker/tunnel.js')});
     const { NO_AUDIT } = await import(${distUrl('broker/audit.js')});
     const tunnel = await openTunnel({ target: ${JSON.stringify(target)}, host: '127.0.0.1', port: 0, dbUser: 'u', dbName: 'd', authorize: () => ({ allowed: true }), getToken: async () => 't', audit: NO_AUDIT, pool: ${JSON.stringify(pool)} });
     await tunnel.close();`,
  );
  return urls.map((u) => /\/dist\/(broker\/.+)$/.exec(u)?.[1]).filter((m): m is string => m !== undefined);
}

describe('modules a broker process loads at start', () => {
  it('the tunnel and its token cache (the bench child, a process handed its tokens) load no Azure SDK', async () => {
    const loaded = await packagesLoadedBy(['broker/tunnel.js', 'azure/token-cache.js', 'broker/audit.js', 'broker/pool/pool-limits.js', 'broker/postgres/pool/postgres-pool.js']);
    expect([...loaded].filter((name) => name.startsWith('@azure/'))).toEqual([]);
    expect(loaded.has('jose')).toBe(true); // the token's expiry is read with jose: the hook saw the packages
    expect(loaded.has('valibot')).toBe(false); // the pool's defaults without the config parser
  });

  it("a tunnel loads its own protocol's session and pool, not the other protocol's", async () => {
    const postgres = await brokerModulesOfTunnel('postgres');
    expect(postgres).toContain('broker/postgres/session.js');
    expect(postgres).toContain('broker/postgres/pool/postgres-pool.js');
    expect(postgres.filter((m) => m.startsWith('broker/mysql/'))).toEqual([]);
    const mysql = await brokerModulesOfTunnel('mysql');
    expect(mysql).toContain('broker/mysql/session.js');
    expect(mysql).toContain('broker/mysql/pool/mysql-pool.js');
    expect(mysql.filter((m) => m.startsWith('broker/postgres/'))).toEqual([]);
  });

  it('`azdb proxy db` loads no database driver, no subprocess runner, no settings store', async () => {
    const loaded = await packagesLoadedBy(['cli/main.js', 'cli/commands/db-tunnel.js']);
    // It signs in at start, so the SDK is there: proof that the hook saw the packages at all.
    expect(loaded.has('@azure/identity')).toBe(true);
    for (const name of ['pg', 'mysql2', 'execa', 'conf', 'ajv', '@peculiar/x509', 'ink', 'react']) expect(loaded, name).not.toContain(name);
  });
});
