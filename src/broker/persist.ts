/**
 * Small file helpers for persisted secrets (the local CA keys, the emulator's token signing key):
 * creation that is safe when several processes race, and atomic replacement.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ExternalError } from '../errors.js';

/** Rounds of "read, else replace" before giving up: each round another process may have won. */
const MAX_CREATE_ATTEMPTS = 5;

/**
 * What `path` holds when `parse` accepts it; otherwise the file is replaced by `create()`'s text
 * (mode 0600) and read again. Of several processes racing, exactly one creator wins and every one
 * returns what it wrote.
 */
export async function loadOrCreateFile<T>(path: string, parse: (text: string) => T | undefined, create: () => Promise<string>): Promise<T> {
  for (let attempt = 0; attempt < MAX_CREATE_ATTEMPTS; attempt++) {
    const text = await readTextIfExists(path);
    if (text !== undefined) {
      const parsed = parse(text);
      if (parsed !== undefined) {
        await chmod(path, 0o600);
        return parsed;
      }
      await removeIfUnchanged(path, text); // corrupt or expiring: replace it
    }
    await createExclusively(path, await create(), 0o600);
  }
  throw new ExternalError(`could not write ${path}: other processes kept replacing it`, { hint: `Stop the other azdb processes using ${dirname(path)}, then try again.` });
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Creates `path` with `content` unless it exists (a hard link of a complete temporary file, so a
 * reader never sees half a file and exactly one of several racing creators wins).
 */
export async function createExclusively(path: string, content: string, mode: number): Promise<void> {
  const temp = await writeTemp(path, content, mode);
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temp);
  }
}

/** Makes `path` hold `content`, replacing it atomically when it differs. */
export async function ensureFileContent(path: string, content: string, mode: number): Promise<void> {
  if ((await readTextIfExists(path)) === content) return;
  await rename(await writeTemp(path, content, mode), path);
}

/** Removes `path` if it still holds `seen` (used to replace a corrupt or stale file). */
export async function removeIfUnchanged(path: string, seen: string): Promise<void> {
  if ((await readTextIfExists(path)) !== seen) return;
  try {
    await unlink(path);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

async function writeTemp(path: string, content: string, mode: number): Promise<string> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode); // the umask may have narrowed or the file may have existed
  return temp;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
