import { Interrupted } from './exit.js';

/** Resolves on the first of `signals` to arrive; `dispose()` removes the handlers. */
export function untilSignal(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let resolve: (signal: NodeJS.Signals) => void = () => {};
  const promise = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => resolve(signal);
  for (const signal of signals) process.on(signal, onSignal);
  return {
    promise,
    dispose() {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}

/**
 * Runs `work` with a signal that the first SIGINT / SIGTERM of `stop` aborts: it then ends at
 * once with {@link Interrupted}, even if the work does not heed its signal.
 */
export async function interruptible<T>(stop: Pick<ReturnType<typeof untilSignal>, 'promise'>, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let settled = false;
  const interrupted = stop.promise.then((signal) => {
    const reason = new Interrupted(signal);
    if (!settled) controller.abort(reason);
    throw reason;
  });
  try {
    return await Promise.race([work(controller.signal), interrupted]);
  } catch (error) {
    throw controller.signal.aborted ? controller.signal.reason : error;
  } finally {
    settled = true;
    interrupted.catch(() => {});
  }
}
