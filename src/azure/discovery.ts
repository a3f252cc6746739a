/**
 * ARM discovery of Azure Database for PostgreSQL and MySQL servers, with the matchers of
 * teleport.yaml `db_service.azure` (config `discovery:`): types, regions, subscriptions (`*` lists
 * them), resource groups (`*` lists by subscription), tags.
 *
 * One listing per (subscription, resource type, resource group) whatever the number of matchers;
 * pages followed through `nextLink`; ARM throttling retried by the pipeline (Retry-After). A scope
 * that fails (403, still throttled after the retries, not found, unreachable) is reported with the
 * permission it needs and a hint while the others are still listed. Servers that are not Ready are
 * skipped.
 *
 * {@link DiscoveryService} keeps the last result for a TTL (in memory, and in a small JSON file in
 * the state dir that holds no secrets: names, addresses, labels, errors), refreshes on demand or
 * in the background (`azdb serve`), and tells listeners when the result changes.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AzdbConfig, DiscoveryMatcher } from '../config/schema.js';
import { WILDCARD } from '../config/schema.js';
import { AzdbError, errorMessage } from '../errors.js';
import { ArmRequestError, createArmClient, type ArmClient } from './arm.js';
import { CLOUDS, resourceManagerScope } from './clouds.js';
import {
  DISCOVERY_PERMISSIONS,
  SUBSCRIPTIONS_API_VERSION,
  isReady,
  matchesFilters,
  readServer,
  serverTypesFor,
  toDatabases,
  type DiscoveredDatabase,
  type ListedServer,
  type ServerTypeInfo,
} from './discovery-servers.js';
import type { TokenCache } from './token-cache.js';

export {
  DISCOVERY_PERMISSIONS,
  SERVER_TYPE_INFO,
  normalizeRegion,
  type DiscoveredDatabase,
  type AzureServerType,
} from './discovery-servers.js';

/** One scope discovery could not list, and what to do about it. */
export interface DiscoveryFailure {
  /** Human name of the scope: `subscription S, Microsoft.DBforMySQL/servers`, `subscriptions`, `credential`. */
  scope: string;
  subscriptionId?: string;
  resourceGroup?: string;
  type?: string;
  /** HTTP status from ARM, when there was an answer. */
  status?: number;
  /** ARM's error code (`AuthorizationFailed`, `SubscriptionRequestsThrottled`, …). */
  code?: string;
  reason: string;
  /** The Azure RBAC action that is missing (403). */
  permission?: string;
  hint: string;
}

export interface DiscoveryResult {
  databases: DiscoveredDatabase[];
  errors: DiscoveryFailure[];
  /** Servers found but left out because they are not Ready (or have no address). */
  skipped: Array<{ resourceId: string; state: string }>;
  /** Epoch ms when the listing finished. */
  at: number;
  /** True when this came from the cache file rather than ARM. */
  cached: boolean;
}

export interface DiscoveryOptions {
  config: Pick<AzdbConfig, 'azure' | 'discovery' | 'file'>;
  tokens: TokenCache;
  /** PEM CA(s) for ARM's TLS instead of the system CAs (tests). */
  ca?: string;
  /** Retries of a throttled request before its scope is reported. @default 3 */
  maxRetries?: number;
  /** Longest ARM Retry-After waited for. @default 30_000 */
  maxRetryAfterMs?: number;
  /** Listings in flight at once. @default 4 */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Lists the servers the matchers select. Never throws for Azure's failures: they are in `errors`. */
export async function discover(options: DiscoveryOptions): Promise<DiscoveryResult> {
  const matchers = options.config.discovery;
  const empty = (errors: DiscoveryFailure[] = []): DiscoveryResult => ({ databases: [], errors, skipped: [], at: Date.now(), cached: false });
  if (matchers.length === 0) return empty();
  const cloud = CLOUDS[options.config.azure.cloud];
  const endpoint = options.config.azure.resource_manager_endpoint ?? cloud.resourceManagerEndpoint;
  const scope = resourceManagerScope(cloud.resourceManagerEndpoint);

  // One token up front: without it every scope would fail the same way.
  try {
    await options.tokens.getToken(scope);
  } catch (error) {
    return empty([
      {
        scope: 'credential',
        reason: errorMessage(error),
        hint: error instanceof AzdbError && error.hint ? error.hint : 'Run `azdb creds` to see which credential source works.',
      },
    ]);
  }

  let arm: ArmClient;
  try {
    arm = createArmClient({
      endpoint,
      scope,
      tokens: options.tokens,
      ...(options.ca ? { ca: options.ca } : {}),
      maxRetries: options.maxRetries ?? 3,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 30_000,
    });
  } catch (error) {
    return empty([{ scope: 'azure.resource_manager_endpoint', reason: errorMessage(error), hint: 'Fix azure.resource_manager_endpoint (an https:// URL).' }]);
  }

  const errors: DiscoveryFailure[] = [];
  const limit = limiter(options.concurrency ?? 4);

  // Subscriptions: explicit ones as written, `*` from ARM (Enabled, Warned and PastDue ones).
  let listedSubscriptions: string[] = [];
  if (matchers.some((m) => m.subscriptions.includes(WILDCARD))) {
    try {
      const items = await arm.listAll<{ subscriptionId?: string; state?: string }>(`/subscriptions?api-version=${SUBSCRIPTIONS_API_VERSION}`, options.signal);
      listedSubscriptions = items
        .filter((s) => typeof s.subscriptionId === 'string' && !['disabled', 'deleted'].includes((s.state ?? '').toLowerCase()))
        .map((s) => s.subscriptionId as string);
    } catch (error) {
      errors.push(failure(error, { scope: 'subscriptions (listing them for subscriptions: ["*"])' }, options.maxRetries ?? 3));
    }
  }

  // The listings each matcher needs, each done once.
  const listings = new Map<string, { scope: { subscriptionId: string; type: ServerTypeInfo; group: string }; result?: Promise<ListedServer[] | undefined> }>();
  const needed: Array<{ matcher: DiscoveryMatcher; keys: string[] }> = [];
  for (const matcher of matchers) {
    const subscriptions = unique([...matcher.subscriptions.filter((s) => s !== WILDCARD), ...(matcher.subscriptions.includes(WILDCARD) ? listedSubscriptions : [])]);
    const groups = matcher.resource_groups.includes(WILDCARD) ? [WILDCARD] : unique(matcher.resource_groups);
    const keys: string[] = [];
    for (const subscriptionId of subscriptions) {
      for (const type of serverTypesFor(matcher.types)) {
        for (const group of groups) {
          const key = `${subscriptionId.toLowerCase()}|${type.type}|${group.toLowerCase()}`;
          keys.push(key);
          if (!listings.has(key)) listings.set(key, { scope: { subscriptionId, type, group } });
        }
      }
    }
    needed.push({ matcher, keys });
  }
  for (const listing of listings.values()) {
    // The ids as the matcher or ARM spelled them (the map key is lowercased for de-duplication).
    const { subscriptionId, type, group } = listing.scope;
    listing.result = limit(() => listServers(arm, subscriptionId, type, group, options.signal)).catch((error: unknown) => {
      errors.push(
        failure(
          error,
          {
            scope: `subscription ${subscriptionId}${group === WILDCARD ? '' : `, resource group ${group}`}, ${type.type}`,
            subscriptionId,
            type: type.type,
            ...(group === WILDCARD ? {} : { resourceGroup: group }),
            permission: type.permission,
          },
          options.maxRetries ?? 3,
        ),
      );
      return undefined;
    });
  }

  const selected = new Map<string, { server: ListedServer; source: DiscoveryMatcher['source'] }>();
  const skipped = new Map<string, string>();
  for (const { matcher, keys } of needed) {
    for (const key of keys) {
      const servers = (await listings.get(key)?.result) ?? [];
      for (const server of servers) {
        if (!matchesFilters(server, matcher)) continue;
        const id = server.id.toLowerCase();
        if (!isReady(server) || server.fqdn === undefined) {
          skipped.set(id, server.state ?? 'unknown');
          continue;
        }
        if (!selected.has(id)) selected.set(id, { server, source: matcher.source });
      }
    }
  }
  // A database's source is the first matcher that selected it.
  return {
    databases: toDatabases([...selected.values()].map((s) => s.server), (server) => selected.get(server.id.toLowerCase())!.source),
    errors: errors.sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0)),
    skipped: [...skipped].map(([resourceId, state]) => ({ resourceId, state })),
    at: Date.now(),
    cached: false,
  };
}

async function listServers(arm: ArmClient, subscriptionId: string, type: ServerTypeInfo, group: string, signal: AbortSignal | undefined): Promise<ListedServer[]> {
  const scope = `/subscriptions/${encodeURIComponent(subscriptionId)}${group === WILDCARD ? '' : `/resourceGroups/${encodeURIComponent(group)}`}`;
  const items = await arm.listAll(`${scope}/providers/${type.type}?api-version=${type.apiVersion}`, signal);
  return items.map((item) => readServer(item, type)).filter((server): server is ListedServer => server !== undefined);
}

function failure(error: unknown, where: Omit<DiscoveryFailure, 'reason' | 'hint'>, retries: number): DiscoveryFailure {
  const base = { ...where, reason: errorMessage(error) };
  if (!(error instanceof ArmRequestError)) {
    return { ...base, hint: error instanceof AzdbError && error.hint ? error.hint : 'Check that ARM is reachable from here, then run `azdb db ls` again.' };
  }
  const answered = { ...base, ...(error.status === undefined ? {} : { status: error.status }), ...(error.code === undefined ? {} : { code: error.code }) };
  const reason = `${error.status ?? ''}${error.code ? ` ${error.code}` : ''}: ${error.armMessage}`.trim();
  switch (error.status) {
    case 403:
      return {
        ...answered,
        reason,
        hint: where.permission
          ? `Grant the identity "${where.permission}" on /subscriptions/${where.subscriptionId ?? '<id>'} — the custom discovery role ` +
            `(\`azdb setup\` step 2) lists ${DISCOVERY_PERMISSIONS.join(', ')}.`
          : 'Give the identity a role on the subscription (the custom discovery role of `azdb setup` step 2).',
      };
    case 429:
      return {
        ...answered,
        reason: `throttled by ARM after ${retries} retries${error.retryAfterSeconds === undefined ? '' : ` (Retry-After ${error.retryAfterSeconds} s)`}: ${reason}`,
        hint: 'ARM limits reads per subscription and tenant; run the command again later (`azdb serve` retries at its next refresh).',
      };
    case 401:
      return { ...answered, reason, hint: 'ARM refused the token: check the tenant (AZURE_TENANT_ID), azure.cloud and azure.resource_manager_endpoint.' };
    case 404:
      return {
        ...answered,
        reason,
        hint:
          error.code === 'ResourceGroupNotFound'
            ? 'Check discovery.resource_groups: that resource group does not exist in the subscription.'
            : error.code === 'SubscriptionNotFound'
              ? 'Check discovery.subscriptions and that the identity has a role on that subscription.'
              : 'Check the subscription, resource group and azure.resource_manager_endpoint.',
      };
    default:
      return { ...answered, reason: error.status === undefined ? base.reason : reason, hint: error.hint ?? 'Run the command again; if it persists, check ARM from this machine (`azdb doctor`).' };
  }
}

function unique(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((value) => {
    const key = value.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function limiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: Array<() => void> = [];
  return async (task) => {
    if (active >= max) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

// ---- service: TTL cache, background refresh, change events --------------------------------------

export interface DiscoveryServiceOptions extends Omit<DiscoveryOptions, 'signal'> {
  /** A result younger than this is reused. @default 60_000 */
  ttlMs?: number;
  /** JSON cache shared by azdb processes (no secrets); absent: memory only. */
  cacheFile?: string;
  /** Things that change what a listing would return beyond the config (e.g. the credential in use). */
  cacheKeyExtra?: Record<string, string | undefined>;
  now?: () => number;
  /** Replaces {@link discover} (tests). */
  run?: (options: DiscoveryOptions) => Promise<DiscoveryResult>;
}

export type DiscoveryListener = (result: DiscoveryResult) => void;

const CACHE_VERSION = 1;

export class DiscoveryService {
  private current: DiscoveryResult | undefined;
  private inflight: Promise<DiscoveryResult> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<DiscoveryListener>();
  private readonly abort = new AbortController();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly key: string;

  constructor(private readonly options: DiscoveryServiceOptions) {
    this.ttlMs = options.ttlMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.key = cacheKey(options);
  }

  /** Databases of the last result (empty before the first). */
  list(): DiscoveredDatabase[] {
    return this.current?.databases ?? [];
  }

  /** Failures of the last result. */
  get lastErrors(): DiscoveryFailure[] {
    return this.current?.errors ?? [];
  }

  get lastResult(): DiscoveryResult | undefined {
    return this.current;
  }

  /** Calls `listener` after every refresh that changes the databases or the errors; returns the undo. */
  onChange(listener: DiscoveryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last result if younger than the TTL (memory, then the cache file), else a refresh. */
  async get(): Promise<DiscoveryResult> {
    if (this.current && this.now() - this.current.at < this.ttlMs) return this.current;
    const cached = await this.readCache();
    if (cached) {
      this.publish(cached);
      return cached;
    }
    return this.refresh();
  }

  /** Lists now (one listing in flight at a time; concurrent callers share it). */
  refresh(): Promise<DiscoveryResult> {
    if (this.inflight) return this.inflight;
    const run = this.options.run ?? discover;
    this.inflight = run({ ...this.options, signal: this.abort.signal })
      .then(async (result) => {
        this.publish(result);
        await this.writeCache(result);
        return result;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  /** Refreshes every `intervalMs` until {@link stop}; the timer does not keep the process alive. */
  start(intervalMs = 5 * 60_000): void {
    this.stopTimer();
    const tick = () => {
      this.refresh()
        .catch(() => {})
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops background refresh and abandons a listing in flight. */
  stop(): void {
    this.stopTimer();
    this.abort.abort();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private publish(result: DiscoveryResult): void {
    const before = this.current;
    this.current = result;
    if (before && fingerprint(before) === fingerprint(result)) return;
    for (const listener of this.listeners) {
      try {
        listener(result);
      } catch {
        // A listener's failure is its own; others still hear.
      }
    }
  }

  private async readCache(): Promise<DiscoveryResult | undefined> {
    const file = this.options.cacheFile;
    if (!file) return undefined;
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as { version?: number; key?: string; result?: DiscoveryResult };
      if (parsed.version !== CACHE_VERSION || parsed.key !== this.key || !parsed.result) return undefined;
      if (this.now() - parsed.result.at >= this.ttlMs || parsed.result.at > this.now() + 60_000) return undefined;
      return { ...parsed.result, cached: true };
    } catch {
      return undefined;
    }
  }

  private async writeCache(result: DiscoveryResult): Promise<void> {
    const file = this.options.cacheFile;
    // Only answers worth reusing: not a credential, network or throttling failure of the moment.
    if (!file || result.errors.some((e) => e.status === undefined || e.status === 429 || e.status >= 500)) return;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const temp = join(dirname(file), `.discovery-${process.pid}-${Date.now()}.tmp`);
      await writeFile(temp, JSON.stringify({ version: CACHE_VERSION, key: this.key, result }), { mode: 0o600 });
      await rename(temp, file);
    } catch {
      // A cache is an optimisation; a read-only state dir must not fail discovery.
    }
  }
}

/** The on-disk cache of discovery in a state dir. */
export function discoveryCacheFile(stateDir: string): string {
  return join(stateDir, 'discovery-cache.json');
}

function cacheKey(options: DiscoveryServiceOptions): string {
  const { azure, discovery } = options.config;
  const matchers = discovery.map(({ source: _source, ...rest }) => rest);
  return createHash('sha256')
    .update(JSON.stringify({ azure, matchers, extra: options.cacheKeyExtra ?? {} }))
    .digest('hex');
}

function fingerprint(result: DiscoveryResult): string {
  return JSON.stringify({
    databases: result.databases.map((db) => [db.name, db.uri, db.protocol, db.labels, db.azure]),
    errors: result.errors.map((e) => [e.scope, e.status, e.code]),
  });
}
