/**
 * What a session's login waits under once the client has proved itself (the Entra token, the
 * upstream connect): a signal that aborts when the client's login deadline passes or the tunnel
 * closes, with a reason saying which, so a stuck credential costs the client no more than its
 * deadline and never holds up a shutdown.
 */
import { formatSeconds } from '../time-limit.js';

export interface LoginWait {
  signal: AbortSignal;
  dispose(): void;
}

/**
 * After `dispose()` the wait's signal never aborts, and the wait lets go of its timer and
 * controllers: a pooled session keeps the object for as long as its client stays.
 */
export function loginWait(deadline: { at: number }, limitMs: number, closing: AbortSignal | undefined): LoginWait {
  let expired: AbortController | undefined = new AbortController();
  let timer: NodeJS.Timeout | undefined = setTimeout(() => expired?.abort(new Error(`the login deadline of ${formatSeconds(limitMs)} passed`)), Math.max(0, deadline.at - Date.now()));
  const wait: LoginWait = {
    signal: closing ? AbortSignal.any([expired.signal, closing]) : expired.signal,
    dispose: () => {
      clearTimeout(timer);
      timer = undefined;
      expired = undefined;
      if (!wait.signal.aborted) wait.signal = DISPOSED;
    },
  };
  return wait;
}

const DISPOSED = new AbortController().signal;

/** The reason a tunnel's closing signal carries. */
export function tunnelClosing(): Error {
  return new Error('the tunnel is closing');
}
