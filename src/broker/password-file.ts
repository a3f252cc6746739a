/**
 * Local passwords kept in files. `azdb serve`: read from a listener's `password_file` (which must
 * not be readable by other users), or generated for a loopback listener without one and written to
 * a 0600 file in the state folder, whose path (never the password) is what the operator is told.
 * Tunnels (`azdb proxy db --password-file`, the picker): a file of the user's alone, read when it
 * exists and else written with a new random password, so the next tunnel has the same one.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';

/** More than any password needs; a wrong path (a log, a device) fails fast. */
const MAX_PASSWORD_FILE_BYTES = 4096;
/**
 * A password a person chose (a tunnel's, a listener's password_file) must have at least this
 * many characters, this many different: the login backoff slows guessing, it cannot save `a`.
 */
const MIN_PASSWORD_LENGTH = 16;
const MIN_PASSWORD_DISTINCT = 8;

interface FilePolicy {
  /** What the file is, for messages: `password_file of listener X`, `--password-file`. */
  subject: string;
  /** A group-readable file: accepted with a warning (a service's secret), or refused (a person's). */
  groupReadable: 'warn' | 'refuse';
  /** A short or repetitive password is refused; what to do besides choosing a better one. */
  orElse: string;
}

export interface PasswordFileResult {
  password: string;
  /** Set when the file is group-readable: accepted (Kubernetes secrets with fsGroup are), worth saying. */
  warning?: string;
}

/**
 * Reads `path`: one line, the trailing newline dropped. Refused when others may read or write it,
 * when it is empty, or when it is not a regular file.
 */
export function readPasswordFile(path: string, listener: string): Promise<PasswordFileResult> {
  return readSecretFile(path, {
    subject: `password_file of listener ${listener}`,
    groupReadable: 'warn',
    orElse: 'or, on a loopback listener, drop password_file and azdb generates one',
  });
}

/**
 * A tunnel's password kept in `path`: read when the file exists (it must be the user's alone and
 * hold a strong password), else a new random one written there with mode 0600 (`created`).
 */
export async function loadOrCreatePasswordFile(path: string, subject: string): Promise<{ password: string; created: boolean }> {
  const policy: FilePolicy = { subject, groupReadable: 'refuse', orElse: 'or delete the file and azdb writes a random password to it' };
  const password = newLocalPassword();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    // It exists (or another azdb wrote it a moment ago): it is the password.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { password: (await readSecretFile(path, policy)).password, created: false };
    throw error;
  }
  try {
    await handle.writeFile(`${password}\n`);
  } finally {
    await handle.close();
  }
  return { password, created: true };
}

/** The file is missing or cannot be read here (as opposed to read and refused). */
export class PasswordFileUnreadable extends UserError {
  constructor(subject: string, path: string, error: unknown) {
    super(`cannot read ${subject}: ${(error as NodeJS.ErrnoException).code ?? String(error)} ${path}`, {
      hint: 'Create it with the password on one line (e.g. `openssl rand -base64 24 > FILE && chmod 600 FILE`) or fix the path.',
    });
  }
}

async function readSecretFile(path: string, policy: FilePolicy): Promise<PasswordFileResult> {
  const { subject } = policy;
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new PasswordFileUnreadable(subject, path, error);
  }
  if (!info.isFile()) throw new UserError(`${subject} is not a regular file: ${path}`);
  const mode = info.mode & 0o777;
  if (mode & 0o007) {
    throw new UserError(`${subject} is accessible to every user (mode ${octal(mode)}): ${path}`, {
      hint: policy.groupReadable === 'warn' ? `Run \`chmod 600 ${path}\` (or 640 with a group only azdb is in).` : `Run \`chmod 600 ${path}\`: the password must be yours alone.`,
    });
  }
  if (mode & 0o070 && policy.groupReadable === 'refuse') {
    throw new UserError(`${subject} is accessible to its group (mode ${octal(mode)}): ${path}`, { hint: `Run \`chmod 600 ${path}\`: the password must be yours alone.` });
  }
  if (info.size > MAX_PASSWORD_FILE_BYTES) {
    throw new UserError(`${subject} is ${info.size} bytes; expected one line with the password: ${path}`);
  }
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new PasswordFileUnreadable(subject, path, error);
  }
  let text: string;
  try {
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '' || /[\r\n]/.test(password)) {
    throw new UserError(`${subject} must hold the password on exactly one non-empty line: ${path}`);
  }
  if (password.length < MIN_PASSWORD_LENGTH || new Set(password).size < MIN_PASSWORD_DISTINCT) {
    throw new UserError(`${subject} holds a weak password (${password.length} characters, ${new Set(password).size} different): ${path}`, {
      hint: `Use at least ${MIN_PASSWORD_LENGTH} characters, ${MIN_PASSWORD_DISTINCT} of them different (\`openssl rand -base64 24 > ${path}\`), ${policy.orElse}.`,
    });
  }
  return mode & 0o070 ? { password, warning: `${subject} is group-readable (mode ${octal(mode)}): ${path}` } : { password };
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
