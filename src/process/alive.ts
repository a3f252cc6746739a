/**
 * Whether a process is alive, apart from exec.ts: the tunnel records of every `azdb proxy db`
 * check it, and that process starts no subprocess, so it need not load execa.
 */

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
