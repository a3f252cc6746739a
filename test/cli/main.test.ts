/**
 * The CLI's surface: every command of the DESIGN contract is there with its help, commands whose
 * issue has not landed say so and exit 1, usage errors exit 2, and --json keeps stdout clean.
 */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { hintFor } from '../../src/cli/context.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(argv, { stdout, stderr, env: { NO_COLOR: '1', AZDB_CONFIG: '/nonexistent/azdb.yaml' }, isTTY: false });
  return { code, stdout: out, stderr: err };
}

const CONTRACT: Array<{ argv: string[]; flags: string[] }> = [
  { argv: ['tui'], flags: [] },
  { argv: ['setup'], flags: [] },
  { argv: ['demo'], flags: ['--no-tui'] },
  { argv: ['db', 'ls'], flags: [] },
  { argv: ['db', 'connect'], flags: ['--db-user', '--db-name'] },
  { argv: ['db', 'logout'], flags: [] },
  { argv: ['proxy', 'db'], flags: ['--db-user', '--db-name', '--host', '--port', '--password-file'] },
  { argv: ['queries'], flags: ['--db-user', '--db-name', '--cancel', '--terminate'] },
  { argv: ['doctor'], flags: [] },
  { argv: ['creds'], flags: [] },
  { argv: ['config', 'create'], flags: ['--output', '--azure-postgres-discovery', '--azure-mysql-discovery', '--subscription', '--resource-group', '--tag', '--force'] },
  { argv: ['config', 'check'], flags: [] },
  { argv: ['serve'], flags: ['--max-connections', '--drain-seconds'] },
];

describe('azdb --help', () => {
  it('lists every top-level command of the contract', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    for (const name of ['tui', 'setup', 'demo', 'db', 'proxy', 'queries', 'doctor', 'creds', 'config', 'serve']) {
      expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
    expect(stdout).toContain('--config <path>');
    expect(stdout).toContain('--json');
  });

  it.each(CONTRACT)('documents `azdb $argv` with its flags', async ({ argv, flags }) => {
    const { code, stdout } = await cli(...argv, '--help');
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: azdb ${argv.join(' ')}`);
    for (const flag of flags) expect(stdout).toContain(flag);
    expect(stdout).toContain('--json'); // global options are shown on every command
  });
});

describe('exit codes and messages', () => {
  it('exits 2 on an unknown command or flag', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('db', 'ls', '--bogus')).code).toBe(2);
    const badPort = await cli('proxy', 'db', 'orders', '--port', '70000');
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('--port must be an integer from 0 to 65535');
  });

  it('names an unknown command and the nearest real one instead of handing it to the picker', async () => {
    const typo = await cli('doctr');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('error: unknown command "doctr"');
    expect(typo.stderr).toContain('Did you mean `azdb doctor`?');
    expect(typo.stderr).not.toContain("too many arguments for 'tui'");
    const afterConfig = await cli('--config', '/x.yaml', 'frobnicate');
    expect(afterConfig.stderr).toContain('error: unknown command "frobnicate"');
    const nested = await cli('db', 'lss');
    expect(nested.code).toBe(2);
    expect(nested.stderr).toContain("unknown command 'lss'");
  });

  it('prints its version with --version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await cli(flag);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('rejects --cancel together with --terminate as a usage error', async () => {
    const result = await cli('queries', 'orders', '--cancel', '1', '--terminate', '2');
    expect(result.code).toBe(2);
  });

  it('exits 1 with the reason and a hint when the config is missing; under --json stdout is one failure document', async () => {
    const result = await cli('--json', 'db', 'ls');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: config file \/nonexistent\/azdb.yaml does not exist\nhint: /m);
    const document = JSON.parse(result.stdout) as { ok: boolean; error: { message: string; hint: string } };
    expect(document.ok).toBe(false);
    expect(document.error.message).toBe('config file /nonexistent/azdb.yaml does not exist');
    expect(document.error.hint).toContain('azdb config create');
    expect(Object.keys(document.error).sort()).toEqual(['hint', 'message']);
  });

  it('keeps --config in the commands its hints name, so following one uses the same config', async () => {
    const result = await cli('--config', '/srv/azdb/prod.yaml', 'db', 'ls');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('`azdb --config /srv/azdb/prod.yaml config create`');
    expect(result.stderr).not.toMatch(/`azdb (?!--config)/);
    expect(hintFor("run `azdb doctor orders`", "/my dir/it's.yaml")).toBe("run `azdb --config '/my dir/it'\\''s.yaml' doctor orders`");
    expect(hintFor('run `azdb doctor orders`', undefined)).toBe('run `azdb doctor orders`');
  });

  it('prints a failure document for usage errors under --json, and nothing on stdout without it', async () => {
    const json = await cli('--json', 'proxy', 'db', 'orders', '--port', '70000');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ ok: false, error: { message: '--port must be an integer from 0 to 65535, got "70000"', hint: '' } });
    const unknown = await cli('--json', 'db', 'ls', '--frobnicate');
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ ok: false, error: { message: "unknown option '--frobnicate'" } });
    const human = await cli('db', 'ls');
    expect(human.stdout).toBe('');
  });
});
