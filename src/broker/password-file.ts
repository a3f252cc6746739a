/**
 * Listener passwords of `azdb serve`: read from a listener's `password_file` (which must not be
 * readable by other users), or generated for a loopback listener without one and written to a
 * 0600 file in the state folder, whose path (never the password) is what the operator is told.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';

/** More than any password needs; a wrong path (a log, a device) fails fast. */
const MAX_PASSWORD_FILE_BYTES = 4096;

export interface PasswordFileResult {
  password: string;
  /** Set when the file is group-readable: accepted (Kubernetes secrets with fsGroup are), worth saying. */
  warning?: string;
}

/**
 * Reads `path`: one line, the trailing newline dropped. Refused when others may read or write it,
 * when it is empty, or when it is not a regular file.
 */
export async function readPasswordFile(path: string, listener: string): Promise<PasswordFileResult> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new UserError(`cannot read password_file of listener ${listener}: ${(error as NodeJS.ErrnoException).code ?? String(error)} ${path}`, {
      hint: 'Create it with the password on one line (e.g. `openssl rand -base64 24 > FILE && chmod 600 FILE`) or fix the path.',
    });
  }
  if (!info.isFile()) throw new UserError(`password_file of listener ${listener} is not a regular file: ${path}`);
  const mode = info.mode & 0o777;
  if (mode & 0o007) {
    throw new UserError(`password_file of listener ${listener} is accessible to every user (mode ${octal(mode)}): ${path}`, {
      hint: `Run \`chmod 600 ${path}\` (or 640 with a group only azdb is in).`,
    });
  }
  if (info.size > MAX_PASSWORD_FILE_BYTES) {
    throw new UserError(`password_file of listener ${listener} is ${info.size} bytes; expected one line with the password: ${path}`);
  }
  const handle = await open(path, 'r');
  let text: string;
  try {
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '' || /[\r\n]/.test(password)) {
    throw new UserError(`password_file of listener ${listener} must hold the password on exactly one non-empty line: ${path}`);
  }
  return mode & 0o070 ? { password, warning: `password_file ${path} of listener ${listener} is group-readable (mode ${octal(mode)})` } : { password };
}

/** A new random local password (a tunnel's, a listener's): 192 bits, URL-safe. */
export function newLocalPassword(): string {
  return randomBytes(24).toString('base64url');
}

/** A new random password for a listener, written to `dir/NAME.password` with mode 0600. */
export async function writeGeneratedPassword(dir: string, name: string): Promise<{ password: string; path: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.password`);
  const password = newLocalPassword();
  const handle = await open(path, 'w', 0o600);
  try {
    // An existing file keeps its old mode on open; make sure it is ours alone before writing.
    await handle.chmod(0o600);
    await handle.writeFile(`${password}\n`);
  } finally {
    await handle.close();
  }
  await chmod(dir, 0o700).catch(() => {});
  return { password, path };
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
