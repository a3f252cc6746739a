/**
 * Which client gets which server connection, without any I/O: per key (database, login user,
 * database name, identity — whatever the caller puts in it) a set of idle and busy connections,
 * at most `maxServerConnections` of them, and a FIFO queue of clients waiting for one. Opening
 * and closing a connection are the caller's functions; time comes from an injected clock, so
 * lifetimes and waits are tested without sleeping.
 *
 * A connection is only ever handed to a client of the key it was opened for. A released
 * connection goes back idle only when the caller says it is reusable and it has not outlived
 * `serverLifetimeMs`; otherwise it is closed and its slot opens a new one for the next waiter.
 */

import { WaitQueue } from './wait-queue.js';

export interface PoolLimits {
  maxServerConnections: number;
  /** Idle connections per key that idleTimeoutMs leaves open. */
  minIdle: number;
  idleTimeoutMs: number;
  serverLifetimeMs: number;
  maxClientWaitMs: number;
}

export interface Clock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Every server connection of the key is busy and none came free within maxClientWaitMs. */
export class PoolWaitTimeout extends Error {
  constructor(readonly waitedMs: number) {
    super(`no server connection came free within ${waitedMs} ms`);
    this.name = 'PoolWaitTimeout';
  }
}

/** The pool closed (broker shutting down, listener removed) while the client waited. */
export class PoolClosed extends Error {
  constructor() {
    super('the pool is closed');
    this.name = 'PoolClosed';
  }
}

/** A server connection lent to one client until `release` or `discard`. */
export interface Lease<C> {
  readonly connection: C;
  /** True when this client's acquire opened the connection (a fresh login). */
  readonly fresh: boolean;
  /** How long the client waited for it. */
  readonly waitedMs: number;
  /** Back to the pool: reusable when the caller has put it back in a clean state. */
  release(reusable: boolean): void;
}

export interface KeyStats<I> {
  key: string;
  info: I;
  /** Clients holding a connection; in session mode always serversActive (kept apart for transaction mode). */
  clientsActive: number;
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  serversOpening: number;
  /** Connections opened (server logins) while the key has had connections or clients. */
  logins: number;
}

export interface PoolHooks<C, I = unknown> {
  close(connection: C): void;
  /** Each client's wait, whether it got a connection or not. */
  onWait?(info: I, waitedMs: number): void;
}

interface Entry<C> {
  connection: C;
  createdAt: number;
  idleSince: number;
}

/**
 * A client's request for a connection, answered once: `granted` or `refused`. `granted` may be
 * called before `request` returns (a connection was idle), and from inside another client's
 * release; the manager's own state is settled before either is called, and neither may throw.
 */
export interface LeaseRequest<C> {
  /** A new connection, when the key has room and no idle one. */
  open(): Promise<C>;
  granted(lease: Lease<C>): void;
  refused(error: Error): void;
}

interface Waiter<C, I> {
  request: LeaseRequest<C>;
  since: number;
  /** Its signal's slot, while it waits in the queue with a signal (see `watchSignal`). */
  slot?: SignalSlot<C, I> | undefined;
}

/** The promise form's request: resolve and reject are the promise's. */
class PromisedRequest<C> implements LeaseRequest<C> {
  constructor(
    readonly open: () => Promise<C>,
    readonly granted: (lease: Lease<C>) => void,
    readonly refused: (error: Error) => void,
  ) {}
}

interface KeyPool<C, I> {
  info: I;
  /** Most recently used last: handed out first, so idle_timeout reaps the ones at the front. */
  idle: Entry<C>[];
  busy: Set<Entry<C>>;
  opening: number;
  /** In arrival order, so the first has the earliest deadline. */
  waiters: WaitQueue<Waiter<C, I>>;
  /**
   * One timer per key, for the first waiter's deadline, instead of one per wait: in transaction
   * mode most waits end within a transaction, and a timer armed and cleared for each cost CPU.
   */
  deadlineTimer: unknown;
  logins: number;
}

/** A server connection lent until `release`; a class, as one is made for every transaction. */
class ManagedLease<C, I> implements Lease<C> {
  private released = false;

  constructor(
    private readonly manager: PoolManager<C, I>,
    private readonly key: string,
    private readonly pool: KeyPool<C, I>,
    private readonly entry: Entry<C>,
    readonly fresh: boolean,
    readonly waitedMs: number,
  ) {}

  get connection(): C {
    return this.entry.connection;
  }

  release(reusable: boolean): void {
    if (this.released) return;
    this.released = true;
    this.manager.takeBack(this.key, this.pool, this.entry, reusable);
  }
}

/**
 * Where a client's wait is queued, found again from its signal: one per signal for its life,
 * filled while a wait of it is queued and emptied when that wait is served or refused.
 */
interface SignalSlot<C, I> {
  key: string | undefined;
  pool: KeyPool<C, I> | undefined;
  waiter: Waiter<C, I> | undefined;
}

/** A served or refused wait leaves nothing in its signal's slot (an idle client may keep its signal for hours). */
function leaveSlot<C, I>(waiter: Waiter<C, I>): void {
  const slot = waiter.slot;
  if (!slot) return;
  waiter.slot = undefined;
  if (slot.waiter !== waiter) return;
  slot.key = undefined;
  slot.pool = undefined;
  slot.waiter = undefined;
}

export class PoolManager<C, I = unknown> {
  private readonly keys = new Map<string, KeyPool<C, I>>();
  /** Each signal's slot: the wait queued under it, if any (`abandonWait` checks the queue all the same). */
  private readonly slots = new WeakMap<AbortSignal, SignalSlot<C, I>>();
  private closed = false;

  constructor(
    readonly limits: PoolLimits,
    private readonly hooks: PoolHooks<C, I>,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * A connection of `key`: an idle one, else a new one from `open` while the key is under its
   * limit, else the first free one after the clients already waiting (FIFO), within maxClientWaitMs.
   */
  acquire(key: string, info: I, open: () => Promise<C>, signal?: AbortSignal): Promise<Lease<C>> {
    return new Promise<Lease<C>>((resolve, reject) => this.request(key, info, new PromisedRequest(open, resolve, reject), signal));
  }

  /**
   * `acquire` without a promise: the request is answered through its own methods. The transaction
   * pools ask once per transaction, where a promise and its callbacks each cost their share of CPU.
   */
  request(key: string, info: I, request: LeaseRequest<C>, signal?: AbortSignal): void {
    if (this.closed) return request.refused(new PoolClosed());
    if (signal?.aborted) return request.refused(signal.reason);
    const pool = this.pool(key, info);
    const since = this.clock.now();
    const waiter: Waiter<C, I> = { request, since };
    if (pool.waiters.length === 0 && this.hasRoom(pool)) {
      this.serve(key, pool, waiter);
      return;
    }
    pool.waiters.push(waiter);
    this.armDeadline(pool, since);
    if (signal) this.watchSignal(signal, key, pool, waiter);
  }

  /**
   * A client that gives up (went away, its login deadline passed) leaves the queue. Its signal
   * usually outlives the wait (a client's, for all its transactions), so it gets one listener for
   * its life instead of one added and removed per wait, which cost a few µs per transaction.
   * A signal has one wait queued at a time: a client waits for one connection at a time. Its
   * slot is made once too, so that a queued wait costs no object or WeakMap entry of its own.
   */
  private watchSignal(signal: AbortSignal, key: string, pool: KeyPool<C, I>, waiter: Waiter<C, I>): void {
    let slot = this.slots.get(signal);
    if (!slot) {
      slot = { key: undefined, pool: undefined, waiter: undefined };
      this.slots.set(signal, slot);
      signal.addEventListener('abort', this.abandonWait, { once: true });
    }
    slot.key = key;
    slot.pool = pool;
    slot.waiter = waiter;
    waiter.slot = slot;
  }

  private readonly abandonWait = (event: Event): void => {
    const signal = event.target as AbortSignal;
    const slot = this.slots.get(signal);
    const { key, pool, waiter } = slot ?? {};
    if (!waiter || key === undefined || !pool) return;
    leaveSlot(waiter);
    if (!pool.waiters.remove(waiter)) return;
    waiter.request.refused(signal.reason);
    this.forget(key, pool);
  };

  /** Closes an idle connection that broke while it waited (its socket closed); a busy one is left to its client. */
  drop(connection: C): void {
    for (const pool of this.keys.values()) {
      const at = pool.idle.findIndex((entry) => entry.connection === connection);
      if (at < 0) continue;
      pool.idle.splice(at, 1);
      this.hooks.close(connection);
      return;
    }
  }

  /** Closes idle connections past serverLifetimeMs, and past idleTimeoutMs beyond minIdle. */
  sweep(): void {
    const now = this.clock.now();
    for (const [key, pool] of this.keys) {
      const keep: Entry<C>[] = [];
      for (const entry of pool.idle) {
        if (now - entry.createdAt >= this.limits.serverLifetimeMs) this.hooks.close(entry.connection);
        else keep.push(entry);
      }
      let surplus = keep.length - this.limits.minIdle;
      pool.idle = keep.filter((entry) => {
        if (surplus > 0 && now - entry.idleSince >= this.limits.idleTimeoutMs) {
          surplus--;
          this.hooks.close(entry.connection);
          return false;
        }
        return true;
      });
      this.forget(key, pool);
    }
  }

  stats(): KeyStats<I>[] {
    return [...this.keys].map(([key, pool]) => ({
      key,
      info: pool.info,
      clientsActive: pool.busy.size,
      clientsWaiting: pool.waiters.length,
      serversActive: pool.busy.size,
      serversIdle: pool.idle.length,
      serversOpening: pool.opening,
      logins: pool.logins,
    }));
  }

  /** Closes every idle connection and refuses the waiting clients; busy ones close when released. */
  close(): void {
    this.closed = true;
    for (const pool of this.keys.values()) {
      for (const entry of pool.idle) this.hooks.close(entry.connection);
      pool.idle = [];
      this.disarmDeadline(pool);
      for (const waiter of pool.waiters.drain()) waiter.request.refused(new PoolClosed());
    }
  }

  private pool(key: string, info: I): KeyPool<C, I> {
    let pool = this.keys.get(key);
    if (!pool) {
      pool = { info, idle: [], busy: new Set(), opening: 0, waiters: new WaitQueue(), deadlineTimer: undefined, logins: 0 };
      this.keys.set(key, pool);
    }
    return pool;
  }

  /**
   * An idle connection, or room for a new one: idle ones are not counted against the limit, as
   * one is only opened when none is idle.
   */
  private hasRoom(pool: KeyPool<C, I>): boolean {
    return pool.idle.length > 0 || pool.busy.size + pool.opening < this.limits.maxServerConnections;
  }

  /**
   * Gives `waiter` (out of the queue already) an idle connection or opens one; only called when
   * hasRoom: closing expired idle connections leaves room for a new one.
   */
  private serve(key: string, pool: KeyPool<C, I>, waiter: Waiter<C, I>): void {
    const now = this.clock.now();
    for (let entry = pool.idle.pop(); entry; entry = pool.idle.pop()) {
      if (now - entry.createdAt >= this.limits.serverLifetimeMs) {
        this.hooks.close(entry.connection);
        continue;
      }
      this.lend(key, pool, entry, waiter, false);
      return;
    }
    pool.opening++;
    pool.logins++;
    waiter.request.open().then(
      (connection) => {
        pool.opening--;
        if (this.closed) {
          this.hooks.close(connection);
          waiter.request.refused(new PoolClosed());
          return;
        }
        this.lend(key, pool, { connection, createdAt: this.clock.now(), idleSince: 0 }, waiter, true);
      },
      (error: unknown) => {
        pool.opening--;
        this.hooks.onWait?.(pool.info, this.clock.now() - waiter.since);
        waiter.request.refused(error instanceof Error ? error : new Error(String(error)));
        // The slot this login would have taken is free for the next client.
        this.dispatch(key, pool);
      },
    );
  }

  private lend(key: string, pool: KeyPool<C, I>, entry: Entry<C>, waiter: Waiter<C, I>, fresh: boolean): void {
    pool.busy.add(entry);
    // A served client keeps nothing of its wait (an idle client may hold its signal for hours).
    leaveSlot(waiter);
    const waitedMs = this.clock.now() - waiter.since;
    this.hooks.onWait?.(pool.info, waitedMs);
    waiter.request.granted(new ManagedLease(this, key, pool, entry, fresh, waitedMs));
  }

  /** A lease's release: the connection goes back idle or is closed, and the next waiter is served. */
  takeBack(key: string, pool: KeyPool<C, I>, entry: Entry<C>, reusable: boolean): void {
    pool.busy.delete(entry);
    const expired = this.clock.now() - entry.createdAt >= this.limits.serverLifetimeMs;
    if (!reusable || expired || this.closed) {
      this.hooks.close(entry.connection);
    } else {
      entry.idleSince = this.clock.now();
      pool.idle.push(entry);
    }
    this.dispatch(key, pool);
  }

  /** Arms the key's timer for the first waiter's deadline, unless it is armed already. */
  private armDeadline(pool: KeyPool<C, I>, since: number): void {
    if (pool.deadlineTimer !== undefined) return;
    const dueIn = Math.max(0, since + this.limits.maxClientWaitMs - this.clock.now());
    pool.deadlineTimer = this.clock.setTimeout(() => {
      pool.deadlineTimer = undefined;
      this.refuseOverdue(pool);
    }, dueIn);
  }

  private disarmDeadline(pool: KeyPool<C, I>): void {
    if (pool.deadlineTimer === undefined) return;
    this.clock.clearTimeout(pool.deadlineTimer);
    pool.deadlineTimer = undefined;
  }

  /** Refuses the waiters that waited maxClientWaitMs (the first ones: they came first) and re-arms for the next. */
  private refuseOverdue(pool: KeyPool<C, I>): void {
    const now = this.clock.now();
    for (let first = pool.waiters.first(); first && now - first.since >= this.limits.maxClientWaitMs; first = pool.waiters.first()) {
      pool.waiters.shift();
      leaveSlot(first);
      const waited = now - first.since;
      this.hooks.onWait?.(pool.info, waited);
      first.request.refused(new PoolWaitTimeout(waited));
    }
    const next = pool.waiters.first();
    if (next) this.armDeadline(pool, next.since);
  }

  /**
   * Serves waiting clients in order while there is a connection or room for one. A waiter leaves
   * the queue before it is served: its `granted` may release a connection, and so dispatch, again.
   */
  private dispatch(key: string, pool: KeyPool<C, I>): void {
    while (pool.waiters.length > 0 && this.hasRoom(pool)) this.serve(key, pool, pool.waiters.shift()!);
    this.forget(key, pool);
  }

  /** A key with nothing left is removed, so that keys of past identities do not pile up. */
  private forget(key: string, pool: KeyPool<C, I>): void {
    if (pool.idle.length === 0 && pool.busy.size === 0 && pool.opening === 0 && pool.waiters.length === 0) {
      this.disarmDeadline(pool);
      this.keys.delete(key);
    }
  }
}
