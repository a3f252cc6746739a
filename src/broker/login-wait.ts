/**
 * What a session's login waits under once the client has proved itself (the Entra token, the
 * upstream connect): a signal that aborts when the client's login deadline passes or the tunnel
 * closes, with a reason saying which, so a stuck credential costs the client no more than its
 * deadline and never holds up a shutdown.
 */
import { setMaxListeners } from 'node:events';
import { formatSeconds } from '../time-limit.js';

export interface LoginWait {
  signal: AbortSignal;
  /**
   * Ends the wait for another reason (the client hung up), as the deadline would: one signal for
   * all, where AbortSignal.any would make one more per login, kept by its WeakRefs until a full GC.
   */
  abort(reason: Error): void;
  dispose(): void;
}

/**
 * One controller that the deadline and the tunnel's closing abort, unhooked at `dispose` — not
 * AbortSignal.any, whose every signal stays registered on the long-lived `closing` signal until a
 * garbage collection finalises it (a cost per connection, paid in the GC). After `dispose()` the
 * wait's signal never aborts, and the wait lets go of its timer and controller: a pooled session
 * keeps the object for as long as its client stays.
 */
export function loginWait(deadline: { at: number }, limitMs: number, closing: AbortSignal | undefined): LoginWait {
  let controller: AbortController | undefined = new AbortController();
  if (closing?.aborted) controller.abort(closing.reason);
  let timer: NodeJS.Timeout | undefined = setTimeout(() => controller?.abort(new Error(`the login deadline of ${formatSeconds(limitMs)} passed`)), Math.max(0, deadline.at - Date.now()));
  const onClosing = (): void => controller?.abort(closing!.reason);
  closing?.addEventListener('abort', onClosing, { once: true });
  const wait: LoginWait = {
    signal: controller.signal,
    abort: (reason) => controller?.abort(reason),
    dispose: () => {
      clearTimeout(timer);
      timer = undefined;
      closing?.removeEventListener('abort', onClosing);
      controller = undefined;
      if (!wait.signal.aborted) wait.signal = DISPOSED;
    },
  };
  return wait;
}

const DISPOSED = new AbortController().signal;

/**
 * A tunnel's closing controller. Every login wait and upstream connect in progress listens to its
 * signal until it ends, so dozens at once are normal under load, not the leak Node's warning
 * (MaxListenersExceededWarning, past 10) would report on the broker's stderr.
 */
export function tunnelClosingController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** The reason a tunnel's closing signal carries. */
export function tunnelClosing(): Error {
  return new Error('the tunnel is closing');
}
