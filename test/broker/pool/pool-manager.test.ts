import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PoolClosed, PoolManager, PoolWaitTimeout, type Clock, type Lease, type LeaseRequest, type PoolLimits } from '../../../src/broker/pool/pool-manager.js';

/** Time that moves only when the test says so. */
class FakeClock implements Clock {
  private at = 1_000_000;
  private timers: Array<{ due: number; run: () => void }> = [];
  now(): number {
    return this.at;
  }
  setTimeout(run: () => void, ms: number): unknown {
    const timer = { due: this.at + ms, run };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    this.at += ms;
    const due = this.timers.filter((t) => t.due <= this.at);
    this.timers = this.timers.filter((t) => t.due > this.at);
    for (const t of due) t.run();
  }
}

const LIMITS: PoolLimits = { maxServerConnections: 2, minIdle: 0, idleTimeoutMs: 60_000, serverLifetimeMs: 3_600_000, maxClientWaitMs: 5_000 };

function setup(limits: Partial<PoolLimits> = {}) {
  const clock = new FakeClock();
  const closed: string[] = [];
  const waits: number[] = [];
  let serial = 0;
  const pool = new PoolManager<string, { who: string }>({ ...LIMITS, ...limits }, { close: (c) => closed.push(c), onWait: (_info, ms) => waits.push(ms) }, clock);
  const open = (key: string) => () => Promise.resolve(`${key}#${++serial}`);
  const acquire = (key: string) => pool.acquire(key, { who: key }, open(key));
  return { clock, closed, waits, pool, acquire };
}

/** Lets promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PoolManager', () => {
  it('hands a released connection to the next client of the same key, and never to another key', async () => {
    const { acquire, pool } = setup();
    const a = await acquire('alice');
    expect(a).toMatchObject({ connection: 'alice#1', fresh: true });
    a.release(true);
    const again = await acquire('alice');
    expect(again).toMatchObject({ connection: 'alice#1', fresh: false });
    const bob = await acquire('bob');
    expect(bob.connection).toBe('bob#2');
    again.release(true);
    bob.release(true);
    expect(pool.stats().map((s) => [s.key, s.serversIdle, s.logins])).toEqual([
      ['alice', 1, 1],
      ['bob', 1, 1],
    ]);
  });

  it('closes a connection released as not reusable and opens a new one next time', async () => {
    const { acquire, closed } = setup();
    (await acquire('k')).release(false);
    expect(closed).toEqual(['k#1']);
    expect((await acquire('k')).connection).toBe('k#2');
  });

  it('makes clients wait in FIFO order when the key is at its limit', async () => {
    const { acquire, clock } = setup({ maxServerConnections: 1 });
    const first = await acquire('k');
    const order: string[] = [];
    const second = acquire('k').then((l) => (order.push('second'), l));
    const third = acquire('k').then((l) => (order.push('third'), l));
    clock.advance(1_000);
    first.release(true);
    const s = await second;
    expect(s).toMatchObject({ connection: 'k#1', waitedMs: 1_000 });
    s.release(true);
    (await third).release(true);
    expect(order).toEqual(['second', 'third']);
  });

  it('refuses each waiter at its own deadline with one timer for the key, however many wait', async () => {
    const { acquire, clock } = setup({ maxServerConnections: 1, maxClientWaitMs: 5_000 });
    const first = await acquire('k');
    const early = acquire('k');
    clock.advance(1_000);
    const later = acquire('k');
    // Both are refused in one turn of the timer: their outcomes are taken at once.
    const last = acquire('k').catch((e: unknown) => e);
    expect(clock.pending).toBe(1);
    clock.advance(2_000);
    first.release(true);
    const served = await early;
    expect(served.waitedMs).toBe(3_000);
    // The timer was for the first waiter's deadline; it finds the next one not due and re-arms.
    clock.advance(2_000);
    await settle();
    expect(clock.pending).toBe(1);
    let refused: unknown;
    void later.catch((e: unknown) => (refused = e));
    clock.advance(999);
    await settle();
    expect(refused).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(refused).toBeInstanceOf(PoolWaitTimeout);
    expect((refused as PoolWaitTimeout).waitedMs).toBe(5_000);
    expect(await last).toBeInstanceOf(PoolWaitTimeout);
    served.release(true);
    expect(clock.pending).toBe(0);
  });

  it('refuses a client that waited maxClientWaitMs, and still serves the ones after it', async () => {
    const { acquire, clock, waits } = setup({ maxServerConnections: 1, maxClientWaitMs: 5_000 });
    const first = await acquire('k');
    const late = acquire('k');
    clock.advance(4_999);
    await settle();
    clock.advance(1);
    const error = await late.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolWaitTimeout);
    expect((error as PoolWaitTimeout).waitedMs).toBe(5_000);
    expect(waits).toContain(5_000);
    const next = acquire('k');
    first.release(true);
    expect((await next).connection).toBe('k#1');
  });

  it('replaces a connection that outlived serverLifetimeMs when it is released or found idle', async () => {
    const { acquire, clock, closed } = setup({ serverLifetimeMs: 10_000 });
    const a = await acquire('k');
    clock.advance(10_000);
    a.release(true);
    expect(closed).toEqual(['k#1']);
    const b = await acquire('k');
    expect(b.connection).toBe('k#2');
    b.release(true);
    clock.advance(10_000);
    expect((await acquire('k')).connection).toBe('k#3');
    expect(closed).toEqual(['k#1', 'k#2']);
  });

  it('sweeps idle connections past idleTimeoutMs down to minIdle, and past their lifetime entirely', async () => {
    const { acquire, clock, closed, pool } = setup({ maxServerConnections: 3, minIdle: 1, idleTimeoutMs: 1_000, serverLifetimeMs: 5_000 });
    const leases = await Promise.all([acquire('k'), acquire('k'), acquire('k')]);
    for (const lease of leases) lease.release(true);
    clock.advance(999);
    pool.sweep();
    expect(closed).toEqual([]);
    clock.advance(1);
    pool.sweep();
    expect(closed).toHaveLength(2);
    expect(pool.stats()[0]).toMatchObject({ serversIdle: 1 });
    clock.advance(4_000);
    pool.sweep();
    expect(closed).toHaveLength(3);
    expect(pool.stats()).toEqual([]);
  });

  it('drops an idle connection that broke, and leaves a busy one to its client', async () => {
    const { acquire, closed, pool } = setup();
    const a = await acquire('k');
    const b = await acquire('k');
    a.release(true);
    pool.drop('k#1');
    pool.drop('k#2');
    expect(closed).toEqual(['k#1']);
    b.release(false);
    expect(closed).toEqual(['k#1', 'k#2']);
  });

  it('passes a failed login to its client and gives the freed slot to the next one', async () => {
    const clock = new FakeClock();
    const pool = new PoolManager<string>({ ...LIMITS, maxServerConnections: 1 }, { close: () => {} }, clock);
    const failing = pool.acquire('k', undefined, () => Promise.reject(new Error('token refused')));
    const next = pool.acquire('k', undefined, () => Promise.resolve('ok'));
    await expect(failing).rejects.toThrow('token refused');
    expect((await next).connection).toBe('ok');
  });

  it('refuses waiting clients when closed and closes what comes back', async () => {
    const { acquire, closed, pool } = setup({ maxServerConnections: 1 });
    const a: Lease<string> = await acquire('k');
    const waiting = acquire('k');
    pool.close();
    await expect(waiting).rejects.toBeInstanceOf(PoolClosed);
    a.release(true);
    expect(closed).toEqual(['k#1']);
    await expect(acquire('k')).rejects.toBeInstanceOf(PoolClosed);
  });

  it('counts clients and servers per key', async () => {
    const { acquire, pool } = setup({ maxServerConnections: 1 });
    const a = await acquire('k');
    const waiting = acquire('k');
    expect(pool.stats()).toEqual([{ key: 'k', info: { who: 'k' }, clientsActive: 1, clientsWaiting: 1, serversActive: 1, serversIdle: 0, serversOpening: 0, logins: 1 }]);
    a.release(true);
    (await waiting).release(true);
    expect(pool.stats()[0]).toMatchObject({ clientsActive: 0, clientsWaiting: 0, serversIdle: 1 });
  });
});

describe('PoolManager waiting clients', () => {
  it('lets a client that gave up leave the queue, so the next one is served', async () => {
    const { acquire, pool } = setup({ maxServerConnections: 1 });
    const first = await acquire('k');
    const gaveUp = new AbortController();
    const leaving = pool.acquire('k', { who: 'k' }, () => Promise.reject(new Error('never opened')), gaveUp.signal);
    const staying = acquire('k');
    gaveUp.abort(new Error('client went away'));
    await expect(leaving).rejects.toThrow('client went away');
    first.release(true);
    expect((await staying).connection).toBe('k#1');
  });

  it("keeps one listener on a client's signal however many of its transactions waited, and a served wait ignores a later abort", async () => {
    const { acquire, pool, clock } = setup({ maxServerConnections: 1 });
    const client = new AbortController();
    for (let transaction = 0; transaction < 3; transaction++) {
      const holder = await acquire('k');
      const waiting = pool.acquire('k', { who: 'k' }, () => Promise.reject(new Error('never opened')), client.signal);
      expect(getEventListeners(client.signal, 'abort')).toHaveLength(1);
      holder.release(true);
      (await waiting).release(true);
    }
    expect(getEventListeners(client.signal, 'abort')).toHaveLength(1);
    const holder = await acquire('k');
    const timedOut = pool.acquire('k', { who: 'k' }, () => Promise.reject(new Error('never opened')), client.signal);
    clock.advance(LIMITS.maxClientWaitMs);
    await expect(timedOut).rejects.toBeInstanceOf(PoolWaitTimeout);
    expect(getEventListeners(client.signal, 'abort')).toHaveLength(1);
    // The client leaves while another client waits: the other one's wait is untouched.
    const other = acquire('k');
    client.abort(new Error('client went away'));
    expect(getEventListeners(client.signal, 'abort')).toHaveLength(0);
    expect(pool.stats()[0]).toMatchObject({ clientsWaiting: 1 });
    holder.release(true);
    expect((await other).connection).toBe('k#1');
  });

  it('answers a request without a promise: at once when a connection is idle, and each waiter once even when its grant releases at once', async () => {
    const { acquire, pool } = setup({ maxServerConnections: 1 });
    const first = await acquire('k');
    first.release(true);
    const answers: string[] = [];
    const request = (who: string, releaseAtOnce: boolean): LeaseRequest<string> => ({
      open: () => Promise.reject(new Error('never opened')),
      granted: (lease) => {
        answers.push(`${who} got ${lease.connection}`);
        if (releaseAtOnce) lease.release(true);
      },
      refused: (error) => answers.push(`${who} refused: ${error.message}`),
    });
    // Idle: granted before request returns.
    pool.request('k', { who: 'k' }, request('now', true), undefined);
    expect(answers).toEqual(['now got k#1']);
    // Busy: two wait; the first releases inside its grant, which serves the second from inside
    // the first's dispatch. Served from the queue's head before it left, the first would be
    // granted the connection again.
    const holder = await acquire('k');
    pool.request('k', { who: 'k' }, request('a', true), undefined);
    pool.request('k', { who: 'k' }, request('b', false), undefined);
    expect(pool.stats()[0]).toMatchObject({ clientsWaiting: 2 });
    holder.release(true);
    expect(answers).toEqual(['now got k#1', 'a got k#1', 'b got k#1']);
    expect(pool.stats()[0]).toMatchObject({ clientsWaiting: 0, serversActive: 1, serversIdle: 0 });
  });
});
