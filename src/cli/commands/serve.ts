/**
 * `azdb serve [--max-connections N] [--drain-seconds S] [--workers N]`: the headless broker for a VM or a
 * container with a managed identity. Listeners come from `broker.listeners`, health and metrics
 * are on `broker.http.address`, logs are JSON lines on stderr, audit goes to
 * `broker.audit.path` (`-` = stdout). SIGHUP reloads the config; SIGTERM / SIGINT stop accepting
 * and let open sessions finish for up to S seconds (a second signal cuts them), then exit 0.
 * The broker itself is started by src/core/serve.ts; this file owns the process: log, signals, exit.
 * With --workers N > 1 this process is the primary of N workers (src/core/serve-cluster.ts), and
 * each worker runs this same command and lands in {@link runWorker}.
 */
import { createJsonLogger, type Logger } from '../../broker/log.js';
import { startServe, type ServeHandle } from '../../core/serve.js';
import { isServeWorker, runServeWorker, startServePrimary } from '../../core/serve-cluster.js';
import { UserError, toAzdbError } from '../../errors.js';
import type { CliContext } from '../context.js';

export interface ServeFlags {
  maxConnections?: number;
  drainSeconds: number;
  /** Processes accepting on the listeners; 1: this process alone (no cluster). */
  workers: number;
}

const SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];

/** After everything is closed, a stray handle (an HTTP keep-alive agent) must not keep a service up. */
const EXIT_SAFETY_NET_MS = 5_000;

export async function serve(ctx: CliContext, flags: ServeFlags): Promise<void> {
  const log = createJsonLogger((line) => ctx.out.info(line.slice(0, -1)));
  if (isServeWorker()) return runWorker(ctx, flags, log);
  try {
    await run(ctx, flags, log);
  } catch (error) {
    // For log pipelines; the usual `error:` / `hint:` lines follow from main.
    const failure = toAzdbError(error);
    log.error('serve.failed', { error: failure.message, hint: failure.hint });
    throw error;
  }
}

async function run(ctx: CliContext, flags: ServeFlags, log: Logger): Promise<void> {
  const drainMs = flags.drainSeconds * 1000;
  const common = { ...(flags.maxConnections !== undefined ? { maxConnections: flags.maxConnections } : {}), reloadDrainMs: drainMs, log };
  let workerPids: (() => number[]) | undefined;
  let serving: ServeHandle;
  if (flags.workers > 1) {
    const primary = await startServePrimary(ctx, { ...common, workers: flags.workers });
    workerPids = primary.workerPids;
    serving = primary;
  } else {
    serving = await startServe(ctx, { ...common, auditStdout: process.stdout });
  }
  log.info('serve.start', {
    pid: process.pid,
    ...(workerPids ? { workers: workerPids().map(String) } : {}),
    config: serving.configFile,
    listeners: serving.listening().map((l) => `${l.label}`),
    http: serving.http ? `${serving.http.host}:${serving.http.port}` : null,
    max_connections: flags.maxConnections ?? null,
    drain_seconds: flags.drainSeconds,
  });

  // Signals belong to serve while it runs. when-exit (through conf → atomically, loaded with the
  // CLI) re-raises the first signal it sees, which would turn one SIGTERM into "second signal: cut
  // now" and one SIGHUP into two reloads; its handlers are set aside and put back at the end.
  const setAside = new Map(SIGNALS.map((signal) => [signal, process.listeners(signal)]));
  for (const signal of SIGNALS) process.removeAllListeners(signal);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onHangUp = () => {
      log.info('reload.requested', { signal: 'SIGHUP' });
      void serving.reload();
    };
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn('shutdown.cut', { signal, message: 'second signal: cutting open sessions now' });
        void serving.stop(0);
        return;
      }
      stopping = true;
      log.info('shutdown.requested', { signal });
      void serving.stop(drainMs).then(() => {
        process.off('SIGHUP', onHangUp);
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        resolve();
      });
    };
    process.on('SIGHUP', onHangUp);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
  for (const [signal, listeners] of setAside) for (const listener of listeners) process.on(signal, listener as (signal: NodeJS.Signals) => void);
  log.info('serve.stopped', { pid: process.pid });
  setTimeout(() => process.exit(), EXIT_SAFETY_NET_MS).unref();
}

/**
 * One worker of --workers N: its log lines carry its pid, signals are the primary's to act on
 * (a terminal's Ctrl+C reaches every process of the group), and it ends when the primary says.
 */
async function runWorker(ctx: CliContext, flags: ServeFlags, base: Logger): Promise<void> {
  const worker = process.pid;
  const log: Logger = {
    log: (level, event, fields) => base.log(level, event, { ...fields, worker }),
    info: (event, fields) => base.log('info', event, { ...fields, worker }),
    warn: (event, fields) => base.log('warn', event, { ...fields, worker }),
    error: (event, fields) => base.log('error', event, { ...fields, worker }),
  };
  const ignore = (): void => {};
  for (const signal of SIGNALS) {
    process.removeAllListeners(signal);
    process.on(signal, ignore);
  }
  await runServeWorker(ctx, {
    ...(flags.maxConnections !== undefined ? { maxConnections: flags.maxConnections } : {}),
    reloadDrainMs: flags.drainSeconds * 1000,
    log,
    auditStdout: process.stdout,
  });
  process.disconnect?.();
  setTimeout(() => process.exit(), EXIT_SAFETY_NET_MS).unref();
}

/** The command as main.ts declares it: flags arrive as text. */
export function serveCommand(ctx: CliContext, options: { maxConnections?: string; drainSeconds: string; workers: string }): Promise<void> {
  return serve(ctx, {
    ...(options.maxConnections !== undefined ? { maxConnections: parseWhole('--max-connections', options.maxConnections, 1) } : {}),
    drainSeconds: parseWhole('--drain-seconds', options.drainSeconds, 0),
    workers: parseWhole('--workers', options.workers, 1),
  });
}

function parseWhole(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new UserError(`${flag} must be a whole number of at least ${min}, got "${text}"`, { usage: true });
  }
  return value;
}
