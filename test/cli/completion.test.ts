/**
 * Shell completion as a shell runs it: bash sources `azdb completion bash` and its completion
 * function asks azdb for the words; fish's script is checked for the same question.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, requireBuild } from '../helpers/cli.js';

let dir = '';
let env: Record<string, string> = {};

beforeAll(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), 'azdb-completion-'));
  // `azdb` on PATH, as after `npm install -g`.
  await writeFile(join(dir, 'azdb'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  await chmod(join(dir, 'azdb'), 0o755);
  const config = join(dir, 'azdb.yaml');
  await writeFile(config, ['version: v1', 'databases:', '  - {name: orders, protocol: postgres, uri: "a.example:5432"}', '  - {name: shopdb, protocol: mysql, uri: "b.example:3306"}', ''].join('\n'));
  env = { PATH: `${dir}:${process.env.PATH ?? ''}`, AZDB_CONFIG: config, HOME: dir };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What bash offers for `line` with the cursor at its end (the last word may be empty). */
async function bashComplete(...words: string[]): Promise<string[]> {
  const script = ['source <(azdb completion bash)', `COMP_WORDS=(azdb ${words.map((w) => `'${w}'`).join(' ')})`, `COMP_CWORD=${words.length}`, '_azdb_complete', 'printf "%s\\n" "${COMPREPLY[@]}"'].join('\n');
  const result = await execa('bash', ['-c', script], { env, extendEnv: false });
  return result.stdout.split('\n').filter(Boolean);
}

describe('azdb completion', () => {
  it('completes commands, subcommands, flags and database names in bash', async () => {
    expect(await bashComplete('d')).toEqual(['db', 'demo', 'doctor']);
    expect(await bashComplete('db', '')).toEqual(['connect', 'logout', 'ls']);
    expect(await bashComplete('db', 'connect', '')).toEqual(['orders', 'shopdb']);
    expect(await bashComplete('proxy', 'db', 's')).toEqual(['shopdb']);
    expect(await bashComplete('proxy', 'db', 'orders', '--p')).toEqual(['--password-file', '--port']);
    expect(await bashComplete('proxy', 'db', 'orders', '--password-file', '')).toEqual([]); // a file: the shell completes it
    expect(await bashComplete('queries', 'orders', '--cancel', '')).toEqual([]); // a pid comes next
    expect(await bashComplete('completion', '')).toEqual(['bash', 'fish', 'zsh']);
  });

  it('prints scripts for zsh and fish, and refuses other shells', async () => {
    const zsh = await execa(process.execPath, [BIN, 'completion', 'zsh']);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(zsh.stdout).toContain('complete -o default -F _azdb_complete azdb');
    const fish = await execa(process.execPath, [BIN, 'completion', 'fish']);
    expect(fish.stdout).toContain('complete -c azdb');
    expect(fish.stdout).toContain('azdb __complete --');
    const other = await execa(process.execPath, [BIN, 'completion', 'tcsh'], { reject: false });
    expect(other.exitCode).toBe(2);
    expect(other.stderr).toContain('no completion for "tcsh"');
  });
});
