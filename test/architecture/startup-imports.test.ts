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

/** The packages (node_modules/<name>) loaded by importing `modules` of dist/. */
async function packagesLoadedBy(modules: string[]): Promise<Set<string>> {
  const file = join(work, `loads-${modules.length}-${Date.now()}.txt`);
  const imports = modules.map((m) => `await import(${JSON.stringify(pathToFileURL(resolve(ROOT, 'dist', m)).href)});`).join('\n');
  await execa(process.execPath, ['--import', pathToFileURL(HOOKS).href, '--input-type=module', '-e', imports], { env: { RECORD_LOADS_FILE: file } });
  const urls = (await readFile(file, 'utf8')).split('\n');
  const names = urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((n): n is string => n !== undefined);
  return new Set(names);
}

describe('modules a broker process loads at start', () => {
  it('the tunnel and its token cache (the bench child, a process handed its tokens) load no Azure SDK', async () => {
    const loaded = await packagesLoadedBy(['broker/tunnel.js', 'azure/token-cache.js', 'broker/audit.js', 'broker/postgres/pool/postgres-pool.js']);
    expect([...loaded].filter((name) => name.startsWith('@azure/'))).toEqual([]);
    expect(loaded.has('jose')).toBe(true); // the token's expiry is read with jose: the hook saw the packages
  });

  it('`azdb proxy db` loads no database driver, no subprocess runner, no settings store', async () => {
    const loaded = await packagesLoadedBy(['cli/main.js', 'cli/commands/db-tunnel.js']);
    // It signs in at start, so the SDK is there: proof that the hook saw the packages at all.
    expect(loaded.has('@azure/identity')).toBe(true);
    for (const name of ['pg', 'mysql2', 'execa', 'conf', 'ajv', '@peculiar/x509', 'ink', 'react']) expect(loaded, name).not.toContain(name);
  });
});
