/**
 * `azdb serve [--max-connections N] [--drain-seconds S]`: the headless broker for a VM or a
 * container with a managed identity. Listeners come from `broker.listeners`, health and metrics
 * are on `broker.http.address`, logs are JSON lines on stderr, audit goes to
 * `broker.audit.path` (`-` = stdout). SIGHUP reloads the config; SIGTERM / SIGINT stop accepting
 * and let open sessions finish for up to S seconds (a second signal cuts them), then exit 0.
 */
import { CLOUDS, databaseScope } from '../../azure/clouds.js';
import { createFileAuditSink, createStreamAuditSink, NO_AUDIT, type AuditSink } from '../../broker/audit.js';
import { startHealthServer, type HealthServer } from '../../broker/health-server.js';
import { createJsonLogger, type Logger } from '../../broker/log.js';
import { MetricsRegistry } from '../../broker/metrics.js';
import { BrokerServer, type ServeConfig } from '../../broker/serve.js';
import { parseHostPort } from '../../config/address.js';
import { loadConfig } from '../../config/load.js';
import type { AzdbConfig } from '../../config/schema.js';
import { UserError, errorMessage, toAzdbError } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { Output } from '../output.js';
import { configPath, createDiscovery, createTokenCache, loadRuntime, stateDirOf } from '../../core/runtime.js';

export interface ServeFlags {
  maxConnections?: number;
  drainSeconds: number;
}

const SIGNALS: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGINT'];

/** After everything is closed, a stray handle (an HTTP keep-alive agent) must not keep a service up. */
const EXIT_SAFETY_NET_MS = 5_000;

export async function serve(ctx: CliContext, flags: ServeFlags): Promise<void> {
  const log = createJsonLogger((line) => ctx.out.info(line.slice(0, -1)));
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
  const file = configPath(ctx);
  const first = await loadConfig(file);
  const stateDir = stateDirOf(ctx);
  let server: BrokerServer | undefined;
  const tokens = createTokenCache(first.azure, ctx.env, (event) => server?.tokenEvent(event));
  const out = jsonOutput(ctx.out, log);
  const serveCtx: CliContext = { ...ctx, out, log: out };
  const restartOnly = { azure: JSON.stringify(first.azure), http: first.broker.http.address };

  const load = async (): Promise<ServeConfig> => {
    const rt = await loadRuntime(serveCtx, { tokens, audit: auditSinkFor, discover: false });
    if (JSON.stringify(rt.config.azure) !== restartOnly.azure) log.warn('config.restart_needed', { setting: 'azure', message: 'azure settings change the credential; restart azdb serve to apply them' });
    if (rt.config.broker.http.address !== restartOnly.http) log.warn('config.restart_needed', { setting: 'broker.http.address', message: 'restart azdb serve to move the HTTP endpoint' });
    const discovery = rt.config.discovery.length > 0 ? createDiscovery(rt.config, tokens, ctx) : undefined;
    // The first listing (or the cached one) before the listeners, so discovered databases have theirs at once.
    if (discovery) await discovery.get();
    let undo: (() => void) | undefined;
    return {
      file: rt.config.file,
      listeners: rt.config.broker.listeners,
      // As `azdb db ls`: a static entry wins over a discovered server of the same name.
      findDatabase: (name) => rt.databases().find((db) => db.name === name) ?? discovery?.list().find((db) => db.name === name),
      databaseNames: () => [...new Set([...rt.databases(), ...(discovery?.list() ?? [])].map((db) => db.name))].sort(),
      discoveryConfigured: discovery !== undefined,
      authorize: (db) => rt.authorize(db),
      audit: rt.audit,
      activate(events) {
        if (!discovery) return;
        const report = () => {
          const result = discovery.lastResult;
          if (result) events.discovery({ databases: result.databases.length, errors: result.errors.map((e) => ({ scope: e.scope, reason: e.reason })) });
        };
        undo = discovery.onChange(report);
        report();
        discovery.start();
      },
      async close() {
        undo?.();
        discovery?.stop();
        await rt.close();
      },
    };
  };

  const registry = new MetricsRegistry();
  server = new BrokerServer({
    load,
    tokens,
    scope: databaseScope(CLOUDS[first.azure.cloud]),
    log,
    registry,
    stateDir,
    ...(flags.maxConnections !== undefined ? { maxConnections: flags.maxConnections } : {}),
    reloadDrainMs: flags.drainSeconds * 1000,
  });
  const broker = server;
  try {
    await broker.start();
  } catch (error) {
    await broker.stop(0);
    throw error;
  }

  let http: HealthServer | undefined;
  const address = first.broker.http.address;
  if (address !== undefined) {
    const parsed = parseHostPort(address);
    if (!parsed.ok) throw new UserError(`broker.http.address: ${parsed.reason}`);
    try {
      http = await startHealthServer({
        host: parsed.host,
        port: parsed.port,
        readiness: () => broker.readiness(),
        metrics: async () => ({ contentType: registry.contentType, body: await registry.render() }),
        onError: (error) => {
          broker.metrics.errors.inc({ kind: 'http' });
          log.error('http.error', { error: errorMessage(error) });
        },
      });
    } catch (error) {
      await broker.stop(0);
      throw new UserError(`cannot serve /healthz, /readyz and /metrics on ${address}: ${errorMessage(error)}`, {
        hint: 'Pick a free `broker.http.address`, or stop the process holding it.',
      });
    }
  }
  log.info('serve.start', {
    pid: process.pid,
    config: file,
    listeners: broker.listening().map((l) => `${l.label}`),
    http: http ? `${http.host}:${http.port}` : null,
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
      void broker.reload();
    };
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn('shutdown.cut', { signal, message: 'second signal: cutting open sessions now' });
        void broker.stop(0);
        return;
      }
      stopping = true;
      log.info('shutdown.requested', { signal });
      void broker.stop(flags.drainSeconds * 1000).then(() => {
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
  await http?.close();
  log.info('serve.stopped', { pid: process.pid });
  setTimeout(() => process.exit(), EXIT_SAFETY_NET_MS).unref();
}

/** `broker.audit.path`: a file (0600, appended), `-` for stdout, or none. */
function auditSinkFor(config: AzdbConfig): AuditSink {
  const { path, queries } = config.broker.audit;
  if (path === '-') return createStreamAuditSink(process.stdout, { queries });
  return path ? createFileAuditSink(path, { queries }) : NO_AUDIT;
}

/** What the shared config code prints (warnings) becomes JSON log lines too. */
function jsonOutput(out: Output, log: Logger): Output {
  return {
    json: true,
    color: false,
    line: (text = '') => log.info('message', { message: text }),
    info: (text) => log.info('message', { message: text }),
    warn: (text) => log.warn('config.warning', { message: text }),
    document: (value) => out.document(value),
  };
}

/** The command as main.ts declares it: flags arrive as text. */
export function serveCommand(ctx: CliContext, options: { maxConnections?: string; drainSeconds: string }): Promise<void> {
  return serve(ctx, {
    ...(options.maxConnections !== undefined ? { maxConnections: parseWhole('--max-connections', options.maxConnections, 1) } : {}),
    drainSeconds: parseWhole('--drain-seconds', options.drainSeconds, 0),
  });
}

function parseWhole(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new UserError(`${flag} must be a whole number of at least ${min}, got "${text}"`, { usage: true });
  }
  return value;
}
