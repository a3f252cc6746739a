/**
 * `azdb serve --workers N` (N > 1): N processes of node:cluster, each a whole broker (startServe)
 * with its own event loop, token cache and sessions, accepting on the same listener ports. Node 20
 * has no SO_REUSEPORT for net servers, so the primary holds the listening sockets and hands each
 * accepted connection to the next worker (cluster's round robin); the bytes of a session never
 * pass through the primary.
 *
 * The primary answers `broker.http.address` (/healthz, /readyz, /metrics summed over the workers,
 * /pools), writes each generated listener password once (every worker accepts the same one), and
 * passes SIGHUP (reload) and SIGTERM (drain) on to every worker over the cluster's IPC channel.
 * A worker that dies is replaced. Workers ignore signals themselves: a terminal's Ctrl+C reaches
 * the whole process group, and the primary alone decides.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Readiness } from '../broker/health-server.js';
import type { Logger } from '../broker/log.js';
import { MERGED_CONTENT_TYPE, MetricsRegistry, renderMerged, type MetricsSnapshot } from '../broker/metrics.js';
import { writeGeneratedPassword } from '../broker/password-file.js';
import { createServeMetrics, type PoolsReport } from '../broker/serve.js';
import { loadConfig } from '../config/load.js';
import { UserError, errorMessage, toAzdbError } from '../errors.js';
import type { CoreContext } from './context.js';
import { configPath } from './runtime.js';
import { refuseSharedStdoutAudit } from './serve-config.js';
import { httpAddressOf, openHttpEndpoint, startServe, type BrokerServeHandle, type ServeHandle, type ServeOptions } from './serve.js';

/** True in a process the primary of `azdb serve --workers N` forked. */
export const isServeWorker = (): boolean => cluster.isWorker;

type Listening = ReturnType<ServeHandle['listening']>;

/** Primary → worker requests, and the worker's answers (same `id`). */
type ToWorker = { azdb: 'reload' | 'readiness' | 'pools' | 'metrics'; id: number } | { azdb: 'stop'; id: number; drainMs: number } | { azdb: 'password'; id: number; password?: string; path?: string; error?: string };
type FromWorker =
  | { azdb: 'ready'; listening: Listening }
  | { azdb: 'failed'; message: string; hint?: string }
  | { azdb: 'password'; id: number; dir: string; name: string }
  | { azdb: 'answer'; id: number; value: unknown };

let nextId = 0;

/** Starts N workers and the HTTP endpoint; throws (what the first worker could not start on) if one fails. */
export async function startServePrimary(ctx: CoreContext, options: Omit<ServeOptions, 'worker' | 'auditStdout'> & { workers: number }): Promise<ServeHandle & { workerPids(): number[] }> {
  const { log } = options;
  const configFile = configPath(ctx);
  const first = await loadConfig(configFile);
  refuseSharedStdoutAudit(first, `${options.workers} workers`);
  const httpAt = httpAddressOf(first);
  // The primary's own counter, merged into the workers' /metrics: its HTTP endpoint's errors.
  const own = new MetricsRegistry();
  const ownErrors = createServeMetrics(own).errors;

  const passwords = new Map<string, Promise<{ password: string; path: string }>>();
  const pending = new Map<number, { resolve(value: unknown): void }>();
  const workers = new Set<Worker>();
  let stopping = false;
  let listening: Listening = [];

  const request = (worker: Worker, message: Omit<Extract<ToWorker, { azdb: 'reload' | 'readiness' | 'pools' | 'metrics' }>, 'id'> | { azdb: 'stop'; drainMs: number }): Promise<unknown> =>
    new Promise((resolve) => {
      const id = (nextId += 1);
      const gone = (): void => {
        pending.delete(id);
        resolve(undefined);
      };
      worker.once('exit', gone);
      pending.set(id, {
        resolve: (value) => {
          worker.off('exit', gone);
          resolve(value);
        },
      });
      if (!worker.isConnected()) return gone();
      worker.send({ ...message, id });
    });

  function fork(): Promise<Worker> {
    const worker = cluster.fork();
    workers.add(worker);
    worker.on('message', (message: FromWorker) => {
      if (message.azdb === 'answer') {
        pending.get(message.id)?.resolve(message.value);
        pending.delete(message.id);
      } else if (message.azdb === 'password') {
        // One password per listener for the whole serve: written once, handed to every worker.
        let written = passwords.get(message.name);
        if (!written) passwords.set(message.name, (written = writeGeneratedPassword(message.dir, message.name)));
        void written.then(
          ({ password, path }) => worker.send({ azdb: 'password', id: message.id, password, path } satisfies ToWorker),
          (error: unknown) => worker.send({ azdb: 'password', id: message.id, error: errorMessage(error) } satisfies ToWorker),
        );
      }
    });
    return new Promise((resolve, reject) => {
      const onMessage = (message: FromWorker): void => {
        if (message.azdb === 'ready') {
          worker.off('exit', onExit);
          worker.off('message', onMessage);
          listening = message.listening;
          worker.on('exit', (code, signal) => replace(worker, code, signal));
          resolve(worker);
        } else if (message.azdb === 'failed') {
          worker.off('exit', onExit);
          worker.off('message', onMessage);
          reject(new UserError(message.message, message.hint === undefined ? {} : { hint: message.hint }));
        }
      };
      const onExit = (code: number | null): void => {
        workers.delete(worker);
        reject(new Error(`serve worker ${worker.process.pid ?? '?'} exited (code ${code ?? '?'}) while starting`));
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
  }

  function replace(worker: Worker, code: number | null, signal: string | null): void {
    workers.delete(worker);
    if (stopping) return;
    log.error('worker.exit', { worker: worker.process.pid ?? null, code, signal, message: 'a serve worker died; starting another' });
    fork().then(
      (next) => log.info('worker.start', { worker: next.process.pid ?? null }),
      (error: unknown) => log.error('worker.failed', { error: errorMessage(error) }),
    );
  }

  const stopAll = async (drainMs: number): Promise<void> => {
    const all = [...workers];
    await Promise.all(all.map((worker) => request(worker, { azdb: 'stop', drainMs })));
    await Promise.all(all.map((worker) => (worker.isDead() ? undefined : new Promise((resolve) => worker.once('exit', resolve)))));
  };

  try {
    await Promise.all(Array.from({ length: options.workers }, fork));
  } catch (error) {
    stopping = true;
    await stopAll(0);
    throw error;
  }

  const readiness = async (): Promise<Readiness> => {
    const all = [...workers];
    const answers = (await Promise.all(all.map((worker) => request(worker, { azdb: 'readiness' })))) as Array<Readiness | undefined>;
    const states = all.map((worker, i) => ({ worker: worker.process.pid ?? 0, ready: answers[i]?.ready ?? false, ...(answers[i]?.reason ? { reason: answers[i]!.reason } : {}) }));
    const notReady = states.find((s) => !s.ready);
    const missing = options.workers - states.length;
    const reason = stopping ? 'shutting down: draining open sessions' : missing > 0 ? `${missing} of ${options.workers} serve workers are not running` : notReady ? `worker ${notReady.worker}: ${notReady.reason ?? 'not ready'}` : undefined;
    const base = answers.find((a) => a !== undefined);
    const sessions = answers.reduce((sum, a) => sum + (((a?.checks['sessions'] as { open?: number } | undefined)?.open) ?? 0), 0);
    return {
      ready: reason === undefined,
      ...(reason ? { reason } : {}),
      checks: { ...(base?.checks ?? {}), sessions: { ...((base?.checks['sessions'] as object | undefined) ?? {}), open: sessions }, workers: states },
    };
  };
  const pools = async (): Promise<PoolsReport> => {
    const all = [...workers];
    const reports = (await Promise.all(all.map((worker) => request(worker, { azdb: 'pools' })))) as Array<PoolsReport | undefined>;
    return { pools: reports.flatMap((report, i) => (report?.pools ?? []).map((pool) => ({ ...pool, worker: all[i]!.process.pid ?? 0 }))) };
  };
  const metrics = async (): Promise<string> => {
    const snapshots = (await Promise.all([...workers].map((worker) => request(worker, { azdb: 'metrics' })))) as Array<MetricsSnapshot | undefined>;
    // Only the errors counter of the primary's: its other gauges are never set and would skew a min or max.
    const mine = (await own.snapshot()).filter((metric) => (metric as { name?: string }).name === 'azdb_errors_total');
    return renderMerged([...snapshots.filter((s): s is MetricsSnapshot => s !== undefined), mine]);
  };

  const health = await openHttpEndpoint(
    httpAt,
    { readiness, metrics: async () => ({ contentType: MERGED_CONTENT_TYPE, body: await metrics() }), pools },
    {
      log,
      errors: ownErrors,
      undo: () => {
        stopping = true;
        return stopAll(0);
      },
    },
  );

  let stopped: Promise<void> | undefined;
  return {
    configFile,
    http: health ? { host: health.host, port: health.port } : undefined,
    listening: () => listening,
    workerPids: () => [...workers].map((worker) => worker.process.pid ?? 0),
    readiness,
    async reload() {
      const answers = await Promise.all([...workers].map((worker) => request(worker, { azdb: 'reload' })));
      return answers.every((ok) => ok === true);
    },
    stop(drainMs) {
      stopping = true;
      // A second call cuts: every worker's own stop() does so when called again.
      const drained = stopAll(drainMs);
      stopped ??= drained.then(() => health?.close());
      return stopped;
    },
  };
}

/**
 * The broker of one worker: startServe without the HTTP endpoint, answering the primary's
 * requests; resolves when the primary had it stop (or went away).
 */
export async function runServeWorker(ctx: CoreContext, options: Omit<ServeOptions, 'worker'>): Promise<void> {
  const send = (message: FromWorker): void => void process.send?.(message);
  const waiting = new Map<number, { resolve(value: { password: string; path: string }): void; reject(error: Error): void }>();
  let nextRequest = 0;
  const generatePassword = (dir: string, name: string): Promise<{ password: string; path: string }> =>
    new Promise((resolve, reject) => {
      const id = (nextRequest += 1);
      waiting.set(id, { resolve, reject });
      send({ azdb: 'password', id, dir, name });
    });
  const onPassword = (message: ToWorker): void => {
    if (message.azdb !== 'password') return;
    const waiter = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined || message.password === undefined || message.path === undefined) waiter?.reject(new Error(message.error ?? 'no password'));
    else waiter?.resolve({ password: message.password, path: message.path });
  };
  process.on('message', onPassword);

  let serving: BrokerServeHandle;
  try {
    serving = await startServe(ctx, { ...options, worker: { generatePassword } });
  } catch (error) {
    const failure = toAzdbError(error);
    send({ azdb: 'failed', message: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) });
    process.off('message', onPassword);
    return;
  }
  send({ azdb: 'ready', listening: serving.listening() });
  await new Promise<void>((resolve) => {
    const answer = (id: number, value: unknown): void => send({ azdb: 'answer', id, value });
    const onRequest = (message: ToWorker): void => {
      switch (message.azdb) {
        case 'reload':
          void serving.reload().then((ok) => answer(message.id, ok));
          break;
        case 'readiness':
          void serving.readiness().then((value) => answer(message.id, value));
          break;
        case 'pools':
          answer(message.id, serving.pools());
          break;
        case 'metrics':
          void serving.metrics().then((value) => answer(message.id, value));
          break;
        case 'stop':
          void serving.stop(message.drainMs).then(() => {
            answer(message.id, true);
            resolve();
          });
          break;
      }
    };
    process.on('message', onRequest);
    // The primary is gone (killed): nobody will ask this worker to stop; cut and end.
    process.once('disconnect', () => void serving.stop(0).then(() => resolve()));
  });
  process.off('message', onPassword);
}
