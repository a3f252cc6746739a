/**
 * What every diagnostic returns, and the runner that gives each check its time limit. A check
 * is `(ctx, deps, signal) → CheckResult` and never throws; the runner still catches, so a
 * defect or a hung dependency becomes a `fail` naming the check rather than a stuck doctor.
 */
import { errorMessage } from '../errors.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do next; '' when there is nothing to do. */
  hint: string;
}

export type Check<Ctx, Deps> = (ctx: Ctx, deps: Deps, signal: AbortSignal) => Promise<CheckResult>;

export function result(id: string, title: string, status: CheckStatus, detail: string, hint = ''): CheckResult {
  return { id, title, status, detail, hint };
}

/** Raised inside a check when its own time limit (not the caller's) ran out. */
export class CheckTimeout extends Error {
  constructor(readonly limitMs: number) {
    super(`no answer within ${formatSeconds(limitMs)}`);
    this.name = 'CheckTimeout';
  }
}

export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}

/**
 * Runs `work` with a signal that aborts after `limitMs` (or with `outer`), and settles no later
 * than that even when `work` ignores the signal. A timeout becomes {@link CheckTimeout}.
 */
export async function withTimeLimit<T>(limitMs: number, outer: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timeout = new CheckTimeout(limitMs);
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
    if (!controller.signal.aborted) controller.abort(new Error('check finished'));
  }
}

/**
 * Runs one check under a time limit; a thrown error or a timeout becomes a `fail` result with
 * `onTimeout`'s words (what probably hangs and what to do).
 */
export async function runCheck<Ctx, Deps>(
  meta: { id: string; title: string; limitMs: number; onTimeout?: (limitMs: number) => { detail: string; hint: string } },
  check: Check<Ctx, Deps>,
  ctx: Ctx,
  deps: Deps,
  signal: AbortSignal,
): Promise<CheckResult> {
  try {
    return await withTimeLimit(meta.limitMs, signal, (inner) => check(ctx, deps, inner));
  } catch (error) {
    if (error instanceof CheckTimeout) {
      const words = meta.onTimeout?.(error.limitMs) ?? { detail: `timed out: ${error.message}`, hint: '' };
      return result(meta.id, meta.title, 'fail', words.detail, words.hint);
    }
    return result(meta.id, meta.title, 'fail', `the check itself failed: ${errorMessage(error)}`, 'This is probably a bug in azdb; AZDB_DEBUG=1 shows more.');
  }
}
