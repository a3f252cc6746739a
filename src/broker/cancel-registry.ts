/**
 * Cancel keys the broker hands to its clients. A client gets a secret key minted here, never the
 * server's; a CancelRequest that matches one is forwarded with the server's real key by the
 * session's `cancel()`. The process id is the server's own where it is free, so
 * `pg_backend_pid()` and the sender of a notification still name the client's session.
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import { pooledRandomBytes } from './random-pool.js';

/** What a minted key cancels: its session's query on the server connection it has. */
export interface Cancellable {
  cancel(): Promise<void>;
}

interface Entry {
  /** The secret key's 4 bytes as a number: no buffer of its own kept per session. */
  secret: number;
  target: Cancellable;
}

export class CancelRegistry {
  private readonly entries = new Map<number, Entry>();

  /**
   * A (processId, secretKey) for a session `target` cancels: `serverProcessId` unless another
   * session holds it (two servers behind one broker may reuse a pid), else a random one.
   */
  mint(target: Cancellable, serverProcessId?: number): { processId: number; secretKey: Buffer } {
    let processId = serverProcessId ?? 0;
    while (processId <= 0 || this.entries.has(processId)) processId = randomInt(1, 0x7fffffff);
    // Every PostgreSQL session mints one: from the pooled block, not a CSPRNG call per connection.
    const secretKey = Buffer.from(pooledRandomBytes(4));
    this.entries.set(processId, { secret: secretKey.readUInt32BE(0), target });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  /** Forwards a cancel when the key matches; false when it does not (silently, as PostgreSQL does). */
  async cancel(processId: number, secretKey: Buffer): Promise<boolean> {
    const entry = this.entries.get(processId);
    if (!entry || secretKey.length !== 4) return false;
    const expected = Buffer.alloc(4);
    expected.writeUInt32BE(entry.secret, 0);
    if (!timingSafeEqual(expected, secretKey)) return false;
    await entry.target.cancel();
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}
