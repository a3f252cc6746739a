/**
 * Config → azdb.yaml text (for `azdb config create`, `azdb setup` and `azdb demo`). Keys come out
 * in the documented order, values equal to their default are left out where that reads better,
 * and the result always parses back to the same normalized config.
 */
import { Document, isMap, isPair, isScalar, visit } from 'yaml';
import { parseConfig } from './load.js';
import { normalizeRegion } from '../azure/discovery-servers.js';
import {
  CONFIG_VERSION,
  ROLE_KIND,
  ROLE_VERSION,
  type AzdbConfig,
  type ConfigInput,
  type DatabaseInput,
  type DiscoveryInput,
  type ListenerInput,
  type RoleConditions,
  type RoleInput,
} from './schema.js';

export const DEFAULT_HEADER = [
  'azdb configuration: password-free access to Azure Database for PostgreSQL and MySQL.',
  'Check it with `azdb config check`; see `azdb --help` for the commands that use it.',
].join('\n');

export interface RenderOptions {
  /** Comment lines at the top (without `#`). */
  header?: string;
}

type Plain = Record<string, unknown>;

// Lists of short scalars go on one line (`types: [postgres, mysql]`), longer ones one per line.
const MAX_INLINE_WIDTH = 60;

export function renderConfig(config: ConfigInput, options: RenderOptions = {}): string {
  const doc = new Document(toPlain(config));
  doc.commentBefore = (options.header ?? DEFAULT_HEADER)
    .split('\n')
    .map((line) => (line === '' ? '' : ` ${line}`))
    .join('\n');
  visit(doc, {
    Pair(_, pair, path) {
      // A blank line between top-level sections.
      if (path.length === 2 && isScalar(pair.key)) pair.key.spaceBefore = true;
    },
    Seq(_, seq) {
      const width = seq.items.reduce<number>((sum, item) => sum + (isScalar(item) ? String(item.value).length + 2 : Infinity), 0);
      if (width <= MAX_INLINE_WIDTH) seq.flow = true;
    },
    Map(_, map, path) {
      // Small leaf mappings under a key (tls, azure, labels, tags) read best on one line.
      const parent = path[path.length - 1];
      if (path.length > 3 && isPair(parent) && map.items.length <= 3 && map.items.every((item) => isScalar(item.value))) {
        map.flow = true;
      }
    },
  });
  const first = isMap(doc.contents) ? doc.contents.items[0] : undefined;
  if (first !== undefined && isScalar(first.key)) first.key.spaceBefore = false;
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Validates a config built in code by rendering and parsing it, as a file would be. */
export function buildConfig(config: ConfigInput, file = '<generated azdb.yaml>'): AzdbConfig {
  return parseConfig(renderConfig(config), file);
}

function toPlain(config: ConfigInput): Plain {
  const azure = config.azure ?? {};
  const out: Plain = {
    version: config.version ?? CONFIG_VERSION,
    azure: compact({
      cloud: azure.cloud ?? 'AzureCloud',
      resource_manager_endpoint: azure.resource_manager_endpoint,
      managed_identity_client_id: azure.managed_identity_client_id,
    }),
  };
  if (config.discovery?.length) out['discovery'] = config.discovery.map(discoveryPlain);
  if (config.databases?.length) out['databases'] = config.databases.map(databasePlain);
  if (config.roles?.length) out['roles'] = config.roles.map(rolePlain);
  const broker = brokerPlain(config.broker);
  if (Object.keys(broker).length > 0) out['broker'] = broker;
  return out;
}

function discoveryPlain(matcher: DiscoveryInput): Plain {
  return compact({
    types: [...matcher.types],
    regions: copy(matcher.regions),
    subscriptions: copy(matcher.subscriptions),
    resource_groups: copy(matcher.resource_groups),
    tags: matcher.tags === undefined ? undefined : { ...matcher.tags },
  });
}

function databasePlain(db: DatabaseInput): Plain {
  const tls = compact({ mode: db.tls?.mode, ca_file: db.tls?.ca_file, server_name: db.tls?.server_name });
  const defaultTls = Object.keys(tls).length === 0 || (Object.keys(tls).length === 1 && tls['mode'] === 'verify-full');
  return compact({
    name: db.name,
    protocol: db.protocol,
    uri: db.uri,
    azure: db.azure === undefined ? undefined : { server_kind: db.azure.server_kind, server_name: db.azure.server_name },
    tls: defaultTls ? undefined : tls,
    labels: db.labels === undefined || Object.keys(db.labels).length === 0 ? undefined : { ...db.labels },
    pool: db.pool === undefined ? undefined : { ...db.pool },
  });
}

function rolePlain(role: RoleInput): Plain {
  const spec = compact({ allow: conditionsPlain(role.spec?.allow), deny: conditionsPlain(role.spec?.deny) });
  return {
    version: role.version ?? ROLE_VERSION,
    kind: role.kind ?? ROLE_KIND,
    metadata: { name: role.metadata.name },
    spec,
  };
}

function conditionsPlain(conditions: RoleConditions | undefined): Plain | undefined {
  if (conditions === undefined) return undefined;
  const out = compact({
    db_labels: conditions.db_labels === undefined ? undefined : { ...conditions.db_labels },
    db_names: copy(conditions.db_names),
    db_users: copy(conditions.db_users),
    subjects: conditions.subjects === undefined ? undefined : compact({ users: copy(conditions.subjects.users), groups: copy(conditions.subjects.groups) }),
  });
  return Object.keys(out).length === 0 ? undefined : out;
}

function brokerPlain(broker: ConfigInput['broker']): Plain {
  if (broker === undefined) return {};
  // Defaults (queries: false, on_failure: block) are left out, as a person would write it.
  const audit = compact({ path: broker.audit?.path, queries: broker.audit?.queries || undefined, on_failure: broker.audit?.on_failure === 'drop' ? 'drop' : undefined });
  return compact({
    // Kept even when empty: an empty list (nothing allowed) differs from none (allow-all).
    roles: copy(broker.roles),
    listeners: broker.listeners?.length ? broker.listeners.map(listenerPlain) : undefined,
    audit: Object.keys(audit).length === 0 ? undefined : audit,
    http: broker.http?.address === undefined ? undefined : { address: broker.http.address },
  });
}

function listenerPlain(listener: ListenerInput): Plain {
  return compact({
    database: listener.database,
    host: listener.host,
    port: listener.port,
    db_user: listener.db_user,
    db_name: listener.db_name,
    password_file: listener.password_file,
    cert_file: listener.cert_file,
    key_file: listener.key_file,
    pool: listener.pool === undefined ? undefined : { ...listener.pool },
    // Defaults (password, broker, false) are left out, as a person would write it.
    client_auth: listener.client_auth === 'entra' ? 'entra' : undefined,
    allowed_tenants: copy(listener.allowed_tenants),
    upstream_identity: listener.upstream_identity === 'client' ? 'client' : undefined,
    disconnect_expired: listener.disconnect_expired || undefined,
  });
}

function compact(object: Plain): Plain {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function copy<T>(list: readonly T[] | undefined): T[] | undefined {
  return list === undefined ? undefined : [...list];
}

// ---- `azdb config create` ------------------------------------------------------------------------

export interface StarterOptions {
  /** `--azure-postgres-discovery REGION`. */
  postgresRegion?: string;
  /** `--azure-mysql-discovery REGION`. */
  mysqlRegion?: string;
  subscription?: string;
  resourceGroup?: string;
  /** `--tag K=V`, repeatable; one key given twice accepts either value. */
  tags?: Record<string, string[]>;
  /** Database user the starter role allows. @default 'teleport' (the guide's Entra database user) */
  dbUser?: string;
}

export const STARTER_ROLE_NAME = 'azure-database-access';

const ENGINES: Record<'postgres' | 'mysql', string[]> = {
  mysql: ['Microsoft.DBforMySQL/servers', 'Microsoft.DBforMySQL/flexibleServers'],
  postgres: ['Microsoft.DBforPostgreSQL/servers', 'Microsoft.DBforPostgreSQL/flexibleServers'],
};

/**
 * What `azdb config create` writes, as `teleport db configure create` does for the Database
 * Service: one discovery entry per engine flag (two `types` entries when both are given), each
 * with the region, subscription, resource group and tags given (`*` otherwise), and the guide's
 * `azure-database-access` role for the engines discovered, used by the broker. Without an engine
 * flag, one entry discovers both engines in every region.
 */
export function starterConfig(options: StarterOptions = {}): ConfigInput {
  const entries: Array<{ type: 'postgres' | 'mysql'; region: string }> = [];
  if (options.mysqlRegion !== undefined) entries.push({ type: 'mysql', region: options.mysqlRegion });
  if (options.postgresRegion !== undefined) entries.push({ type: 'postgres', region: options.postgresRegion });
  const scope = (types: Array<'postgres' | 'mysql'>, region: string): DiscoveryInput => ({
    types,
    regions: [region === '*' ? '*' : normalizeRegion(region)],
    subscriptions: [options.subscription ?? '*'],
    resource_groups: [options.resourceGroup ?? '*'],
    tags: options.tags && Object.keys(options.tags).length > 0 ? tagMatcher(options.tags) : { '*': '*' },
  });
  const discovery = entries.length > 0 ? entries.map((e) => scope([e.type], e.region)) : [scope(['postgres', 'mysql'], '*')];
  const types = entries.length > 0 ? entries.map((e) => e.type) : (['mysql', 'postgres'] as const);
  return {
    version: CONFIG_VERSION,
    azure: { cloud: 'AzureCloud' },
    discovery,
    roles: [
      {
        version: ROLE_VERSION,
        kind: ROLE_KIND,
        metadata: { name: STARTER_ROLE_NAME },
        spec: {
          allow: { db_labels: { engine: types.flatMap((t) => ENGINES[t]) }, db_names: ['*'], db_users: [options.dbUser ?? 'teleport'] },
        },
      },
    ],
    broker: { roles: [STARTER_ROLE_NAME] },
  };
}

function tagMatcher(tags: Record<string, string[]>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(tags).map(([key, values]) => [key, values.length === 1 ? values[0]! : [...values]]));
}
