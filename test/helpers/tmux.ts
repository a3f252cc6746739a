/**
 * One pane of a private tmux server, driven as a person would: start an interactive shell, type,
 * press keys, and poll what the pane shows with a deadline.
 */
import { readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { waitFor } from './wait.js';

export interface TmuxPane {
  /** A tmux command on this server; its stdout (failures are not thrown). */
  run(...args: string[]): Promise<string>;
  /** The whole pane with its history, wrapped lines joined. */
  screen(): Promise<string>;
  /** Only what is on screen now. */
  visible(): Promise<string>;
  /** Polls `capture` (@default visible) until `check` holds; on timeout the error shows the pane. */
  until(check: (text: string) => boolean, what: string, timeoutMs: number, capture?: () => Promise<string>): Promise<string>;
  keys(...names: string[]): Promise<string>;
  /** Literal text (a trailing `;` would end tmux's command, so it is escaped). */
  type(text: string): Promise<string>;
  /**
   * A new session running an interactive bash with job control in a clean environment
   * (PATH, HOME, TERM, LANG, `AZDB_STATE_DIR=stateDir`, prompt `$ `).
   */
  startShell(width: number, height: number, stateDir: string): Promise<void>;
}

export function tmuxPane(tmuxPath: string, socket: string, pane: string): TmuxPane {
  const run = async (...args: string[]) => (await execa(tmuxPath, ['-L', socket, ...args], { reject: false })).stdout;
  const visible = () => run('capture-pane', '-p', '-J', '-t', pane);
  return {
    run,
    visible,
    screen: () => run('capture-pane', '-p', '-J', '-t', pane, '-S', '-500'),
    async until(check, what, timeoutMs, capture = visible) {
      let last = '';
      try {
        return await waitFor(async () => {
          last = await capture();
          return check(last) && last;
        }, what, timeoutMs);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- pane ---\n${last}`);
      }
    },
    keys: (...names) => run('send-keys', '-t', pane, ...names),
    type: (text) => run('send-keys', '-t', pane, '-l', text.endsWith(';') ? `${text.slice(0, -1)}\\;` : text),
    async startShell(width, height, stateDir) {
      const shell = ['env', '-i', `PATH=${process.env.PATH}`, `HOME=${process.env.HOME}`, 'TERM=xterm-256color', 'LANG=C.UTF-8', `AZDB_STATE_DIR=${stateDir}`, 'PS1=$ ', 'bash', '--norc', '--noprofile', '-i'];
      const command = shell.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      await execa(tmuxPath, ['-L', socket, 'new-session', '-d', '-s', pane, '-x', String(width), '-y', String(height), command]);
    },
  };
}

/** Processes whose command line names `dir` (postgres, mariadbd... of a demo state folder), tmux aside. */
export async function processesOf(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes(dir) && !cmdline.includes('tmux')) found.push(`${pid} ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
