/**
 * The one way azdb starts subprocesses (psql, mysql, az, openssl...). Everything goes through
 * execa so that argv stays an array (no shell), secrets travel in the environment or files, and a
 * missing program becomes a user-fixable error instead of an ENOENT stack.
 */
import { constants } from 'node:os';
import { execa, type Options, type ResultPromise } from 'execa';
import { ExternalError, UserError } from '../errors.js';

export interface RunOptions {
  /** Extra environment (merged over process.env unless `extendEnv` is false). */
  env?: Record<string, string | undefined>;
  extendEnv?: boolean;
  cwd?: string;
  /** 'inherit' hands the terminal to the child (psql taking over the TTY). */
  stdio?: 'inherit' | 'pipe';
  input?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Own session and process group: the terminal's Ctrl+C (SIGINT to its foreground group) does not reach it. */
  detached?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function execaOptions(options: RunOptions): Options {
  return {
    env: options.env,
    extendEnv: options.extendEnv ?? true,
    cwd: options.cwd,
    stdio: options.stdio ?? 'pipe',
    input: options.input,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
    detached: options.detached ?? false,
    reject: false,
    stripFinalNewline: true,
  };
}

/**
 * Runs a program to completion; a non-zero exit is returned, not thrown. A program ended by a
 * signal (psql by Ctrl+C while it connects) exits 128 + the signal's number, as a shell reports it.
 */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await execa(file, args, execaOptions(options));
  const killedBy = result.isTerminated && !result.isCanceled && !result.timedOut && result.signal ? constants.signals[result.signal] : undefined;
  if (result.failed && result.exitCode === undefined && killedBy === undefined) throw startFailure(file, result);
  return {
    exitCode: killedBy !== undefined ? 128 + killedBy : result.exitCode ?? 1,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
  };
}

/** Starts a long-running program and hands back the child (for servers the harness starts). */
export function spawnProcess(file: string, args: readonly string[], options: RunOptions = {}): ResultPromise {
  return execa(file, args, execaOptions(options));
}

function startFailure(file: string, result: { code?: string; originalMessage?: string; timedOut?: boolean; isCanceled?: boolean; signal?: string }): Error {
  if (result.code === 'ENOENT') {
    return new UserError(`${file} is not installed or not on PATH`, { hint: `Install ${file} (for example with your package manager) and try again.` });
  }
  if (result.timedOut) return new ExternalError(`${file} did not finish in time`);
  if (result.isCanceled) return new ExternalError(`${file} was cancelled`);
  return new ExternalError(`${file} could not be started: ${result.originalMessage ?? result.signal ?? 'unknown error'}`);
}

/** Finds a program on PATH without running it; returns its path or undefined. */
export async function which(program: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const { access, constants } = await import('node:fs/promises');
  const { delimiter, join } = await import('node:path');
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
