/**
 * What the two real servers of the emulator (embedded PostgreSQL, Debian's MariaDB) share about
 * their processes and folders: the system user they run as when azdb is root, the folders that
 * user must be able to enter, and stopping a server an earlier, killed azdb left running.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ExternalError, UserError } from '../errors.js';
import { isAlive } from '../process/alive.js';
import { run } from '../process/exec.js';

const POLL_MS = 25;

/** Signals `pid` and waits until it is gone; `what` names it in the error when it does not stop. */
export async function stopProcess(pid: number, signal: NodeJS.Signals, what: string, timeoutMs: number): Promise<void> {
  process.kill(pid, signal);
  for (let waited = 0; isAlive(pid); waited += POLL_MS) {
    if (waited > timeoutMs) throw new ExternalError(`${what} (pid ${pid}) does not stop`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** uid and gid of a system user, or undefined when there is none. */
export async function systemUserIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return undefined;
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

/**
 * A server started as another user fails with a bare "Permission denied" when a folder above its
 * data is closed to others (`mktemp -d` makes 0700 folders). Say which one and what to do, and
 * leave its mode alone: it is the user's folder. `who` says what runs as whom.
 */
export async function requireTraversable(dir: string, who: string): Promise<void> {
  for (let current = dir; ; current = dirname(current)) {
    const { mode } = await stat(current);
    if ((mode & 0o001) === 0) {
      throw new UserError(`${who}, which cannot enter ${current} (mode ${(mode & 0o777).toString(8)})`, {
        hint: `Run \`chmod o+x ${current}\`, or point AZDB_STATE_DIR at a folder others may enter.`,
      });
    }
    if (dirname(current) === current) return;
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
