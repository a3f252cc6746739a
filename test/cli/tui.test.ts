/**
 * `azdb` / `azdb tui` without a terminal (or with --json): the `db ls` listing, a line on stderr
 * saying the picker needs a terminal, exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { main } from '../../src/cli/main.js';

let dir: string;
let config: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-tui-cli-'));
  config = join(dir, 'azdb.yaml');
  await writeFile(
    config,
    ['version: v1', 'databases:', '  - name: orders', '    protocol: postgres', '    uri: orders.postgres.database.azure.com:5432', '    labels: {env: prod}', ''].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(argv, { stdout, stderr, env: { NO_COLOR: '1', AZDB_CONFIG: config, AZDB_STATE_DIR: dir }, isTTY: false });
  return { code, stdout: out, stderr: err };
}

describe('azdb tui without a terminal', () => {
  it.each([[[]], [['tui']]])('`azdb %j` prints the listing and says the picker needs a terminal', async (argv) => {
    const result = await cli(...argv);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('The picker needs a terminal (stdin or stdout is not a TTY)');
    expect(result.stdout).toMatch(/^Name\s+Protocol\s+URI/);
    expect(result.stdout).toMatch(/orders\s+postgres\s+orders\.postgres\.database\.azure\.com:5432/);
  });

  it('with --json prints the `db ls --json` document only on stdout', async () => {
    const result = await cli('--json', 'tui');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      { name: 'orders', protocol: 'postgres', uri: 'orders.postgres.database.azure.com:5432', labels: { env: 'prod' }, db_users: ['*'], db_names: ['*'] },
    ]);
    expect(result.stderr).toContain('--json was given');
  });
});
