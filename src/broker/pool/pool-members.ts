/**
 * The clients of a pool per key, for the counters a PoolManager cannot see: clients connected
 * (holding a server connection or not, as in transaction mode between transactions) and clients
 * pinned to theirs. Shared by the PostgreSQL and MySQL pools.
 */
import type { KeyStats } from './pool-manager.js';

export interface KeyStatsWithClients<I> extends KeyStats<I> {
  clientsConnected: number;
  clientsPinned: number;
}

/** One client's place in the counts, from join to leave. */
export interface Membership<I = unknown> {
  /** The key and its info as its first client joined with them: one copy for all its clients. */
  readonly key: string;
  readonly info: I;
  /** Counts the client as pinned (once); false when it already was, or has left. */
  pin(): boolean;
  leave(): void;
}

interface KeyCounts<I> {
  key: string;
  info: I;
  connected: number;
  pinned: number;
}

export class PoolMembers<I> {
  private readonly byKey = new Map<string, KeyCounts<I>>();

  join(key: string, info: I): Membership<I> {
    let counts = this.byKey.get(key);
    if (!counts) this.byKey.set(key, (counts = { key, info, connected: 0, pinned: 0 }));
    counts.connected++;
    return new KeyMembership(this.byKey, counts);
  }

  /** The manager's numbers of each key with its clients; a key with clients but no connection yet is listed too. */
  merge(stats: KeyStats<I>[]): KeyStatsWithClients<I>[] {
    const byKey = new Map<string, KeyStatsWithClients<I>>();
    for (const s of stats) byKey.set(s.key, { ...s, clientsConnected: 0, clientsPinned: 0 });
    for (const [key, counts] of this.byKey) {
      const s = byKey.get(key) ?? { key, info: counts.info, clientsActive: 0, clientsWaiting: 0, serversActive: 0, serversIdle: 0, serversOpening: 0, logins: 0, clientsConnected: 0, clientsPinned: 0 };
      s.clientsConnected = counts.connected;
      s.clientsPinned = counts.pinned;
      byKey.set(key, s);
    }
    return [...byKey.values()];
  }
}

/** A class, not an object of closures: an idle pooled client keeps its membership for its whole session. */
class KeyMembership<I> implements Membership<I> {
  private pinned = false;
  private left = false;

  constructor(
    private readonly byKey: Map<string, KeyCounts<I>>,
    private readonly counts: KeyCounts<I>,
  ) {}

  get key(): string {
    return this.counts.key;
  }

  get info(): I {
    return this.counts.info;
  }

  pin(): boolean {
    if (this.pinned || this.left) return false;
    this.pinned = true;
    this.counts.pinned++;
    return true;
  }

  leave(): void {
    if (this.left) return;
    this.left = true;
    this.counts.connected--;
    if (this.pinned) this.counts.pinned--;
    if (this.counts.connected === 0) this.byKey.delete(this.key);
  }
}
