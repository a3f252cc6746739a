/**
 * What every diagnostic returns, and the runner that gives each check its time limit. A check
 * is `(ctx, deps, signal) → CheckResult` and never throws; the runner still catches, so a
 * defect or a hung dependency becomes a `fail` naming the check rather than a stuck doctor.
 */
import { errorMessage } from '../errors.js';
import { TimeLimitExceeded, withTimeLimit } from '../time-limit.js';

export { formatSeconds } from '../time-limit.js';

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
    if (error instanceof TimeLimitExceeded) {
      const words = meta.onTimeout?.(error.limitMs) ?? { detail: `timed out: ${error.message}`, hint: '' };
      return result(meta.id, meta.title, 'fail', words.detail, words.hint);
    }
    return result(meta.id, meta.title, 'fail', `the check itself failed: ${errorMessage(error)}`, 'This is probably a bug in azdb; AZDB_DEBUG=1 shows more.');
  }
}
