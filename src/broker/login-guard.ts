/**
 * The login backoff as both protocols' sessions apply it: before a password is checked (a source
 * waiting out its delay is refused unchecked) and after a wrong one (the answer waits).
 */
import type { Socket } from 'node:net';
import { sourceKey } from './login-backoff.js';
import type { SessionOptions } from './session-record.js';

type GuardOptions = Pick<SessionOptions, 'logins' | 'onEvent'>;

/** Before a password is checked: the seconds left when the client's source must wait (reported), else undefined. */
export function loginRefusal(options: GuardOptions, address: string | undefined): number | undefined {
  const admission = options.logins?.admit(address);
  if (!admission || admission.allowed) return undefined;
  options.onEvent?.({ type: 'login-throttled', source: sourceKey(address), retryInMs: admission.retryInMs, announce: admission.announce });
  return Math.max(1, Math.ceil(admission.retryInMs / 1000));
}

/**
 * After a wrong password: counted against the source; resolves when the answer may go — after the
 * backoff delay, at the login deadline, or at once when the client hangs up. Only a timer waits.
 */
export async function afterWrongPassword(options: GuardOptions, address: string | undefined, socket: Socket, deadline: { at: number }): Promise<void> {
  const failure = options.logins?.failed(address) ?? { failures: 1, delayMs: 0, announce: false };
  options.onEvent?.({ type: 'login-failed', source: sourceKey(address), ...failure });
  const wait = Math.min(failure.delayMs, deadline.at - Date.now());
  if (wait <= 0 || socket.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, wait);
    socket.once('close', done);
  });
}
