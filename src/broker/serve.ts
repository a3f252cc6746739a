/**
 * The headless broker of `azdb serve`: the listeners of `broker.listeners` over one token cache,
 * one cancel registry and one session cap, with metrics, JSON logs and readiness.
 *
 * - {@link BrokerServer.start} loads the config and opens every listener (any failure is fatal).
 * - {@link BrokerServer.reload} (SIGHUP) loads the config again and applies the difference:
 *   new listeners start, removed or changed ones stop accepting and their sessions drain, roles
 *   and the audit sink switch for every session that logs in from then on. A config that does not
 *   load, or a listener that cannot be prepared (password file, certificate, database), rejects
 *   the whole reload: the old config keeps serving.
 * - {@link BrokerServer.stop} (SIGTERM) stops accepting and waits for open sessions up to a
 *   deadline; a second call cuts them now.
 *
 * A listener's password is its `password_file`, or (loopback only) a random one written to a
 * 0600 file in the state folder; neither is ever logged, put in a metric or an error.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { formatHost } from '../config/address.js';
import { entraTlsProblem } from '../config/cross-checks.js';
import type { DatabaseConfig, ListenerConfig } from '../config/schema.js';
import { UserError, errorMessage } from '../errors.js';
import type { TokenCacheEvent, TokenSourceStatus, TokenWaitOptions } from '../azure/token-cache.js';
import type { AuditEvent, AuditSink } from './audit.js';
import { describeAuditNotice, type AuditHealth, type AuditNotice } from './audit-queue.js';
import { LoginBackoff } from './login-backoff.js';
import { CancelRegistry } from './cancel-registry.js';
import { ConnectionGate } from './connection-gate.js';
import type { Readiness } from './health-server.js';
import type { Logger } from './log.js';
import type { Counter, Gauge, Histogram, MetricsRegistry } from './metrics.js';
import { poolLimits, type PoolKeyInfo, type PoolMode } from './pool/pool-limits.js';
import { newLocalPassword, readPasswordFile, writeGeneratedPassword } from './password-file.js';
import type { AccessDecision, SessionEvent, SessionOptions } from './session-record.js';
import type { ClientTokenValidator } from '../azure/client-token.js';
import type { EntraClientAuth } from './client-entra.js';
import type { RefusalOutcome } from './refuse.js';
import { resolveTarget as defaultResolveTarget } from './resolve-target.js';
import type { UpstreamTarget } from './target.js';
import { openTunnel, type Tunnel } from './tunnel.js';

/** One loaded config, as the server needs it. */
export interface ServeConfig {
  file: string;
  listeners: ListenerConfig[];
  /** A static or discovered database; undefined when there is none by that name (yet). */
  findDatabase(name: string): DatabaseConfig | undefined;
  /** Names to suggest when a listener's database is unknown. */
  databaseNames(): string[];
  /** Discovery may still find a database that is unknown now. */
  discoveryConfigured: boolean;
  authorize(db: DatabaseConfig): SessionOptions['authorize'];
  audit: AuditSink;
  /** Called once this config serves (e.g. starts its discovery refresh). */
  activate?(events: { discovery(summary: DiscoverySummary): void }): void;
  /** Called when another config replaced this one, or it was rejected. */
  close(): Promise<void>;
}

export interface DiscoverySummary {
  databases: number;
  errors: Array<{ scope: string; reason: string }>;
}

export interface TokenSource {
  getToken(scope: string, options?: TokenWaitOptions): Promise<string>;
  expiresOn(scope: string): number | undefined;
  status(scope: string): TokenSourceStatus;
}

export interface BrokerServerOptions {
  load(): Promise<ServeConfig>;
  tokens: TokenSource;
  /** The Entra scope of database tokens. */
  scope: string;
  log: Logger;
  registry: MetricsRegistry;
  /** Generated listener passwords go to `stateDir/serve/`. */
  stateDir: string;
  /** Concurrent sessions of the process (of each worker with --workers); more get "too many connections". */
  maxConnections?: number;
  resolveTarget?: (db: DatabaseConfig) => Promise<UpstreamTarget>;
  /** How often the token is checked (and refreshed before expiry) without a session. @default 60_000 */
  tokenWarmMs?: number;
  /** How long /readyz waits for a token fetch it started. @default 1_000 */
  readyTokenWaitMs?: number;
  /** Sessions of a listener that a reload removed or changed get this long. @default 30_000 */
  reloadDrainMs?: number;
  /** Backoff after wrong passwords, per client source, over every listener. @default the default policy */
  logins?: LoginBackoff;
  /**
   * The check of people's tokens for `client_auth: entra` listeners (keys from the cloud's
   * authority); without it such a listener does not start.
   */
  clientTokens?: (allowedTenants: readonly string[]) => ClientTokenValidator;
  /**
   * Writes a loopback listener's generated password (file `name` in `dir`); `azdb serve --workers N`
   * has the primary write it once, so that every worker accepts the same one. @default writeGeneratedPassword
   */
  generatePassword?: (dir: string, name: string) => Promise<{ password: string; path: string }>;
}

/** A listener of the config, prepared: everything read and checked, nothing bound yet. */
interface PreparedListener {
  key: string;
  label: string;
  spec: ListenerConfig;
  db: DatabaseConfig | undefined;
  target: UpstreamTarget | undefined;
  /** Why it cannot start yet (its database is not discovered). */
  pending?: string;
  password: { value: string; file: string } | { generated: true };
  clientTls: SecureContext | undefined;
  signature: string;
}

interface ActiveListener {
  key: string;
  label: string;
  spec: ListenerConfig;
  db: DatabaseConfig | undefined;
  signature: string;
  tunnel?: Tunnel;
  /** Where a generated password is, and the password itself to keep it across reloads. */
  generated?: { path: string; password: string };
  error?: string;
  relaying: Set<string>;
}

export interface ServeMetrics {
  listenerUp: Gauge;
  sessionsOpen: Gauge;
  sessionsTotal: Counter;
  bytesFromClient: Counter;
  bytesToClient: Counter;
  cancelRequests: Counter;
  tokenFetches: Counter;
  tokenFailures: Counter;
  tokenTimeouts: Counter;
  tokenSourceStuck: Gauge;
  tokenFetchWaiting: Gauge;
  tokenExpiry: Gauge;
  reloads: Counter;
  errors: Counter;
  discoveryDatabases: Gauge;
  discoveryErrors: Gauge;
  discoveryRefreshes: Counter;
  auditQueueBytes: Gauge;
  auditFailing: Gauge;
  auditDroppedLines: Counter;
  auditWriteErrors: Counter;
  loginFailures: Counter;
  loginBackoff: Counter;
  poolClientsActive: Gauge;
  poolClientsConnected: Gauge;
  poolClientsWaiting: Gauge;
  poolServersActive: Gauge;
  poolServersIdle: Gauge;
  poolServerLogins: Counter;
  poolWait: Histogram;
  poolPins: Counter;
  clientAuthRefusals: Counter;
  expiredDisconnects: Counter;
}

const POOL_LABELS = ['listener', 'database', 'db_user', 'db_name', 'identity'] as const;

/** The metric families of `azdb serve`; names and labels are part of what dashboards rely on. */
export function createServeMetrics(registry: MetricsRegistry): ServeMetrics {
  return {
    listenerUp: registry.gauge('azdb_listener_up', 'Whether a configured listener is accepting connections (1) or not (0).', ['listener', 'database'], 'min'),
    sessionsOpen: registry.gauge('azdb_sessions_open', 'Sessions relaying to a database now.', ['database', 'protocol']),
    sessionsTotal: registry.counter(
      'azdb_sessions_total',
      'Client connections by how they ended: ok / error (after login), rejected (before login), refused (--max-connections).',
      ['database', 'protocol', 'result'],
    ),
    bytesFromClient: registry.counter('azdb_client_received_bytes_total', 'Bytes received from clients of ended sessions.', ['database', 'protocol']),
    bytesToClient: registry.counter('azdb_client_sent_bytes_total', 'Bytes sent to clients of ended sessions.', ['database', 'protocol']),
    cancelRequests: registry.counter('azdb_cancel_requests_total', 'PostgreSQL CancelRequests, by whether one was forwarded to the server.', ['forwarded']),
    tokenFetches: registry.counter('azdb_token_fetches_total', 'Entra token requests to the credential: missing (no usable token) or refresh (before expiry).', ['reason']),
    tokenFailures: registry.counter('azdb_token_fetch_failures_total', 'Entra token requests that failed (including those abandoned at the deadline).'),
    tokenTimeouts: registry.counter('azdb_token_fetch_timeouts_total', "Entra token requests abandoned without an answer at azdb's deadline (30 s)."),
    tokenSourceStuck: registry.gauge('azdb_token_source_stuck', 'Whether the last database token request got no answer within the deadline (1) or not (0).', [], 'max'),
    tokenFetchWaiting: registry.gauge('azdb_token_fetch_waiting_seconds', 'How long the database token request in flight has waited for the credential (0 when none).', [], 'max'),
    tokenExpiry: registry.gauge('azdb_token_expiry_timestamp_seconds', 'When the cached database token expires (Unix time; 0 when none).', [], 'min'),
    reloads: registry.counter('azdb_config_reloads_total', 'Config reloads (SIGHUP) by result.', ['result']),
    errors: registry.counter('azdb_errors_total', 'Errors by kind: session, relay, token, reload, listener, http, discovery, audit.', ['kind']),
    discoveryDatabases: registry.gauge('azdb_discovery_databases', 'Databases found by the last discovery listing.', [], 'max'),
    discoveryErrors: registry.gauge('azdb_discovery_errors', 'Scopes the last discovery listing could not list (403, throttling...).', [], 'max'),
    discoveryRefreshes: registry.counter('azdb_discovery_refreshes_total', 'Discovery listings whose result changed what is known.'),
    auditQueueBytes: registry.gauge('azdb_audit_queue_bytes', 'Audit bytes waiting to be written (at its limit: sessions wait under on_failure block, lines are dropped under drop).'),
    auditFailing: registry.gauge('azdb_audit_failing', 'Whether the last write to the audit log failed (1) or not (0).', [], 'max'),
    auditDroppedLines: registry.counter('azdb_audit_dropped_lines_total', 'Audit lines dropped: the queue was full (on_failure drop) or could not be written before a reload or shutdown.'),
    auditWriteErrors: registry.counter('azdb_audit_write_errors_total', 'Failed writes to the audit log (each is tried again).'),
    loginFailures: registry.counter('azdb_login_failures_total', "Wrong passwords (a listener's local password) from clients.", ['listener', 'protocol']),
    loginBackoff: registry.counter(
      'azdb_login_backoff_total',
      'Logins slowed by the per-source backoff: delayed (a wrong password answered late) or refused (unchecked while the source waits).',
      ['listener', 'protocol', 'action'],
    ),
    poolClientsActive: registry.gauge('azdb_pool_clients_active', 'Clients holding a pooled server connection now.', POOL_LABELS),
    poolClientsConnected: registry.gauge('azdb_pool_clients_connected', 'Clients connected to a pool now, holding a server connection or not (transaction mode: between transactions).', POOL_LABELS),
    poolClientsWaiting: registry.gauge('azdb_pool_clients_waiting', 'Clients waiting for a pooled server connection now.', POOL_LABELS),
    poolServersActive: registry.gauge('azdb_pool_servers_active', 'Pooled server connections lent to a client now.', POOL_LABELS),
    poolServersIdle: registry.gauge('azdb_pool_servers_idle', 'Pooled server connections idle now.', POOL_LABELS),
    poolServerLogins: registry.counter('azdb_pool_server_logins_total', 'Server connections a pool logged in (each with a token from the cache).', POOL_LABELS),
    poolPins: registry.counter('azdb_pool_pins_total', 'Transaction-mode clients pinned to their server connection, by the first reason (LISTEN, SET, advisory lock, …).', ['database', 'reason']),
    clientAuthRefusals: registry.counter(
      'azdb_client_auth_refusals_total',
      'Entra sign-ins (client_auth: entra) refused, by reason: malformed, tenant, issuer, audience, expired, not-yet-valid, signature, keys-unavailable.',
      ['listener', 'protocol', 'reason'],
    ),
    expiredDisconnects: registry.counter('azdb_expired_disconnects_total', "Sessions ended at a transaction boundary because the person's token expired (disconnect_expired).", ['listener', 'protocol']),
    poolWait: registry.histogram('azdb_pool_wait_seconds', 'How long clients waited for a pooled server connection (including those refused after max_client_wait).', POOL_LABELS, [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60]),
  };
}

/** How logs, metrics and messages name a listener: `orders@127.0.0.1:5432`. */
export function listenerLabel(spec: Pick<ListenerConfig, 'database' | 'host' | 'port'>): string {
  return `${spec.database}@${formatHost(spec.host)}:${spec.port}`;
}

export class BrokerServer {
  private current: ServeConfig | undefined;
  private readonly active = new Map<string, ActiveListener>();
  /** Listeners a reload removed, with their sessions still draining. */
  private readonly draining = new Map<Tunnel, ActiveListener>();
  private readonly cancels = new CancelRegistry();
  /** One for every listener: a source guessing on one listener waits on all of them. */
  private readonly logins: LoginBackoff;
  private readonly gate: ConnectionGate | undefined;
  readonly metrics: ServeMetrics;
  private readonly audit: AuditSink;
  private state: 'new' | 'running' | 'draining' | 'stopped' = 'new';
  private stopping: Promise<void> | undefined;
  private tokenTimer: NodeJS.Timeout | undefined;
  private loadedAt: string | undefined;
  private lastReload: { at: string; ok: boolean; error?: string } | undefined;
  /** Starts, reloads and discovery changes apply one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BrokerServerOptions) {
    this.gate = options.maxConnections === undefined ? undefined : new ConnectionGate(options.maxConnections);
    this.metrics = createServeMetrics(options.registry);
    this.logins = options.logins ?? new LoginBackoff();
    options.registry.onCollect(() => this.collectPoolGauges());
    options.registry.onCollect(() => {
      const expires = options.tokens.expiresOn(options.scope);
      this.metrics.tokenExpiry.set({}, expires === undefined ? 0 : Math.floor(expires / 1000));
      const status = options.tokens.status(options.scope);
      this.metrics.tokenSourceStuck.set({}, status.state === 'stuck' ? 1 : 0);
      this.metrics.tokenFetchWaiting.set({}, status.fetchingSince === undefined ? 0 : Math.max(0, (Date.now() - status.fetchingSince) / 1000));
      const audit = this.current?.audit.health();
      this.metrics.auditQueueBytes.set({}, audit?.queued_bytes ?? 0);
      this.metrics.auditFailing.set({}, audit?.state === 'failing' ? 1 : 0);
    });
    const server = this;
    // One sink for every session, whatever config it started under: it feeds the metrics and
    // the log, then writes to the audit sink of the config serving now.
    this.audit = {
      get queries() {
        return server.current?.audit.queries ?? false;
      },
      write(event) {
        server.observeAudit(event);
        return server.current?.audit.write(event) ?? true;
      },
      wait: () => server.current?.audit.wait(),
      health: () => server.current?.audit.health(),
      close: async () => {},
    };
  }

  /** Loads the config and opens every listener; throws (a UserError saying what to fix) if any fails. */
  start(): Promise<void> {
    return this.serialize(async () => {
      const config = await this.options.load();
      let prepared: PreparedListener[];
      try {
        prepared = await this.prepareAll(config);
      } catch (error) {
        await config.close().catch(() => {});
        throw error;
      }
      this.commit(config);
      // A listener waiting for discovery to find its database is not a reason to stop the rest.
      const failed = (await this.applyListeners(prepared)).filter((l) => !prepared.find((p) => p.key === l.key)?.pending);
      if (failed.length > 0) {
        throw new UserError(`could not start listener ${failed[0]!.label}: ${failed[0]!.error}`, {
          hint: 'Another process may hold the port: pick another `port` under broker.listeners, or stop the other process.',
        });
      }
      this.state = 'running';
      this.warmToken();
      this.tokenTimer = setInterval(() => this.warmToken(), this.options.tokenWarmMs ?? 60_000).unref();
    });
  }

  /** Loads the config again and applies it; false (and the old config keeps serving) when it is rejected. */
  reload(): Promise<boolean> {
    return this.serialize(async () => {
      if (this.state !== 'running') return false;
      const at = new Date().toISOString();
      let config: ServeConfig;
      let prepared: PreparedListener[];
      try {
        config = await this.options.load();
      } catch (error) {
        return this.rejectReload(at, error);
      }
      try {
        prepared = await this.prepareAll(config);
      } catch (error) {
        await config.close().catch(() => {});
        return this.rejectReload(at, error);
      }
      const previous = this.current;
      this.commit(config);
      const failed = await this.applyListeners(prepared);
      await previous?.close().catch(() => {});
      this.lastReload = { at, ok: true };
      this.metrics.reloads.inc({ result: 'ok' });
      this.options.log.info('reload', { config: config.file, listeners: prepared.length, failed: failed.map((f) => f.label) });
      return true;
    });
  }

  /** Applies the current config again: databases found by discovery since may now have listeners. */
  refresh(): Promise<void> {
    return this.serialize(async () => {
      if (this.state !== 'running' || !this.current) return;
      try {
        await this.applyListeners(await this.prepareAll(this.current));
      } catch (error) {
        this.metrics.errors.inc({ kind: 'listener' });
        this.options.log.error('listeners.refresh_failed', { error: errorMessage(error) });
      }
    });
  }

  /**
   * Stops accepting, waits for open sessions up to `drainMs`, then cuts the rest. Calling it again
   * while it waits cuts the sessions now.
   */
  stop(drainMs: number): Promise<void> {
    if (this.stopping) {
      for (const tunnel of this.tunnels()) void tunnel.close(0);
      return this.stopping;
    }
    this.stopping = this.serialize(async () => {
      this.state = 'draining';
      if (this.tokenTimer) clearInterval(this.tokenTimer);
      const open = this.openSessions();
      this.options.log.info('shutdown', { open_sessions: open, drain_seconds: drainMs / 1000 });
      const started = Date.now();
      await Promise.all(this.tunnels().map((tunnel) => tunnel.close(drainMs)));
      const cut = this.openSessions();
      for (const listener of this.active.values()) this.metrics.listenerUp.set({ listener: listener.label, database: listener.spec.database }, 0);
      this.state = 'stopped';
      this.options.log.info('shutdown.done', { drained_ms: Date.now() - started, sessions_cut: cut });
      await this.current?.close().catch(() => {});
    });
    return this.stopping;
  }

  /** What /readyz answers: config loaded, every listener listening, a database token at hand. */
  async readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    if (this.state !== 'running') reasons.push(this.state === 'new' ? 'starting' : 'shutting down: draining open sessions');
    const listeners = [...this.active.values()].map((l) => ({
      listener: l.label,
      database: l.spec.database,
      listening: l.tunnel !== undefined,
      ...(l.error ? { error: l.error } : {}),
    }));
    for (const l of listeners) if (!l.listening) reasons.push(`listener ${l.listener} is not listening: ${l.error ?? 'not started'}`);
    const token = await this.tokenReadiness();
    if (!token.ok) reasons.push(`no database token: ${token.error}`);
    // Under `drop` sessions are served whatever the audit does: ready, with the audit's state in checks.
    const audit = this.current?.audit.health();
    if (audit?.policy === 'block' && audit.state !== 'ok') reasons.push(auditNotReady(audit));
    return {
      ready: reasons.length === 0,
      ...(reasons.length > 0 ? { reason: reasons[0] } : {}),
      checks: {
        config: { loaded: this.current !== undefined, file: this.current?.file, loaded_at: this.loadedAt, ...(this.lastReload ? { last_reload: this.lastReload } : {}) },
        listeners,
        token,
        sessions: { open: this.openSessions(), ...(this.gate ? { max: this.gate.limit } : {}) },
        audit: audit ?? { enabled: false },
      },
    };
  }

  /** TokenCache events (the cache is built before the server, so the CLI forwards them here). */
  tokenEvent(event: TokenCacheEvent): void {
    switch (event.type) {
      case 'fetch':
        this.metrics.tokenFetches.inc({ reason: event.reason });
        break;
      case 'fetched':
        this.options.log.info('token.fetched', { scope: event.scope, expires_on: new Date(event.expiresOnTimestamp).toISOString() });
        break;
      case 'fetch-failed':
        this.metrics.tokenFailures.inc();
        if (event.stuck) this.metrics.tokenTimeouts.inc();
        this.metrics.errors.inc({ kind: 'token' });
        this.options.log.warn(event.stuck ? 'token.fetch_stuck' : 'token.fetch_failed', { scope: event.scope, source: event.source, reason: event.reason, served_cached: event.servedCached });
        break;
    }
  }

  /** What the audit queue reports: failures, recovery, a full queue, dropped lines (rate-limited). */
  auditNotice(notice: AuditNotice): void {
    const { type, ...fields } = notice;
    const message = describeAuditNotice(notice);
    if (type === 'failing') {
      this.metrics.errors.inc({ kind: 'audit' });
      this.options.log.error('audit.failing', { ...fields, message });
    } else if (type === 'recovered') {
      this.options.log.info('audit.recovered', { ...fields, message });
    } else {
      this.options.log.warn(`audit.${type}`, { ...fields, message });
    }
  }

  /** Every dropped audit line and failed write. */
  auditCounted(what: 'dropped_lines' | 'write_errors', n: number): void {
    (what === 'dropped_lines' ? this.metrics.auditDroppedLines : this.metrics.auditWriteErrors).inc(n);
  }

  /** What /pools answers (and `azdb pools` prints): each pooled listener, its settings and its keys. */
  pools(): PoolsReport {
    const pools: PoolsReport['pools'] = [];
    for (const listener of this.active.values()) {
      const pool = listener.tunnel?.pool;
      if (!pool) continue;
      const limits = pool.limits;
      pools.push({
        listener: listener.label,
        database: listener.spec.database,
        mode: pool.mode,
        max_server_connections: limits.maxServerConnections,
        min_idle: limits.minIdle,
        idle_timeout_seconds: limits.idleTimeoutMs / 1000,
        server_lifetime_seconds: limits.serverLifetimeMs / 1000,
        max_client_wait_seconds: limits.maxClientWaitMs / 1000,
        max_prepared_statements: pool.maxPreparedStatements,
        keys: poolKeyCounts(pool).map((k) => ({
          db_user: k.dbUser,
          db_name: k.dbName,
          identity: k.identity,
          clients_connected: k.clientsConnected,
          clients_active: k.clientsActive,
          clients_waiting: k.clientsWaiting,
          clients_pinned: k.clientsPinned,
          servers_active: k.serversActive,
          servers_idle: k.serversIdle,
          servers_opening: k.serversOpening,
        })),
      });
    }
    return { pools };
  }

  private collectPoolGauges(): void {
    const gauges = [this.metrics.poolClientsActive, this.metrics.poolClientsConnected, this.metrics.poolClientsWaiting, this.metrics.poolServersActive, this.metrics.poolServersIdle];
    for (const gauge of gauges) gauge.reset();
    for (const listener of this.active.values()) {
      for (const s of listener.tunnel?.pool?.stats() ?? []) {
        const labels = { listener: listener.label, database: s.info.database, db_user: s.info.dbUser, db_name: s.info.dbName, identity: s.info.identity };
        this.metrics.poolClientsActive.set(labels, s.clientsActive);
        this.metrics.poolClientsConnected.set(labels, s.clientsConnected);
        this.metrics.poolClientsWaiting.set(labels, s.clientsWaiting);
        this.metrics.poolServersActive.set(labels, s.serversActive);
        this.metrics.poolServersIdle.set(labels, s.serversIdle);
      }
    }
  }

  /** Addresses of the listeners that are up (for logs and tests). */
  listening(): Array<{ label: string; host: string; port: number }> {
    return [...this.active.values()].flatMap((l) => (l.tunnel ? [{ label: l.label, host: l.tunnel.host, port: l.tunnel.port }] : []));
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }

  private commit(config: ServeConfig): void {
    this.current = config;
    this.loadedAt = new Date().toISOString();
    config.activate?.({ discovery: (summary) => this.discoveryChanged(config, summary) });
  }

  private rejectReload(at: string, error: unknown): false {
    const message = errorMessage(error);
    this.lastReload = { at, ok: false, error: message };
    this.metrics.reloads.inc({ result: 'error' });
    this.metrics.errors.inc({ kind: 'reload' });
    this.options.log.error('reload.rejected', { error: message, hint: 'the previous config keeps serving; fix the file and send SIGHUP again' });
    return false;
  }

  private discoveryChanged(config: ServeConfig, summary: DiscoverySummary): void {
    if (config !== this.current) return;
    this.metrics.discoveryDatabases.set({}, summary.databases);
    this.metrics.discoveryErrors.set({}, summary.errors.length);
    this.metrics.discoveryRefreshes.inc();
    if (summary.errors.length > 0) this.metrics.errors.inc({ kind: 'discovery' }, summary.errors.length);
    this.options.log.info('discovery', { databases: summary.databases, errors: summary.errors.map((e) => `${e.scope}: ${e.reason}`) });
    void this.refresh();
  }

  private async prepareAll(config: ServeConfig): Promise<PreparedListener[]> {
    const prepared: PreparedListener[] = [];
    for (const spec of config.listeners) prepared.push(await this.prepare(config, spec));
    return prepared;
  }

  private async prepare(config: ServeConfig, spec: ListenerConfig): Promise<PreparedListener> {
    const key = `${spec.host}:${spec.port}`;
    const label = listenerLabel(spec);
    const where = `${spec.source.file}:${spec.source.line}`;
    // Beyond loopback a listener has password_file and cert_file/key_file: config validation sees to it.
    let clientTls: SecureContext | undefined;
    let tlsMaterial = '';
    if (spec.cert_file !== undefined && spec.key_file !== undefined) {
      const [cert, key] = await Promise.all([readListenerFile(spec.cert_file, 'cert_file', label), readListenerFile(spec.key_file, 'key_file', label)]);
      try {
        clientTls = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
      } catch (error) {
        throw new UserError(`cert_file/key_file of listener ${label} (${where}) are not a usable certificate and key: ${errorMessage(error)}`, {
          hint: 'Give a PEM certificate (chain) and its PEM private key.',
        });
      }
      tlsMaterial = digest(`${cert}\n${key}`);
    }
    let password: PreparedListener['password'] = { generated: true };
    if (spec.password_file !== undefined) {
      const read = await readPasswordFile(spec.password_file, label);
      if (read.warning) this.options.log.warn('listener.password_file', { listener: label, warning: read.warning });
      password = { value: read.password, file: spec.password_file };
    }
    const db = config.findDatabase(spec.database);
    let target: UpstreamTarget | undefined;
    let pending: string | undefined;
    if (db === undefined) {
      const known = config.databaseNames();
      const message = `listener ${label} (${where}): no database named "${spec.database}"`;
      if (!config.discoveryConfigured) {
        throw new UserError(message, { hint: known.length > 0 ? `Known databases: ${known.join(', ')}.` : 'Add it under `databases:`.' });
      }
      pending = `database "${spec.database}" has not been found by discovery (yet)`;
    } else {
      target = await (this.options.resolveTarget ?? defaultResolveTarget)(db);
    }
    const { source: _source, ...fields } = spec;
    const signature = digest(
      JSON.stringify({
        fields,
        pool: spec.pool ?? db?.pool ?? null,
        target: target ? { ...target.tls, protocol: target.protocol, host: target.host, port: target.port, serverKind: target.serverKind, serverName: target.serverName } : null,
        tls: tlsMaterial,
        password: 'value' in password ? digest(password.value) : 'generated',
      }),
    );
    return { key, label, spec, db, target, ...(pending ? { pending } : {}), password, clientTls, signature };
  }

  /** Stops what went away or changed, then starts what is new; returns the listeners that failed to start. */
  private async applyListeners(prepared: PreparedListener[]): Promise<ActiveListener[]> {
    const wanted = new Map(prepared.map((p) => [p.key, p]));
    const generatedBefore = new Map<string, { path: string; password: string }>();
    for (const [key, listener] of [...this.active]) {
      const next = wanted.get(key);
      if (next && next.signature === listener.signature && listener.tunnel) {
        listener.db = next.db;
        listener.spec = next.spec;
        continue;
      }
      if (listener.generated) generatedBefore.set(key, listener.generated);
      this.stopListener(listener, next ? 'changed' : 'removed');
    }
    const failed: ActiveListener[] = [];
    for (const p of prepared) {
      if (this.active.has(p.key)) continue;
      const listener: ActiveListener = { key: p.key, label: p.label, spec: p.spec, db: p.db, signature: p.signature, relaying: new Set() };
      this.active.set(p.key, listener);
      try {
        await this.startListener(listener, p, generatedBefore.get(p.key));
      } catch (error) {
        listener.error = errorMessage(error);
        failed.push(listener);
        this.metrics.errors.inc({ kind: 'listener' });
        this.metrics.listenerUp.set({ listener: p.label, database: p.spec.database }, 0);
        this.options.log.error('listener.failed', { listener: p.label, database: p.spec.database, error: listener.error });
      }
    }
    return failed;
  }

  private async startListener(listener: ActiveListener, p: PreparedListener, generated: { path: string; password: string } | undefined): Promise<void> {
    if (p.pending || !p.target || !p.db) throw new Error(p.pending ?? 'no database');
    const target = p.target;
    let password: string;
    if ('value' in p.password) {
      password = p.password.value;
    } else if (p.spec.client_auth === 'entra') {
      password = newLocalPassword(); // never asked for: people sign in with their tokens
    } else {
      const generate = this.options.generatePassword ?? writeGeneratedPassword;
      listener.generated = generated ?? (await generate(join(this.options.stateDir, 'serve'), `${p.spec.database}-${p.spec.host}-${p.spec.port}`));
      password = listener.generated.password;
    }
    const labels = { database: target.name, protocol: target.protocol };
    const pool = p.spec.pool ?? p.db.pool;
    const tlsProblem = p.spec.client_auth === 'entra' ? entraTlsProblem(target.protocol, p.clientTls !== undefined) : undefined;
    if (tlsProblem) throw new UserError(`listener ${p.label}: ${tlsProblem}`);
    const poolLabels = (info: PoolKeyInfo) => ({ listener: listener.label, database: info.database, db_user: info.dbUser, db_name: info.dbName, identity: info.identity });
    listener.tunnel = await openTunnel({
      ...(pool
        ? {
            pool: poolLimits(pool),
            poolEvents: {
              onLogin: (info: PoolKeyInfo) => this.metrics.poolServerLogins.inc(poolLabels(info)),
              onWait: (info: PoolKeyInfo, waitedMs: number) => this.metrics.poolWait.observe(poolLabels(info), waitedMs / 1000),
              onPin: (info: PoolKeyInfo, reason: string) => {
                this.metrics.poolPins.inc({ database: info.database, reason });
                this.options.log.info('pool.pin', { listener: listener.label, database: info.database, db_user: info.dbUser, db_name: info.dbName, reason });
              },
            },
          }
        : {}),
      target,
      host: p.spec.host,
      port: p.spec.port,
      dbUser: p.spec.db_user ?? '',
      dbName: p.spec.db_name ?? '',
      password,
      authorize: (dbUser, dbName, person) => {
        const config = this.current;
        const db = listener.db;
        return config && db ? config.authorize(db)(dbUser, dbName, person) : { allowed: false, reason: 'the broker is reloading its config' };
      },
      ...(p.spec.client_auth === 'entra' ? { entra: this.entraFor(p) } : {}),
      getToken: (signal) => this.options.tokens.getToken(this.options.scope, { signal }),
      audit: this.audit,
      cancels: this.cancels,
      logins: this.logins,
      // A listener with a certificate takes TLS connections only.
      ...(p.clientTls ? { clientTls: p.clientTls, requireClientTls: true } : {}),
      ...(this.gate ? { gate: this.gate, maxConnections: this.gate.limit * 2 } : {}),
      onEvent: (event) => this.sessionEvent(listener, labels, event),
      onRefused: (outcome) => this.refused(listener, labels, outcome),
      onAcceptError: (error) => {
        this.metrics.errors.inc({ kind: 'listener' });
        this.options.log.error('listener.accept_failed', { listener: listener.label, error: errorMessage(error) });
      },
    });
    listener.error = undefined;
    this.metrics.listenerUp.set({ listener: p.label, database: p.spec.database }, 1);
    this.options.log.info('listener.up', {
      listener: p.label,
      database: target.name,
      protocol: target.protocol,
      address: `${listener.tunnel.host}:${listener.tunnel.port}`,
      tls: p.clientTls !== undefined,
      db_user: p.spec.db_user,
      db_name: p.spec.db_name,
      client_auth: p.spec.client_auth,
      ...(p.spec.client_auth === 'entra'
        ? { allowed_tenants: p.spec.allowed_tenants, upstream_identity: p.spec.upstream_identity, disconnect_expired: p.spec.disconnect_expired }
        : 'file' in p.password
          ? { password_file: p.password.file }
          : { generated_password_file: listener.generated!.path }),
    });
  }

  private entraFor(p: PreparedListener): EntraClientAuth {
    if (!this.options.clientTokens) throw new Error('client_auth: entra is not available in this broker');
    return {
      validate: this.options.clientTokens(p.spec.allowed_tenants ?? []),
      upstreamIdentity: p.spec.upstream_identity,
      disconnectExpired: p.spec.disconnect_expired,
    };
  }

  private stopListener(listener: ActiveListener, why: 'removed' | 'changed'): void {
    this.active.delete(listener.key);
    this.metrics.listenerUp.remove({ listener: listener.label, database: listener.spec.database });
    if (!listener.tunnel) return;
    const open = listener.relaying.size;
    this.options.log.info('listener.down', { listener: listener.label, database: listener.spec.database, why, draining_sessions: open });
    // close() stops accepting at once (the port is free for a changed listener); sessions drain.
    const tunnel = listener.tunnel;
    this.draining.set(tunnel, listener);
    void tunnel.close(this.options.reloadDrainMs ?? DEFAULT_RELOAD_DRAIN_MS).finally(() => this.draining.delete(tunnel));
  }

  private sessionEvent(listener: ActiveListener, labels: { database: string; protocol: string }, event: SessionEvent): void {
    switch (event.type) {
      case 'relaying':
        listener.relaying.add(event.id);
        this.metrics.sessionsOpen.inc(labels);
        this.options.log.info('session.start', { session_id: event.id, listener: listener.label, ...labels, db_user: event.dbUser, db_name: event.dbName, client: event.client, ...event.person });
        break;
      case 'closed':
        if (listener.relaying.delete(event.id)) {
          this.metrics.sessionsOpen.dec(labels);
          this.metrics.sessionsTotal.inc({ ...labels, result: event.result });
          if (event.result === 'error') this.metrics.errors.inc({ kind: 'relay' });
        } else {
          this.metrics.sessionsTotal.inc({ ...labels, result: 'rejected' });
          this.metrics.errors.inc({ kind: 'session' });
          this.options.log.warn('session.rejected', { session_id: event.id, listener: listener.label, ...labels, error: event.error });
        }
        break;
      case 'cancel':
        this.metrics.cancelRequests.inc({ forwarded: String(event.forwarded) });
        break;
      case 'login-failed':
      case 'login-throttled':
        this.loginEvent(listener, labels, event);
        break;
      case 'client-auth-refused':
        this.metrics.clientAuthRefusals.inc({ listener: listener.label, protocol: labels.protocol, reason: event.reason });
        this.options.log.warn('client_auth.refused', { listener: listener.label, ...labels, reason: event.reason });
        break;
      case 'expired-disconnect':
        this.metrics.expiredDisconnects.inc({ listener: listener.label, protocol: labels.protocol });
        break;
    }
  }

  /** Counted every time; logged once per source per window (a brute force must not flood the log). */
  private loginEvent(listener: ActiveListener, session: { database: string; protocol: string }, event: Extract<SessionEvent, { type: 'login-failed' | 'login-throttled' }>): void {
    const labels = { listener: listener.label, protocol: session.protocol };
    const where = { ...labels, database: session.database, source: event.source };
    if (event.type === 'login-failed') {
      this.metrics.loginFailures.inc(labels);
      if (event.delayMs > 0) this.metrics.loginBackoff.inc({ ...labels, action: 'delayed' });
      if (event.announce) this.options.log.warn('login.backoff', { ...where, failures: event.failures, delay_ms: event.delayMs });
    } else {
      this.metrics.loginBackoff.inc({ ...labels, action: 'refused' });
      this.metrics.sessionsTotal.inc({ ...session, result: 'rejected' });
      if (event.announce) this.options.log.warn('login.backoff', { ...where, refused: true, retry_in_ms: event.retryInMs });
    }
  }

  private refused(listener: ActiveListener, labels: { database: string; protocol: string }, outcome: RefusalOutcome): void {
    if (outcome !== 'refused') return;
    this.metrics.sessionsTotal.inc({ ...labels, result: 'refused' });
    this.options.log.warn('session.refused', { listener: listener.label, ...labels, reason: `--max-connections ${this.gate?.limit}` });
  }

  private observeAudit(event: AuditEvent): void {
    if (event.event !== 'session.end') return;
    const labels = { database: event.database, protocol: event.protocol };
    this.metrics.bytesFromClient.inc(labels, event.bytes_from_client);
    this.metrics.bytesToClient.inc(labels, event.bytes_to_client);
    this.options.log.info('session.end', {
      session_id: event.session_id,
      ...labels,
      db_user: event.db_user,
      db_name: event.db_name,
      client: event.client_address,
      result: event.result,
      error: event.error,
      bytes_from_client: event.bytes_from_client,
      bytes_to_client: event.bytes_to_client,
      duration_ms: event.duration_ms,
    });
  }

  /** Every tunnel still open: serving ones and those a reload left draining. */
  private tunnels(): Tunnel[] {
    return [...[...this.active.values()].flatMap((l) => (l.tunnel ? [l.tunnel] : [])), ...this.draining.keys()];
  }

  private openSessions(): number {
    let open = 0;
    for (const listener of [...this.active.values(), ...this.draining.values()]) open += listener.relaying.size;
    return open;
  }

  private warmToken(): void {
    // The cache answers from memory while its token is valid and refreshes it before expiry;
    // failures are reported through tokenEvent.
    this.options.tokens.getToken(this.options.scope).catch(() => {});
  }

  private async tokenReadiness(): Promise<TokenReadiness> {
    const { tokens, scope } = this.options;
    const expires = tokens.expiresOn(scope);
    if (expires !== undefined && expires - Date.now() > TOKEN_READY_MARGIN_MS) return { ok: true, expires_on: new Date(expires).toISOString(), ...sourceFields(tokens.status(scope)) };
    let timer: NodeJS.Timeout | undefined;
    const fetched = await Promise.race([
      tokens.getToken(scope).then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.options.readyTokenWaitMs ?? 1_000))),
    ]);
    clearTimeout(timer);
    const status = tokens.status(scope);
    if (!fetched) return { ok: false, error: tokenTrouble(status), ...sourceFields(status) };
    const now = tokens.expiresOn(scope);
    return { ok: true, ...(now !== undefined ? { expires_on: new Date(now).toISOString() } : {}), ...sourceFields(status) };
  }
}

/** A pool key's counters: what /pools reports of it and the picker shows. */
export interface PoolKeyCounts {
  dbUser: string;
  dbName: string;
  /** `oid:…@tenant` or `appid:…@tenant` (never a token). */
  identity: string;
  /** Connected clients, holding a server connection or not. */
  clientsConnected: number;
  clientsActive: number;
  clientsWaiting: number;
  /** Clients pinned to their server connection (transaction mode; 0 in session mode). */
  clientsPinned: number;
  serversActive: number;
  serversIdle: number;
  serversOpening: number;
  /** Server logins (each with a cached token) since the key was first used. */
  logins: number;
}

/** The one reading of a pool's stats, for /pools (BrokerServer.pools) and the picker's pools. */
export function poolKeyCounts(pool: NonNullable<Tunnel['pool']>): PoolKeyCounts[] {
  return pool.stats().map((s) => ({
    dbUser: s.info.dbUser,
    dbName: s.info.dbName,
    identity: s.info.identity,
    clientsConnected: s.clientsConnected,
    clientsActive: s.clientsActive,
    clientsWaiting: s.clientsWaiting,
    clientsPinned: s.clientsPinned,
    serversActive: s.serversActive,
    serversIdle: s.serversIdle,
    serversOpening: s.serversOpening,
    logins: s.logins,
  }));
}

/** The JSON of /pools and `azdb pools --json`; README "Pooling" documents it. */
export interface PoolsReport {
  pools: Array<{
    listener: string;
    database: string;
    mode: PoolMode;
    max_server_connections: number;
    min_idle: number;
    idle_timeout_seconds: number;
    server_lifetime_seconds: number;
    max_client_wait_seconds: number;
    /** Transaction mode: server-side prepared statements per server connection (0: a named prepare pins the client). */
    max_prepared_statements: number;
    /** `azdb serve --workers N` (N > 1): the worker whose pool this is (each has its own). */
    worker?: number;
    keys: Array<{
      db_user: string;
      db_name: string;
      identity: string;
      /** Connected clients, holding a server connection or not. */
      clients_connected: number;
      /** Clients holding a server connection (in transaction mode: in a transaction, or pinned). */
      clients_active: number;
      clients_waiting: number;
      /** Transaction mode: clients pinned to their server connection for the rest of their session. */
      clients_pinned: number;
      servers_active: number;
      servers_idle: number;
      servers_opening: number;
    }>;
  }>;
}

/** The token check of /readyz. */
interface TokenReadiness {
  ok: boolean;
  expires_on?: string;
  error?: string;
  /** How the credential source is doing: ok, failing or stuck (no answer within the deadline). */
  source: TokenSourceStatus['state'];
  /** How long the request in flight has waited, while there is one. */
  waiting_seconds?: number;
}

function sourceFields(status: TokenSourceStatus): Pick<TokenReadiness, 'source' | 'waiting_seconds'> {
  return { source: status.state, ...(status.fetchingSince !== undefined ? { waiting_seconds: waitedSeconds(status.fetchingSince) } : {}) };
}

function waitedSeconds(since: number): number {
  return Math.max(0, Math.round((Date.now() - since) / 1000));
}

/** Why there is no token now, from what the source last did and what it is doing. */
function tokenTrouble(status: TokenSourceStatus): string {
  const waiting = status.fetchingSince === undefined ? undefined : `${waitedSeconds(status.fetchingSince)} s`;
  switch (status.state) {
    case 'stuck':
      return `the token source is stuck since ${new Date(status.since!).toISOString()}: ${status.error}${waiting ? `; the current attempt has waited ${waiting}` : ''}`;
    case 'failing':
      return `${status.error}${waiting ? `; trying again (waiting ${waiting})` : ''}`;
    case 'ok':
      return `waiting for a token from the credential${waiting ? ` (${waiting} so far)` : ''}`;
  }
}

function auditNotReady(audit: AuditHealth): string {
  return audit.state === 'failing'
    ? `audit log ${audit.output} cannot be written: ${audit.error} (broker.audit.on_failure: block holds sessions once its queue is full)`
    : `audit queue for ${audit.output} is full: sessions wait for it (broker.audit.on_failure: block)`;
}

/** A token that expires sooner than this does not make the broker ready. */
const TOKEN_READY_MARGIN_MS = 30_000;
/** Sessions of a listener removed by a reload get this long before they are cut. */
const DEFAULT_RELOAD_DRAIN_MS = 30_000;

async function readListenerFile(path: string, key: string, label: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read ${key} of listener ${label}: ${(error as NodeJS.ErrnoException).code ?? String(error)} ${path}`);
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
