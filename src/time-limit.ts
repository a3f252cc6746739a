/**
 * A time limit for work that may ignore its AbortSignal (a credential, a socket, a check): the
 * caller gets an answer by the deadline whatever the work does.
 */
import { ExternalError } from './errors.js';

/** Raised when the work's own time limit (not the caller's signal) ran out. */
export class TimeLimitExceeded extends ExternalError {
  constructor(readonly limitMs: number) {
    super(`no answer within ${formatSeconds(limitMs)}`);
  }
}

export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}

/**
 * Runs `work` with a signal that aborts after `limitMs` (or with `outer`), and settles no later
 * than that even when `work` ignores the signal. A timeout becomes {@link TimeLimitExceeded}.
 */
export async function withTimeLimit<T>(limitMs: number, outer: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timeout = new TimeLimitExceeded(limitMs);
  const onOuter = () => controller.abort(outer.reason);
  if (outer.aborted) onOuter();
  else outer.addEventListener('abort', onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    const fail = () => reject(controller.signal.reason instanceof Error ? controller.signal.reason : timeout);
    if (controller.signal.aborted) return fail();
    controller.signal.addEventListener('abort', fail, { once: true });
    timer = setTimeout(() => controller.abort(timeout), Math.max(0, limitMs));
  });
  try {
    const running = work(controller.signal);
    // The work may settle (reject) after the limit; nobody listens then.
    running.catch(() => {});
    limit.catch(() => {});
    return await Promise.race([running, limit]);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', onOuter);
    if (!controller.signal.aborted) controller.abort(new Error('finished'));
  }
}

