/**
 * The composition root: config → credential → token cache → discovery → access → audit, built
 * once per use and handed to the use-cases. What the database commands share: the loaded config,
 * one credential and token cache for the process, the audit sink, the databases (static +
 * discovered through ARM when `discovery:` is configured) and lookups of a database by name with
 * its access rules.
 */
import { homedir } from 'node:os';
import type { Writable } from 'node:stream';
import { resolveConfigPath, resolveStateDir } from '../config/paths.js';
import { loadConfig } from '../config/load.js';
import type { AzdbConfig, DatabaseConfig, RoleConfig } from '../config/schema.js';
import { CLOUDS, databaseScope } from '../azure/clouds.js';
import { createCredential } from '../azure/credential.js';
import { TokenCache, type TokenCacheOptions } from '../azure/token-cache.js';
import { DiscoveryService, discoveryCacheFile, type DiscoveryFailure, type DiscoveryResult } from '../azure/discovery.js';
import { createFileAuditSink, createStreamAuditSink, NO_AUDIT, type AuditSink } from '../broker/audit.js';
import { describeAuditNotice, type AuditObserver } from '../broker/audit-queue.js';
import { BUILTIN_LOCAL_ROLE, allowedValues, checkAccess, type AllowedValues, type Person } from '../access/index.js';
import type { AccessDecision } from '../broker/session-record.js';
import { UserError } from '../errors.js';
import type { CoreContext } from './context.js';

export interface Runtime {
  config: AzdbConfig;
  stateDir: string;
  tokens: TokenCache;
  /** The Entra scope of database tokens in the configured cloud. */
  databaseScope: string;
  audit: AuditSink;
  roles: RoleConfig[];
  /** Static databases, then discovered ones whose names no static entry takes; sorted by name. */
  databases(): DatabaseConfig[];
  /** The discovery result used (undefined when `discovery:` is empty or discovery was skipped). */
  discovery: DiscoveryResult | undefined;
  /** Discovered servers hidden because a static database has the same name. */
  shadowed: string[];
  /** A database by name, static or discovered; a usage error naming the known ones otherwise. */
  database(name: string): DatabaseConfig;
  allowed(db: DatabaseConfig): AllowedValues;
  authorize(db: DatabaseConfig): (dbUser: string, dbName: string, person?: Person) => AccessDecision;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /**
   * Run discovery (or reuse its cached result) when the config has `discovery:`; a function decides
   * from the loaded config (so the file is read once). @default true
   */
  discover?: boolean | ((config: AzdbConfig) => boolean);
  /** `azdb serve`: its one token cache (kept across config reloads) instead of a new one. */
  tokens?: TokenCache;
  /** `azdb serve`: its own audit sink for the loaded config (e.g. stdout for `path: "-"`). */
  audit?: (config: AzdbConfig) => AuditSink;
  /**
   * A running discovery (e.g. `azdb serve`'s, refreshed in the background): its current result
   * (or a first listing) is used instead of a new service. Ignored when `discover` is false.
   */
  discoveryService?: DiscoveryService;
}

/** The config file `ctx` names: --config, else AZDB_CONFIG, else the XDG default. */
export function configPath(ctx: Pick<CoreContext, 'configFlag' | 'env'>): string {
  return resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() });
}

/** azdb's state folder for `ctx` (AZDB_STATE_DIR, else the per-user or service default). */
export function stateDirOf(ctx: Pick<CoreContext, 'env'>): string {
  return resolveStateDir(ctx.env, homedir(), process.getuid?.());
}

/** The one way azdb builds DefaultAzureCredential and its token cache, from the config's `azure:` settings. */
export function createTokenCache(azure: Pick<AzdbConfig['azure'], 'cloud' | 'managed_identity_client_id'>, env: NodeJS.ProcessEnv, onEvent?: TokenCacheOptions['onEvent']): TokenCache {
  return new TokenCache({
    credential: createCredential({
      cloud: azure.cloud,
      ...(azure.managed_identity_client_id ? { managedIdentityClientId: azure.managed_identity_client_id } : {}),
    }, env),
    ...(onEvent ? { onEvent } : {}),
  });
}

/** A discovery service for `config` with its cache in the state folder, keyed by who is asking. */
export function createDiscovery(config: AzdbConfig, tokens: TokenCache, ctx: Pick<CoreContext, 'env'>): DiscoveryService {
  return new DiscoveryService({
    config,
    tokens,
    cacheFile: discoveryCacheFile(stateDirOf(ctx)),
    cacheKeyExtra: { tenant: ctx.env.AZURE_TENANT_ID, client: ctx.env.AZURE_CLIENT_ID, identity: ctx.env.IDENTITY_ENDPOINT },
  });
}

/**
 * The sink of `broker.audit.path`: a file (0600, appended), `-` for the stream `dash` names (serve:
 * stdout; tunnels: stderr, as stdout carries `proxy db --json`), or none.
 */
export function auditSinkFor(audit: AzdbConfig['broker']['audit'], dash: { stream: Writable; name: 'stdout' | 'stderr' }, observer: AuditObserver): AuditSink {
  const { path, queries, on_failure } = audit;
  if (path === '-') return createStreamAuditSink(dash.stream, { queries, on_failure, observer }, dash.name);
  return path ? createFileAuditSink(path, { queries, on_failure, observer }) : NO_AUDIT;
}

/** `broker.audit.path` for the tunnels of this process; its failures are warnings on stderr. */
function tunnelAuditSink(config: AzdbConfig, ctx: CoreContext): AuditSink {
  return auditSinkFor(config.broker.audit, { stream: process.stderr, name: 'stderr' }, { notice: (notice) => ctx.log.warn(describeAuditNotice(notice)) });
}

export async function loadRuntime(ctx: CoreContext, options: RuntimeOptions = {}): Promise<Runtime> {
  const file = configPath(ctx);
  const config = await loadConfig(file);
  for (const warning of config.warnings) ctx.log.warn(`${warning.file}:${warning.line}:${warning.column}: ${warning.message}`);
  const cloud = CLOUDS[config.azure.cloud];
  const tokens = options.tokens ?? createTokenCache(config.azure, ctx.env);
  const audit = options.audit ? options.audit(config) : tunnelAuditSink(config, ctx);
  const roles = selectRoles(config);
  const stateDir = stateDirOf(ctx);
  let discovery: DiscoveryResult | undefined;
  const discover = typeof options.discover === 'function' ? options.discover(config) : options.discover !== false;
  if (discover && config.discovery.length > 0) {
    const service = options.discoveryService ?? createDiscovery(config, tokens, ctx);
    discovery = await service.get();
  }
  const staticNames = new Set(config.databases.map((db) => db.name));
  const discovered = discovery?.databases ?? [];
  const shadowed = discovered.filter((db) => staticNames.has(db.name)).map((db) => db.name);
  const all: DatabaseConfig[] = [...config.databases, ...discovered.filter((db) => !staticNames.has(db.name))].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  const database = (name: string): DatabaseConfig => {
    const found = all.find((db) => db.name === name);
    if (!found) {
      const names = all.map((db) => db.name);
      const failed = discovery?.errors.length ? ` Discovery could not list ${describeFailures(discovery.errors)}; \`azdb db ls\` shows why.` : '';
      throw new UserError(`no database named "${name}" in ${file}${config.discovery.length > 0 ? ' or found by discovery' : ''}`, {
        usage: true,
        hint:
          (names.length > 0 ? `Known databases: ${names.join(', ')}. \`azdb db ls\` lists them with what you may use.` : 'Add it under `databases:` or configure discovery (`azdb config create`).') +
          failed,
      });
    }
    return found;
  };
  return {
    config,
    stateDir,
    tokens,
    databaseScope: databaseScope(cloud),
    audit,
    roles,
    databases: () => [...all],
    discovery,
    shadowed,
    database,
    allowed: (db) => allowedValues(roles, { name: db.name, labels: db.labels, protocol: db.protocol }),
    authorize: (db) => (dbUser, dbName, person) => {
      const decision = checkAccess(roles, { name: db.name, labels: db.labels, protocol: db.protocol }, { dbUser, dbName, ...(person ? { person } : {}) });
      if (!decision.allowed) return { allowed: false, reason: decision.reason };
      return { allowed: true, role: decision.role, ...(decision.groups ? { groups: decision.groups } : {}) };
    },
    close: () => audit.close(),
  };
}

/** The roles of `broker.roles`, or the built-in allow-all local role when none are named. */
function selectRoles(config: AzdbConfig): RoleConfig[] {
  const names = config.broker.roles;
  if (!names) return [BUILTIN_LOCAL_ROLE];
  return names.map((name) => config.roles.find((r) => r.metadata.name === name)).filter((r): r is RoleConfig => r !== undefined);
}

function describeFailures(errors: readonly DiscoveryFailure[]): string {
  const scopes = errors.slice(0, 3).map((e) => e.scope);
  return scopes.join('; ') + (errors.length > 3 ? ` and ${errors.length - 3} more` : '');
}
