import { describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreatePasswordFile, readPasswordFile, writeGeneratedPassword } from '../../src/broker/password-file.js';
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
    expect(await readPasswordFile(await file('lf', 's3cret value of a listener\n', 0o600), 'l')).toEqual({ password: 's3cret value of a listener' });
    expect(await readPasswordFile(await file('crlf', 'abcdefghijklmnop\r\n', 0o400), 'l')).toEqual({ password: 'abcdefghijklmnop' });
    expect(await readPasswordFile(await file('bare', ' keeps its spaces ', 0o600), 'l')).toEqual({ password: ' keeps its spaces ' });
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
    const result = await readPasswordFile(await file('group', 'group-readable-password\n', 0o640), 'l');
    expect(result.password).toBe('group-readable-password');
    expect(result.warning).toMatch(/group-readable \(mode 0640\)/);
  });

  it.each([
    ['a single character', 'a', '1 characters, 1 different'],
    ['short', 'Sh0rt!pw', '8 characters, 8 different'],
    ['repetitive', 'abababababababababab', '20 characters, 2 different'],
  ])('refuses %s password as tunnels do, naming the file and never the password', async (_, text, said) => {
    const path = await file(`weak-listener-${text.length}`, `${text}\n`, 0o600);
    const error = (await readPasswordFile(path, 'orders@0.0.0.0:5432').catch((e: unknown) => e)) as UserError;
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`password_file of listener orders@0.0.0.0:5432 holds a weak password (${said}): ${path}`);
    expect(error.hint).toBe(
      `Use at least 16 characters, 8 of them different (\`openssl rand -base64 24 > ${path}\`), or, on a loopback listener, drop password_file and azdb generates one.`,
    );
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

describe('loadOrCreatePasswordFile (a tunnel password kept across runs)', () => {
  const subject = '--password-file';

  it('writes a new random password with mode 0600 (creating the folder 0700), then reads the same one back', async () => {
    const path = join(dir, 'kept', 'deeper', 'orders.password');
    const first = await loadOrCreatePasswordFile(path, subject);
    expect(first.created).toBe(true);
    expect(first.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await readFile(path, 'utf8')).toBe(`${first.password}\n`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'kept', 'deeper'))).mode & 0o777).toBe(0o700);
    expect(await loadOrCreatePasswordFile(path, subject)).toEqual({ password: first.password, created: false });
  });

  it('gives concurrent first runs one password', async () => {
    const path = join(dir, 'race.password');
    const all = await Promise.all([1, 2, 3, 4].map(() => loadOrCreatePasswordFile(path, subject)));
    expect(new Set(all.map((r) => r.password)).size).toBe(1);
    expect(all.filter((r) => r.created)).toHaveLength(1);
  });

  it('uses a strong password a person wrote', async () => {
    const path = await file('chosen', 'correct-horse-battery-staple\n', 0o600);
    expect(await loadOrCreatePasswordFile(path, subject)).toEqual({ password: 'correct-horse-battery-staple', created: false });
  });

  it.each([
    ['0640', 0o640, 'accessible to its group (mode 0640)'],
    ['0604', 0o604, 'accessible to every user (mode 0604)'],
  ])('refuses a file of mode %s, saying how to fix it and never showing the password', async (_label, mode, said) => {
    const path = await file(`loose-${mode.toString(8)}`, 'visible-secret-but-long-enough\n', mode);
    const error = (await loadOrCreatePasswordFile(path, subject).catch((e: unknown) => e)) as UserError;
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`--password-file is ${said}: ${path}`);
    expect(error.hint).toBe(`Run \`chmod 600 ${path}\`: the password must be yours alone.`);
    expect(error.message + error.hint).not.toContain('visible-secret');
    // Left as it was: azdb does not overwrite a person's file.
    expect(await readFile(path, 'utf8')).toBe('visible-secret-but-long-enough\n');
  });

  it.each([
    ['short', 'Sh0rt!pw', '8 characters, 8 different'],
    ['repetitive', 'abababababababababab', '20 characters, 2 different'],
    ['empty', '\n', 'exactly one non-empty line'],
  ])('refuses a %s password', async (name, text, said) => {
    const path = await file(`weak-${name}`, text, 0o600);
    const error = (await loadOrCreatePasswordFile(path, subject).catch((e: unknown) => e)) as UserError;
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain(said);
    if (name !== 'empty') expect(error.hint).toContain(`openssl rand -base64 24 > ${path}`);
    expect(error.message + (error.hint ?? '')).not.toContain(text.trim() || '\u0000');
  });
});
