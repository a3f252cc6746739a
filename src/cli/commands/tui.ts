/**
 * `azdb` / `azdb tui`: the connection picker. It needs a terminal: with `--json`, or when stdin
 * or stdout is not a TTY, it prints the `azdb db ls` listing instead (and says why on stderr)
 * and exits 0, so scripts that run plain `azdb` get something useful.
 */
import { openSync } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';
import { runPicker, type TerminalInput } from '../../ui/run-picker.js';
import type { CliContext } from '../context.js';
import { createTuiApi } from '../../core/picker.js';
import { dbLs } from './db-ls.js';

/** Both ends on a terminal, checked without creating process.stdin (that would claim fd 0). */
export function isInteractive(): boolean {
  return isatty(0) && isatty(1);
}

export async function tui(ctx: CliContext): Promise<void> {
  if (ctx.out.json || !isInteractive()) {
    ctx.out.info(`The picker needs a terminal (${ctx.out.json ? '--json was given' : 'stdin or stdout is not a TTY'}); listing the databases as \`azdb db ls\` does.`);
    await dbLs(ctx);
    return;
  }
  await runTuiSession(ctx);
}

/**
 * The picker over the config of `ctx` until the user quits, SIGTERM, or SIGINT while no client
 * runs (a client's Ctrl+C is its own: psql cancels the query), or SIGHUP. Every tunnel is closed on
 * the way out.
 */
export async function runTuiSession(ctx: CliContext): Promise<void> {
  const api = await createTuiApi(ctx);
  const stop = new AbortController();
  const onSigint = () => {
    if (!api.clientRunning) stop.abort();
  };
  const onSigterm = () => stop.abort();
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('SIGHUP', onSigterm); // the terminal went away
  try {
    await runPicker({ api, color: ctx.out.color, signal: stop.signal, openInput: openTerminalInput });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.off('SIGHUP', onSigterm);
    const open = api.tunnels().length;
    await api.close();
    if (open > 0) ctx.out.info(`Closed ${open} tunnel${open === 1 ? '' : 's'}.`);
  }
}

/**
 * A fresh read stream on the controlling terminal for each mount of Ink, destroyed when Ink
 * unmounts: psql and mariadb then read fd 0 alone (a Node stream on fd 0 would keep reading and
 * steal their keystrokes). Falls back to process.stdin where /dev/tty cannot be opened.
 */
export function openTerminalInput(): TerminalInput {
  try {
    const stream = new ReadStream(openSync('/dev/tty', 'r'));
    return { stream: stream as unknown as NodeJS.ReadStream, close: () => stream.destroy() };
  } catch {
    return { stream: process.stdin, close: () => process.stdin.pause() };
  }
}
