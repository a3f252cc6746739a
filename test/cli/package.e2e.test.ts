/**
 * azdb as a package: `npm pack` ships what it needs to run (bin, dist, docs), and a global
 * install of the tarball puts a working `azdb` on PATH.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
let work = '';

beforeAll(async () => {
  requireBuild();
  work = await mkdtemp(join(tmpdir(), 'azdb-package-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the azdb package', () => {
  it('installs globally from its tarball and runs as azdb', { timeout: 300_000 }, async () => {
    // dist/ is built already (npm test builds first); prepack would build it again.
    const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);
    expect(files).toContain('bin/azdb.js');
    expect(files).toContain('dist/azdb.js');
    expect(files).toContain('docs/architecture.md');
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);

    const prefix = join(work, 'global');
    // The dependencies come from the npm cache that installing the clone filled.
    await execa('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, info!.filename)], { cwd: work });
    const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, AZDB_CONFIG: join(work, 'none.yaml'), NO_COLOR: '1' };
    const version = await execa('azdb', ['--version'], { env, cwd: work });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await execa('azdb', ['--help'], { env, cwd: work });
    for (const command of ['tui', 'setup', 'demo', 'db', 'proxy', 'queries', 'doctor', 'creds', 'config', 'serve']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    const ls = await execa('azdb', ['db', 'ls'], { env, cwd: work, reject: false });
    expect(ls.exitCode).toBe(1);
    expect(ls.stderr).toContain(`error: config file ${join(work, 'none.yaml')} does not exist`);
  });
});
