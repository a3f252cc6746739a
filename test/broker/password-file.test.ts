import { describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPasswordFile, writeGeneratedPassword } from '../../src/broker/password-file.js';
import { UserError } from '../../src/errors.js';

const dir = await mkdtemp(join(tmpdir(), 'azdb-password-file-'));

async function file(name: string, text: string, mode: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  await chmod(path, mode);
  return path;
}

describe('readPasswordFile', () => {
  it('reads one line and drops its newline (LF or CRLF)', async () => {
    expect(await readPasswordFile(await file('lf', 's3cret value\n', 0o600), 'l')).toEqual({ password: 's3cret value' });
    expect(await readPasswordFile(await file('crlf', 'abc\r\n', 0o400), 'l')).toEqual({ password: 'abc' });
    expect(await readPasswordFile(await file('bare', ' keeps spaces ', 0o600), 'l')).toEqual({ password: ' keeps spaces ' });
  });

  it('refuses a file every user may read, naming it and the chmod, never the password', async () => {
    const path = await file('world', 'visible-secret\n', 0o644);
    const error = await readPasswordFile(path, 'orders@0.0.0.0:5432').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toContain(`orders@0.0.0.0:5432 is accessible to every user (mode 0644): ${path}`);
    expect((error as UserError).hint).toContain(`chmod 600 ${path}`);
    expect(String((error as UserError).message) + (error as UserError).hint).not.toContain('visible-secret');
  });

  it('accepts a group-readable file with a warning (Kubernetes secrets with fsGroup)', async () => {
    const result = await readPasswordFile(await file('group', 'pw\n', 0o640), 'l');
    expect(result.password).toBe('pw');
    expect(result.warning).toMatch(/group-readable \(mode 0640\)/);
  });

  it('refuses empty, multi-line, missing and non-regular files', async () => {
    await expect(readPasswordFile(await file('empty', '\n', 0o600), 'l')).rejects.toThrow(/exactly one non-empty line/);
    await expect(readPasswordFile(await file('two', 'a\nb\n', 0o600), 'l')).rejects.toThrow(/exactly one non-empty line/);
    await expect(readPasswordFile(join(dir, 'missing'), 'l')).rejects.toThrow(/ENOENT/);
    await expect(readPasswordFile(dir, 'l')).rejects.toThrow(/not a regular file/);
  });
});

describe('writeGeneratedPassword', () => {
  it('writes a fresh random password to a 0600 file in a 0700 folder, also over a looser existing file', async () => {
    const target = join(dir, 'state', 'serve');
    const first = await writeGeneratedPassword(target, 'orders-127.0.0.1-15432');
    expect(first.path).toBe(join(target, 'orders-127.0.0.1-15432.password'));
    expect(first.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await readFile(first.path, 'utf8')).toBe(`${first.password}\n`);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(target)).mode & 0o777).toBe(0o700);
    await chmod(first.path, 0o644);
    const second = await writeGeneratedPassword(target, 'orders-127.0.0.1-15432');
    expect(second.password).not.toBe(first.password);
    expect((await stat(second.path)).mode & 0o777).toBe(0o600);
  });

  it('keeps an IPv6 host out of the path syntax', async () => {
    const { path } = await writeGeneratedPassword(join(dir, 'v6'), 'orders-::1-15432');
    expect(path).toBe(join(dir, 'v6', 'orders-__1-15432.password'));
  });
});
