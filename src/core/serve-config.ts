/**
 * One load of the config as `azdb serve`'s broker serves it (at start and at every reload): the
 * runtime over the serve's own token cache and audit sink, the databases (static, then
 * discovered), and the discovery refresh that runs while this config serves.
 */
import type { Writable } from 'node:stream';
import type { AuditObserver } from '../broker/audit-queue.js';
import type { Logger } from '../broker/log.js';
import type { ServeConfig } from '../broker/serve.js';
import type { TokenCache } from '../azure/token-cache.js';
import type { AzdbConfig } from '../config/schema.js';
import type { CoreContext } from './context.js';
import { UserError } from '../errors.js';
import { auditSinkFor, createDiscovery, loadRuntime } from './runtime.js';

export interface ServeConfigDeps {
  /** The config the process started with: the settings only a restart applies are compared to it. */
  startedWith: AzdbConfig;
  tokens: TokenCache;
  log: Logger;
  /** Where `broker.audit.path: "-"` writes. */
  auditStdout: Writable;
  /** Told of audit failures, full queues and dropped lines (the broker's log and metrics). */
  auditObserver: AuditObserver;
  /** A worker of `azdb serve --workers N`: a config whose audit goes to the shared stdout is refused (a reload to it too). */
  worker?: boolean;
}

/**
 * The workers of `azdb serve --workers N` share one stdout: each writes its batches (up to 64 KiB)
 * to it, and a pipe keeps only writes of up to PIPE_BUF whole, so their audit lines could
 * interleave mid-line.
 */
export function refuseSharedStdoutAudit(config: AzdbConfig, workers: string): void {
  if (config.broker.audit.path !== '-') return;
  throw new UserError(`broker.audit.path "-" (stdout) cannot be shared by ${workers}: their audit lines could interleave mid-line on a pipe`, {
    hint: 'Give broker.audit.path a file (every worker appends whole lines with O_APPEND, so they do not mix), or run `azdb serve` without --workers.',
  });
}

/** What the broker calls to load the config, at start and on every reload. */
export function serveConfigLoader(ctx: CoreContext, deps: ServeConfigDeps): () => Promise<ServeConfig> {
  const { tokens, log } = deps;
  // What the shared config code says (warnings) becomes JSON log lines too.
  const loadCtx: CoreContext = {
    ...ctx,
    log: {
      info: (text) => log.info('message', { message: text }),
      warn: (text) => log.warn('config.warning', { message: text }),
    },
  };
  const restartOnly = { azure: JSON.stringify(deps.startedWith.azure), http: deps.startedWith.broker.http.address };
  const audit = (config: AzdbConfig) => {
    if (deps.worker) refuseSharedStdoutAudit(config, 'the workers of azdb serve --workers');
    return auditSinkFor(config.broker.audit, { stream: deps.auditStdout, name: 'stdout' }, deps.auditObserver);
  };

  return async () => {
    const rt = await loadRuntime(loadCtx, { tokens, audit, discover: false });
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
}
