/**
 * loginWait: the signal a login waits under ends at the client's deadline or when the tunnel
 * closes, whichever comes first, with the reason saying which; once disposed it is tied to
 * neither (a finished login must leave nothing registered on the tunnel's long-lived signal).
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { loginWait, tunnelClosing, tunnelClosingController } from '../../src/broker/login-wait.js';

const aborted = (signal: AbortSignal): Promise<unknown> => new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

describe('loginWait', () => {
  it("holds many logins' waits on the tunnel's closing signal at once without Node's MaxListenersExceededWarning", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const closing = tunnelClosingController();
      const waits = Array.from({ length: 50 }, () => loginWait({ at: Date.now() + 60_000 }, 60_000, closing.signal));
      expect(getEventListeners(closing.signal, 'abort')).toHaveLength(50);
      // Node emits the warning on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
      for (const wait of waits) wait.dispose();
      expect(getEventListeners(closing.signal, 'abort')).toHaveLength(0);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('aborts at the deadline, saying so', async () => {
    const wait = loginWait({ at: Date.now() + 20 }, 20, new AbortController().signal);
    expect(String(await aborted(wait.signal))).toContain('login deadline');
    wait.dispose();
  });

  it('aborts with the closing reason when the tunnel closes first, and at once when it has closed already', async () => {
    const closing = new AbortController();
    const wait = loginWait({ at: Date.now() + 60_000 }, 60_000, closing.signal);
    const reason = tunnelClosing();
    closing.abort(reason);
    expect(wait.signal.aborted).toBe(true);
    expect(wait.signal.reason).toBe(reason);
    wait.dispose();
    const late = loginWait({ at: Date.now() + 60_000 }, 60_000, closing.signal);
    expect(late.signal.reason).toBe(reason);
    late.dispose();
  });

  it('once disposed, is tied to the closing signal no more', () => {
    const closing = new AbortController();
    for (let i = 0; i < 100; i++) loginWait({ at: Date.now() + 60_000 }, 60_000, closing.signal).dispose();
    expect(getEventListeners(closing.signal, 'abort')).toHaveLength(0);
    const wait = loginWait({ at: Date.now() + 60_000 }, 60_000, closing.signal);
    wait.dispose();
    closing.abort(tunnelClosing());
    expect(wait.signal.aborted).toBe(false);
  });

  it('ends with the reason it is aborted with (the client hung up), and not once disposed', () => {
    const wait = loginWait({ at: Date.now() + 60_000 }, 60_000, undefined);
    const reason = new Error('the client hung up');
    wait.abort(reason);
    expect(wait.signal.aborted).toBe(true);
    expect(wait.signal.reason).toBe(reason);
    wait.dispose();
    const disposed = loginWait({ at: Date.now() + 60_000 }, 60_000, undefined);
    disposed.dispose();
    disposed.abort(reason);
    expect(disposed.signal.aborted).toBe(false);
  });
});
