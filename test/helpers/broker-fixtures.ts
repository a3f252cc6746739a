/**
 * What the broker tests against the emulated Azure share: the emulator with its identity in the
 * environment and a token cache over it, tunnels and listeners opened with the usual defaults,
 * and the servers and sockets a test starts — all closed again by `stop()`.
 */
import type { Server, Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'vitest';
import { startTestAzure } from '../harness/emulator.js';
import { emulatorTarget } from './targets.js';
import { createPrng, type Prng } from './prng.js';
import type { EmulatedAzure, EmulatedAzureOptions } from '../../src/emulator/emulated-azure.js';
import { DEMO_IDENTITY } from '../../src/emulator/demo-identity.js';
import { createCredential } from '../../src/azure/credential.js';
import { TokenCache } from '../../src/azure/token-cache.js';
import { databaseScope, CLOUDS } from '../../src/azure/clouds.js';
import { openTunnel, type Tunnel, type TunnelOptions } from '../../src/broker/tunnel.js';
import { startListener, type Listener, type ListenerOptions } from '../../src/broker/listener.js';
import { NO_AUDIT } from '../../src/broker/audit.js';
import type { UpstreamTarget } from '../../src/broker/target.js';

export const SCOPE = databaseScope(CLOUDS.AzureCloud);
export const USER = DEMO_IDENTITY.role;
/** A JSON Web Token (an Entra access token) anywhere in a text. */
export const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

/** The emulated Azure and a token cache over its identity; start in `beforeAll`, stop in `afterAll`. */
export class BrokerFixture {
  azure!: EmulatedAzure & { dir: string };
  tokens!: TokenCache;
  readonly tunnels: Tunnel[] = [];
  readonly listeners: Listener[] = [];
  readonly servers: Server[] = [];
  readonly sockets = new Set<Socket>();

  /** `options`: e.g. a test file's own real MariaDB in place of the run's shared one. */
  async start(options: Partial<EmulatedAzureOptions> = {}): Promise<void> {
    this.azure = await startTestAzure(options);
    Object.assign(process.env, this.azure.identity.env());
    this.tokens = new TokenCache({ credential: createCredential() });
  }

  /** A fresh token from the cache (the broker sends nothing else upstream). */
  getToken = (): Promise<string> => this.tokens.getToken(SCOPE);

  target(name: string, overrides: Partial<UpstreamTarget> = {}): UpstreamTarget {
    return emulatorTarget(this.azure, name, overrides);
  }

  /** A tunnel on a free loopback port as the demo identity, everything allowed, closed by `stop()`. */
  async tunnel(options: Pick<TunnelOptions, 'target' | 'dbName'> & Partial<TunnelOptions>): Promise<Tunnel> {
    const t = await openTunnel({
      host: '127.0.0.1',
      port: 0,
      dbUser: USER,
      authorize: () => ({ allowed: true }),
      getToken: this.getToken,
      audit: NO_AUDIT,
      ...options,
    });
    this.tunnels.push(t);
    return t;
  }

  /** A broker listener on a free loopback port, closed by `stop()`. */
  async listener(handle: ListenerOptions['handle']): Promise<Listener> {
    const listener = await startListener({ host: '127.0.0.1', port: 0, handle });
    this.listeners.push(listener);
    return listener;
  }

  /** Starts `server` on a free loopback port; its connections are destroyed by `stop()`. */
  async listen(server: Server): Promise<number> {
    this.servers.push(server);
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.tunnels.map((t) => t.close()));
    await Promise.all(this.listeners.map((l) => l.close()));
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    await this.azure?.stop();
  }
}

// ---- Session fuzzing ------------------------------------------------------------------------

/** Runs `run(index)` for every index below `count`, `concurrency` at a time: each worker takes the next index when its last one is done. */
export async function eachConcurrently(count: number, concurrency: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < count; index = next++) await run(index);
    }),
  );
}

/** The PRNG of fuzz session `index` in the run seeded with `seed`. */
export function sessionPrng(seed: number, index: number): Prng {
  return createPrng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

/** Writes `bytes` in one to three pieces, a turn of the event loop apart, until the peer closes. */
export async function writeInPieces(prng: Prng, client: { readonly closed: boolean; write(bytes: Buffer): void }, bytes: Buffer): Promise<void> {
  const pieces = 1 + prng.int(3);
  let offset = 0;
  for (let i = 0; i < pieces && !client.closed; i++) {
    const end = i === pieces - 1 ? bytes.length : offset + prng.int(bytes.length - offset + 1);
    client.write(bytes.subarray(offset, end));
    offset = end;
    if (i < pieces - 1) await new Promise((resolve) => setImmediate(resolve));
  }
}

let gc: (() => void) | undefined;

/** RSS and heap in MiB, after a full collection. */
export function memory(): { rss: number; heap: number } {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss: Math.round(rss / 2 ** 20), heap: Math.round(heapUsed / 2 ** 20) };
}

/** How many of `items` have each key, in first-seen order. */
export function tally<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

export interface FuzzOutcome {
  index: number;
  ops: string[];
  action: string;
  result: { received: Buffer; ms: number };
  problem: string | undefined;
}

/** Prints the first few problems with the bytes that show them, then expects there are none. */
export function expectNoProblems(outcomes: readonly FuzzOutcome[]): void {
  const problems = outcomes.filter((o) => o.problem !== undefined);
  for (const o of problems.slice(0, 5)) {
    console.log(`session ${o.index} (${o.action}; ${o.ops.join(' ')}): ${o.problem}; received ${o.result.received.subarray(0, 200).toString('hex')}`);
  }
  expect(problems.map((o) => `${o.index}: ${o.problem}`)).toEqual([]);
}
