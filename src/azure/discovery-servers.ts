/**
 * Discovery, the pure part: which ARM resource types azdb lists, what permission each needs,
 * how a listed server becomes a database (name, URI, labels, login kind) and how matchers filter.
 * No I/O; `discovery.ts` does the listing.
 *
 * Labels follow Teleport's Azure discovery: every Azure tag, then `engine` (the resource type),
 * `engine-version`, `region` (normalized), `resource-group`, `subscription-id`, and
 * `replication-role` for MySQL flexible servers; the built-in labels win over tags of the same key.
 */
import { matchLabels } from '../access/match.js';
import { WILDCARD, type DatabaseConfig, type DiscoveryMatcher, type Protocol, type ServerKind, type SourcePosition } from '../config/schema.js';

export type AzureServerType =
  | 'Microsoft.DBforPostgreSQL/flexibleServers'
  | 'Microsoft.DBforPostgreSQL/servers'
  | 'Microsoft.DBforMySQL/flexibleServers'
  | 'Microsoft.DBforMySQL/servers';

export interface ServerTypeInfo {
  type: AzureServerType;
  protocol: Protocol;
  kind: ServerKind;
  /** api-version of the "Servers - List" REST call. */
  apiVersion: string;
  port: number;
  /** The Azure RBAC action listing needs (the custom role of the guide's step 2). */
  permission: string;
}

export const SERVER_TYPE_INFO: readonly ServerTypeInfo[] = [
  { type: 'Microsoft.DBforPostgreSQL/flexibleServers', protocol: 'postgres', kind: 'flexible', apiVersion: '2022-12-01', port: 5432, permission: 'Microsoft.DBforPostgreSQL/flexibleServers/read' },
  { type: 'Microsoft.DBforPostgreSQL/servers', protocol: 'postgres', kind: 'single', apiVersion: '2017-12-01', port: 5432, permission: 'Microsoft.DBforPostgreSQL/servers/read' },
  { type: 'Microsoft.DBforMySQL/flexibleServers', protocol: 'mysql', kind: 'flexible', apiVersion: '2023-12-30', port: 3306, permission: 'Microsoft.DBforMySQL/flexibleServers/read' },
  { type: 'Microsoft.DBforMySQL/servers', protocol: 'mysql', kind: 'single', apiVersion: '2017-12-01', port: 3306, permission: 'Microsoft.DBforMySQL/servers/read' },
];

/** The discovery role's actions, as the guide's custom role lists them. */
export const DISCOVERY_PERMISSIONS: readonly string[] = SERVER_TYPE_INFO.map((info) => info.permission);

export const SUBSCRIPTIONS_API_VERSION = '2022-12-01';

/** Label keys discovery sets (besides the tags). */
export const DISCOVERY_LABELS = {
  engine: 'engine',
  engineVersion: 'engine-version',
  region: 'region',
  resourceGroup: 'resource-group',
  subscriptionId: 'subscription-id',
  replicationRole: 'replication-role',
} as const;

/** The resource types a matcher's `types` entry stands for (single and flexible servers). */
export function serverTypesFor(protocols: readonly Protocol[]): ServerTypeInfo[] {
  return SERVER_TYPE_INFO.filter((info) => protocols.includes(info.protocol));
}

export function serverTypeInfo(type: string): ServerTypeInfo | undefined {
  return SERVER_TYPE_INFO.find((info) => info.type.toLowerCase() === type.toLowerCase());
}

/** `East US` → `eastus`: ARM returns either form; matchers may use either. */
export function normalizeRegion(region: string): string {
  return region.replace(/\s+/g, '').toLowerCase();
}

/** A database found by discovery: a {@link DatabaseConfig} plus where it came from. */
export interface DiscoveredDatabase extends DatabaseConfig {
  discovered: {
    resourceId: string;
    type: AzureServerType;
    subscriptionId: string;
    resourceGroup: string;
    /** The Azure server name (the database name may carry an engine suffix). */
    serverName: string;
  };
}

/** A listed server as discovery reads it; `undefined` fields were missing from ARM's answer. */
export interface ListedServer {
  id: string;
  name: string;
  type: ServerTypeInfo;
  location: string;
  tags: Record<string, string>;
  version: string | undefined;
  state: string | undefined;
  fqdn: string | undefined;
  replicationRole: string | undefined;
  subscriptionId: string;
  resourceGroup: string;
}

/** Reads one item of a "Servers - List" answer; `undefined` when it is not a server at all. */
export function readServer(item: unknown, type: ServerTypeInfo): ListedServer | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const raw = item as Record<string, unknown>;
  const id = str(raw['id']);
  const name = str(raw['name']);
  if (id === undefined || name === undefined) return undefined;
  const scope = parseResourceId(id);
  if (!scope) return undefined;
  const properties = (typeof raw['properties'] === 'object' && raw['properties'] !== null ? raw['properties'] : {}) as Record<string, unknown>;
  const tags: Record<string, string> = {};
  if (typeof raw['tags'] === 'object' && raw['tags'] !== null) {
    for (const [key, value] of Object.entries(raw['tags'] as Record<string, unknown>)) if (typeof value === 'string') tags[key] = value;
  }
  return {
    id,
    name,
    type,
    location: str(raw['location']) ?? '',
    tags,
    version: str(properties['version']),
    // Flexible servers report `state`, single servers `userVisibleState`.
    state: str(type.kind === 'flexible' ? properties['state'] : properties['userVisibleState']),
    fqdn: str(properties['fullyQualifiedDomainName']),
    replicationRole: str(properties['replicationRole']),
    subscriptionId: scope.subscriptionId,
    resourceGroup: scope.resourceGroup,
  };
}

/** `/subscriptions/S/resourceGroups/RG/providers/...` → its subscription and resource group. */
export function parseResourceId(id: string): { subscriptionId: string; resourceGroup: string } | undefined {
  const match = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\//i.exec(id);
  return match?.[1] && match[2] ? { subscriptionId: match[1], resourceGroup: match[2] } : undefined;
}

export function isReady(server: ListedServer): boolean {
  return server.state?.toLowerCase() === 'ready';
}

/** Whether a server passes a matcher's region, resource group and tag filters. */
export function matchesFilters(server: ListedServer, matcher: Pick<DiscoveryMatcher, 'regions' | 'resource_groups' | 'tags'>): boolean {
  if (!matcher.regions.includes(WILDCARD) && !matcher.regions.some((region) => normalizeRegion(region) === normalizeRegion(server.location))) {
    return false;
  }
  if (!matcher.resource_groups.includes(WILDCARD) && !matcher.resource_groups.some((rg) => rg.toLowerCase() === server.resourceGroup.toLowerCase())) {
    return false;
  }
  return matchLabels(matcher.tags, server.tags);
}

export function serverLabels(server: ListedServer): Record<string, string> {
  const labels: Record<string, string> = { ...server.tags };
  labels[DISCOVERY_LABELS.engine] = server.type.type;
  labels[DISCOVERY_LABELS.engineVersion] = server.version ?? '';
  labels[DISCOVERY_LABELS.region] = normalizeRegion(server.location);
  labels[DISCOVERY_LABELS.resourceGroup] = server.resourceGroup;
  labels[DISCOVERY_LABELS.subscriptionId] = server.subscriptionId;
  if (server.type.type === 'Microsoft.DBforMySQL/flexibleServers') labels[DISCOVERY_LABELS.replicationRole] = server.replicationRole ?? 'None';
  return labels;
}

/**
 * Ready servers with an FQDN → databases, named after their servers. Where a PostgreSQL and a
 * MySQL server share a name, both get an engine suffix (`NAME-postgres`, `NAME-mysql`); should
 * names still collide (two servers of one engine, which Azure's DNS does not allow), the resource
 * group and then the subscription are appended. Sorted by name.
 */
export function toDatabases(servers: readonly ListedServer[], source: SourcePosition | ((server: ListedServer) => SourcePosition)): DiscoveredDatabase[] {
  const sourceOf = typeof source === 'function' ? source : () => source;
  const protocolsByName = new Map<string, Set<Protocol>>();
  for (const server of servers) {
    const key = server.name.toLowerCase();
    protocolsByName.set(key, (protocolsByName.get(key) ?? new Set()).add(server.type.protocol));
  }
  const named = servers
    .slice()
    .sort((a, b) => compare(a.id.toLowerCase(), b.id.toLowerCase()))
    .map((server) => {
      const clash = (protocolsByName.get(server.name.toLowerCase())?.size ?? 0) > 1;
      return { server, name: clash ? `${server.name}-${server.type.protocol}` : server.name };
    });
  const taken = new Set<string>();
  const out: DiscoveredDatabase[] = [];
  for (const { server, name } of named) {
    let unique = name;
    if (taken.has(unique)) unique = `${name}-${server.resourceGroup.toLowerCase()}`;
    if (taken.has(unique)) unique = `${unique}-${server.subscriptionId.slice(0, 8).toLowerCase()}`;
    taken.add(unique);
    out.push(toDatabase(server, unique, sourceOf(server)));
  }
  return out.sort((a, b) => compare(a.name, b.name));
}

function toDatabase(server: ListedServer, name: string, source: SourcePosition): DiscoveredDatabase {
  const host = server.fqdn ?? '';
  const port = server.type.port;
  return {
    name,
    protocol: server.type.protocol,
    uri: `${host}:${port}`,
    host,
    port,
    azure: { server_kind: server.type.kind, server_name: server.name },
    tls: { mode: 'verify-full' },
    labels: serverLabels(server),
    source,
    discovered: {
      resourceId: server.id,
      type: server.type.type,
      subscriptionId: server.subscriptionId,
      resourceGroup: server.resourceGroup,
      serverName: server.name,
    },
  };
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
