/**
 * The broker's cancel keys: the server's process id where it is free (so a client's
 * pg_backend_pid() and notification senders match its BackendKeyData), always a secret key of
 * the broker's own, and a cancel forwarded only for the key that was handed out.
 */
import { describe, expect, it } from 'vitest';
import { CancelRegistry } from '../../src/broker/cancel-registry.js';

describe('CancelRegistry', () => {
  it("hands out the server's process id with a secret key of its own", async () => {
    const registry = new CancelRegistry();
    let cancelled = 0;
    const key = registry.mint({ cancel: async () => void (cancelled += 1) }, 4242);
    expect(key.processId).toBe(4242);
    expect(key.secretKey).toHaveLength(4);
    expect(await registry.cancel(4242, Buffer.from(key.secretKey.map((b) => b ^ 1)))).toBe(false);
    expect(await registry.cancel(4242, key.secretKey)).toBe(true);
    expect(cancelled).toBe(1);
  });

  it('gives another id when a session of another server holds the same pid, and reuses it once released', () => {
    const registry = new CancelRegistry();
    const first = registry.mint({ cancel: async () => {} }, 4242);
    const second = registry.mint({ cancel: async () => {} }, 4242);
    expect(second.processId).not.toBe(4242);
    expect(second.processId).toBeGreaterThan(0);
    registry.release(first.processId);
    expect(registry.mint({ cancel: async () => {} }, 4242).processId).toBe(4242);
    expect(registry.size).toBe(2);
  });

  it('mints a random positive id without a server pid', () => {
    const registry = new CancelRegistry();
    const ids = new Set(Array.from({ length: 50 }, () => registry.mint({ cancel: async () => {} }).processId));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toBeGreaterThan(0);
  });
});
