/**
 * Where audit lines end up: a file (appended, 0600) or a stream the caller owns (stdout for
 * `broker.audit.path: "-"`). One write at a time; a failed write says how much of it was written,
 * so the queue can try the rest again. Nothing here throws on a full disk or a closed pipe.
 */
import { close, mkdirSync, open, openSync, write } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { UserError, errorMessage } from '../errors.js';

export interface AuditOutput {
  /** The file's path, or `stdout`: for logs, metrics and /readyz. */
  readonly name: string;
  /** Writes all of `chunk`; rejects with an {@link AuditWriteError}. */
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
}

export class AuditWriteError extends Error {
  constructor(
    cause: unknown,
    /** Bytes of the chunk written before the failure. */
    readonly written: number,
  ) {
    super(errorMessage(cause), { cause });
    this.name = 'AuditWriteError';
  }
}

/**
 * Appends to `path`. The file is opened now, so a path azdb cannot write is a config error at
 * start or reload; after a failed write it is opened again for the next try (a full disk that
 * was freed, a file that was moved away).
 */
export function fileOutput(path: string): AuditOutput {
  let fd: number | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(path, 'a', 0o600);
  } catch (error) {
    throw new UserError(`cannot open the audit log ${path}: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`, {
      hint: 'Point broker.audit.path at a file azdb may create and append to (or "-" for stdout).',
    });
  }
  const reopen = (): Promise<number> =>
    new Promise((resolve, reject) => open(path, 'a', 0o600, (error, opened) => (error ? reject(error) : resolve(opened))));
  const writeSome = (into: number, chunk: Buffer, offset: number): Promise<number> =>
    new Promise((resolve, reject) => write(into, chunk, offset, chunk.length - offset, null, (error, n) => (error ? reject(error) : resolve(n))));
  const closeFd = (which: number): Promise<void> => new Promise((resolve) => close(which, () => resolve()));
  return {
    name: path,
    async write(chunk) {
      let written = 0;
      try {
        fd ??= await reopen();
        while (written < chunk.length) written += await writeSome(fd, chunk, written);
      } catch (error) {
        const failed = fd;
        fd = undefined;
        if (failed !== undefined) await closeFd(failed);
        throw new AuditWriteError(error, written);
      }
    },
    async close() {
      const open = fd;
      fd = undefined;
      if (open !== undefined) await closeFd(open);
    },
  };
}

/** Streams whose errors are already handled here (a sink is made at every reload). */
const quieted = new WeakSet<Writable>();

/**
 * Writes to `stream`, which the caller owns (closing the output does not end it). Its errors
 * (EPIPE when the reader went away, ENOSPC when stdout is a file on a full disk) reach the write
 * that failed, never the process: an unhandled 'error' on stdout would end every session.
 */
export function streamOutput(stream: Writable, name = 'stdout'): AuditOutput {
  if (!quieted.has(stream)) {
    quieted.add(stream);
    stream.on('error', () => {});
  }
  return {
    name,
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        if (stream.destroyed || stream.writableEnded) {
          reject(new AuditWriteError(stream.errored ?? new Error(`${name} is closed`), 0));
          return;
        }
        stream.write(chunk, (error) => (error ? reject(new AuditWriteError(error, 0)) : resolve()));
      }),
    close: async () => {},
  };
}
