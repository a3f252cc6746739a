/**
 * Cancel keys the broker hands to its clients. A client gets a BackendKeyData minted here, never
 * the server's; a CancelRequest that matches one is forwarded with the server's real key by the
 * callback the session registered. MySQL uses the same registry with connection ids.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

interface Entry {
  secretKey: Buffer;
  cancel: () => Promise<void>;
}

export class CancelRegistry {
  private readonly entries = new Map<number, Entry>();

  /** A fresh (processId, secretKey) for a session whose cancel is `cancel`. */
  mint(cancel: () => Promise<void>): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff);
    while (this.entries.has(processId));
    const secretKey = randomBytes(4);
    this.entries.set(processId, { secretKey, cancel });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  /** Forwards a cancel when the key matches; false when it does not (silently, as PostgreSQL does). */
  async cancel(processId: number, secretKey: Buffer): Promise<boolean> {
    const entry = this.entries.get(processId);
    if (!entry || entry.secretKey.length !== secretKey.length || !timingSafeEqual(entry.secretKey, secretKey)) return false;
    await entry.cancel();
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}
