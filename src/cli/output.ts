/**
 * Where command output goes. With `--json` stdout carries exactly one JSON document and every
 * human line (progress, warnings) goes to stderr; without it, results go to stdout.
 */
import type { Writable } from 'node:stream';

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** stdout is a terminal (a person reads it), not a file or a pipe. */
  readonly isTTY: boolean;
  /** A human result line (stdout, or stderr under --json). */
  line(text?: string): void;
  /** Progress, warnings and errors: always stderr. */
  info(text: string): void;
  warn(text: string): void;
  /** The one JSON document of --json. */
  document(value: unknown): void;
}

export interface OutputStreams {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
}

export function createOutput(json: boolean, streams: OutputStreams): Output {
  const color = streams.isTTY && !('NO_COLOR' in streams.env && streams.env.NO_COLOR !== '') && streams.env.TERM !== 'dumb';
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  return {
    json,
    color,
    isTTY: streams.isTTY,
    line(text = '') {
      (json ? streams.stderr : streams.stdout).write(`${text}\n`);
    },
    info(text) {
      streams.stderr.write(`${text}\n`);
    },
    warn(text) {
      streams.stderr.write(`${paint('33', 'warning:')} ${text}\n`);
    },
    document(value) {
      streams.stdout.write(`${JSON.stringify(value, null, json ? 2 : 0)}\n`);
    },
  };
}

/** Says `text` on stderr if the work is still going after `afterMs`; call the result when it is done. */
export function noteIfSlow(out: Pick<Output, 'info'>, text: string, afterMs = 1_000): () => void {
  const timer = setTimeout(() => out.info(text), afterMs);
  return () => clearTimeout(timer);
}
