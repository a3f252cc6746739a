/**
 * `azdb serve`, the headless broker: the listeners of `broker.listeners` over one token cache
 * (kept across reloads), with metrics and, on `broker.http.address`, /healthz, /readyz and
 * /metrics. The front end owns the process: it decides when to reload and when to stop.
 */
import type { Writable } from 'node:stream';
import { CLOUDS, authorityHost, databaseScope, type Cloud } from '../azure/clouds.js';
import { createClientTokenValidator, type ClientTokenValidator } from '../azure/client-token.js';
import { startHealthServer, type HealthServer, type HealthServerOptions } from '../broker/health-server.js';
import type { Logger } from '../broker/log.js';
import type { Readiness } from '../broker/health-server.js';
import { MetricsRegistry, type Counter, type MetricsSnapshot } from '../broker/metrics.js';
import { BrokerServer, type PoolsReport } from '../broker/serve.js';
import { parseHostPort } from '../config/address.js';
import { loadConfig } from '../config/load.js';
import type { AzdbConfig } from '../config/schema.js';
import { UserError, errorMessage } from '../errors.js';
import type { CoreContext } from './context.js';
import { configPath, createTokenCache, stateDirOf } from './runtime.js';
import { serveConfigLoader } from './serve-config.js';

export interface ServeOptions {
  /** Concurrent sessions of the process (of each worker with --workers); more get "too many connections". */
  maxConnections?: number;
  /** How long sessions of a listener that a reload removed or changed may finish. */
  reloadDrainMs: number;
  /** Where the broker's JSON log lines go. */
  log: Logger;
  /** Where `broker.audit.path: "-"` writes. */
  auditStdout: Writable;
  /** A worker of `azdb serve --workers N`: no HTTP endpoint (the primary answers it), and the primary's generated passwords. */
  worker?: { generatePassword(dir: string, name: string): Promise<{ password: string; path: string }> };
}

export interface ServeHandle {
  /** The config file serving (reloads read it again). */
  readonly configFile: string;
  /** Where /healthz, /readyz and /metrics answer; undefined without `broker.http.address`. */
  readonly http: { host: string; port: number } | undefined;
  /** The listeners accepting connections now. */
  listening(): Array<{ label: string; host: string; port: number }>;
  /** What /readyz answers. */
  readiness(): Promise<Readiness>;
  /** Loads the config again and applies it; false when it is rejected (the old one keeps serving). */
  reload(): Promise<boolean>;
  /**
   * Stops accepting and lets open sessions finish for up to `drainMs` (readiness says so
   * meanwhile), then closes the HTTP endpoint. Called again while it waits, it cuts the sessions
   * now; every call resolves when everything is closed.
   */
  stop(drainMs: number): Promise<void>;
}

/** A serve that relays itself (one process, or a worker): what a primary asks of its workers too. */
export interface BrokerServeHandle extends ServeHandle {
  /** What /pools answers. */
  pools(): PoolsReport;
  /** The counters /metrics renders, for a primary that merges its workers'. */
  metrics(): Promise<MetricsSnapshot>;
}

/** Opens every listener and the HTTP endpoint; throws (a UserError saying what to fix) if one cannot start. */
export async function startServe(ctx: CoreContext, options: ServeOptions): Promise<BrokerServeHandle> {
  const { log } = options;
  const configFile = configPath(ctx);
  const first = await loadConfig(configFile);
  const httpAt = options.worker ? undefined : httpAddressOf(first);

  // The token cache is built before the broker (its loader needs it); the broker counts and logs its events.
  const tokens = createTokenCache(first.azure, ctx.env, (event) => broker.tokenEvent(event));
  const registry = new MetricsRegistry();
  const broker = new BrokerServer({
    load: serveConfigLoader(ctx, { startedWith: first, tokens, log, auditStdout: options.auditStdout, worker: options.worker !== undefined, auditObserver: { notice: (n) => broker.auditNotice(n), counted: (what, n) => broker.auditCounted(what, n) } }),
    tokens,
    scope: databaseScope(CLOUDS[first.azure.cloud]),
    clientTokens: clientTokenValidators(CLOUDS[first.azure.cloud], ctx.env),
    log,
    registry,
    stateDir: stateDirOf(ctx),
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
    reloadDrainMs: options.reloadDrainMs,
    ...(options.worker ? { generatePassword: options.worker.generatePassword } : {}),
  });
  try {
    await broker.start();
  } catch (error) {
    await broker.stop(0);
    throw error;
  }

  const health = await openHttpEndpoint(
    httpAt,
    {
      readiness: () => broker.readiness(),
      metrics: async () => ({ contentType: registry.contentType, body: await registry.render() }),
      pools: () => broker.pools(),
    },
    { log, errors: broker.metrics.errors, undo: () => broker.stop(0) },
  );

  let stopped: Promise<void> | undefined;
  return {
    configFile,
    http: health ? { host: health.host, port: health.port } : undefined,
    listening: () => broker.listening(),
    readiness: () => broker.readiness(),
    pools: () => broker.pools(),
    metrics: () => registry.snapshot(),
    reload: () => broker.reload(),
    stop(drainMs) {
      const drained = broker.stop(drainMs);
      // /readyz keeps answering "draining" until the sessions are done.
      stopped ??= drained.then(() => health?.close());
      return stopped;
    },
  };
}

export interface HttpAddress {
  /** As written in the config, for messages. */
  address: string;
  host: string;
  port: number;
}

/** `broker.http.address`, checked (a UserError when malformed); undefined without one. */
export function httpAddressOf(config: AzdbConfig): HttpAddress | undefined {
  const address = config.broker.http.address;
  if (address === undefined) return undefined;
  const endpoint = parseHostPort(address);
  if (!endpoint.ok) throw new UserError(`broker.http.address: ${endpoint.reason}`);
  return { address, host: endpoint.host, port: endpoint.port };
}

/**
 * /healthz, /readyz, /metrics and /pools on `at` (nothing without it), for a serve of one process
 * or the primary of its workers. A request that fails is logged and counted in
 * azdb_errors_total{kind="http"}; an endpoint that cannot start runs `undo` (stopping what did)
 * and is a UserError naming the address.
 */
export async function openHttpEndpoint(
  at: HttpAddress | undefined,
  answers: Pick<HealthServerOptions, 'readiness' | 'metrics' | 'pools'>,
  deps: { log: Logger; errors: Counter; undo(): Promise<void> },
): Promise<HealthServer | undefined> {
  if (!at) return undefined;
  try {
    return await startHealthServer({
      host: at.host,
      port: at.port,
      ...answers,
      onError: (error) => {
        deps.errors.inc({ kind: 'http' });
        deps.log.error('http.error', { error: errorMessage(error) });
      },
    });
  } catch (error) {
    await deps.undo();
    throw new UserError(`cannot serve /healthz, /readyz and /metrics on ${at.address}: ${errorMessage(error)}`, {
      hint: 'Pick a free `broker.http.address`, or stop the process holding it.',
    });
  }
}

/**
 * The check of people's tokens for `client_auth: entra` listeners: keys from the cloud's
 * authority (or AZURE_AUTHORITY_HOST), audience the cloud's database resource. One validator per
 * set of tenants for the process, so its cached keys outlive config reloads.
 */
function clientTokenValidators(cloud: Cloud, env: NodeJS.ProcessEnv): (allowedTenants: readonly string[]) => ClientTokenValidator {
  const validators = new Map<string, ClientTokenValidator>();
  const authority = authorityHost(cloud, env);
  return (allowedTenants) => {
    const key = [...allowedTenants].map((t) => t.toLowerCase()).sort().join(',');
    let validator = validators.get(key);
    if (!validator) {
      validator = createClientTokenValidator({ authorityHost: authority, audience: cloud.databaseResource, allowedTenants });
      validators.set(key, validator);
    }
    return validator;
  };
}
