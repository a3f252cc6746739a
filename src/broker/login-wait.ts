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

export function loginWait(deadline: { at: number }, limitMs: number, closing: AbortSignal | undefined): LoginWait {
  const expired = new AbortController();
  const timer = setTimeout(() => expired.abort(new Error(`the login deadline of ${formatSeconds(limitMs)} passed`)), Math.max(0, deadline.at - Date.now()));
  return {
    signal: closing ? AbortSignal.any([expired.signal, closing]) : expired.signal,
    dispose: () => clearTimeout(timer),
  };
}

/** The reason a tunnel's closing signal carries. */
export function tunnelClosing(): Error {
  return new Error('the tunnel is closing');
}
