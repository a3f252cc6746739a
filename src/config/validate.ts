/**
 * azdb.yaml document → {@link AzdbConfig}: shape, values, defaults, then the cross references
 * (duplicate names, roles and databases referred to). Problems go to {@link Issues}.
 */
import { isMap, isScalar, isSeq, type YAMLSeq } from 'yaml';
import { isLoopbackHost, parseHostPort } from './address.js';
import {
  AZURE_CLOUDS,
  CONFIG_VERSION,
  DEFAULT_LISTENER_HOST,
  MAX_LIST_ENTRIES,
  PROTOCOLS,
  ROLE_KIND,
  ROLE_VERSION,
  SERVER_KINDS,
  TLS_MODES,
  WILDCARD,
  type AzdbConfig,
  type AzureSettings,
  type BrokerConfig,
  type DatabaseConfig,
  type DiscoveryMatcher,
  type ListenerConfig,
  type Protocol,
  type RoleConditions,
  type RoleConfig,
  type SourcePosition,
} from './schema.js';
import {
  at,
  clip,
  describe,
  didYouMean,
  isEmpty,
  readBoolean,
  readEnum,
  readLabelMatcher,
  readMapping,
  readPort,
  readSeq,
  readString,
  readStringList,
  readStringRecord,
  requireKeys,
  type Field,
  type Issues,
} from './yaml-reader.js';

const TOP_KEYS = ['version', 'azure', 'discovery', 'databases', 'roles', 'broker'] as const;
const AZURE_KEYS = ['cloud', 'resource_manager_endpoint', 'managed_identity_client_id'] as const;
const DISCOVERY_KEYS = ['types', 'regions', 'subscriptions', 'resource_groups', 'tags'] as const;
const DATABASE_KEYS = ['name', 'protocol', 'uri', 'azure', 'tls', 'labels'] as const;
const DATABASE_AZURE_KEYS = ['server_kind', 'server_name'] as const;
const TLS_KEYS = ['mode', 'ca_file', 'server_name'] as const;
const ROLE_KEYS = ['version', 'kind', 'metadata', 'spec'] as const;
const METADATA_KEYS = ['name'] as const;
const SPEC_KEYS = ['allow', 'deny'] as const;
const CONDITION_KEYS = ['db_labels', 'db_names', 'db_users'] as const;
const BROKER_KEYS = ['roles', 'listeners', 'audit', 'http'] as const;
const LISTENER_KEYS = [
  'database',
  'host',
  'port',
  'db_user',
  'db_name',
  'password_file',
  'cert_file',
  'key_file',
] as const;
const AUDIT_KEYS = ['path', 'queries'] as const;
const HTTP_KEYS = ['address'] as const;

// Names end up on command lines and in connection strings: keep them shell- and URL-safe.
const DATABASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Validates the root mapping of a parsed azdb.yaml. Returns undefined when errors were reported. */
export function validateConfig(root: unknown, issues: Issues): AzdbConfig | undefined {
  if (!isMap(root)) {
    issues.error(root, '', `the top level must be a mapping (${TOP_KEYS.join(', ')}), got ${describe(root)}`);
    return undefined;
  }
  const top = readMapping(issues, root, '', TOP_KEYS);
  if (top === undefined) return undefined;

  readVersion(issues, top.get('version'));
  const azure = readAzure(issues, top.get('azure'));
  const discovery = readList(issues, top.get('discovery'), readDiscovery);
  const databases = readList(issues, top.get('databases'), readDatabase);
  const roles = readList(issues, top.get('roles'), readRole);
  const broker = readBroker(issues, top.get('broker'));

  checkUnique(issues, databases.reads, 'database', 'name');
  checkUnique(issues, roles.reads, 'role', 'metadata.name');
  checkReferences(issues, { databases, roles, broker, discoveryConfigured: discovery.reads.length > 0 });

  if (issues.errors.length > 0) return undefined;
  return {
    version: CONFIG_VERSION,
    azure,
    discovery: values(discovery),
    databases: values(databases),
    roles: values(roles),
    broker: broker.value,
    file: issues.file,
    warnings: issues.warnings,
  };
}

/** One list entry, kept even when invalid so that names can still be cross-checked. */
interface Read<T> {
  /** Undefined when the entry had errors (already reported). */
  value: T | undefined;
  path: string;
  node: unknown;
  /** The name it defines or refers to, and where that is written. */
  name?: { text: string; node: unknown };
}

/** `complete` is false when some entry could not be read at all (not a list, not a mapping). */
interface List<T> {
  reads: Read<T>[];
  complete: boolean;
}

function values<T>(list: List<T>): T[] {
  return list.reads.flatMap((read) => (read.value === undefined ? [] : [read.value]));
}

/** Every name in the list is known, so a reference to another name is surely wrong. */
function allNamed(list: List<unknown>): boolean {
  return list.complete && list.reads.every((read) => read.name !== undefined);
}

function readVersion(issues: Issues, field: Field | undefined): void {
  if (field === undefined || isEmpty(field.value)) return;
  const node = field.value;
  if (isScalar(node) && node.value === CONFIG_VERSION) return;
  const got = isScalar(node) && node.value !== null ? `"${clip(String(node.source ?? node.value))}"` : describe(node);
  issues.error(at(field), field.path, `unsupported version ${got}; this azdb reads version: ${CONFIG_VERSION}`);
}

function readAzure(issues: Issues, field: Field | undefined): AzureSettings {
  const azure: AzureSettings = { cloud: 'AzureCloud' };
  if (field === undefined || isEmpty(field.value)) return azure;
  const fields = readMapping(issues, field.value, field.path, AZURE_KEYS);
  if (fields === undefined) return azure;
  azure.cloud = readEnum(issues, fields.get('cloud'), AZURE_CLOUDS) ?? 'AzureCloud';
  const endpointField = fields.get('resource_manager_endpoint');
  const endpoint = readString(issues, endpointField);
  if (endpoint !== undefined && endpointField !== undefined) {
    const problem = endpointProblem(endpoint);
    if (problem === undefined) azure.resource_manager_endpoint = endpoint;
    else issues.error(endpointField.value, endpointField.path, problem);
  }
  const clientId = readString(issues, fields.get('managed_identity_client_id'));
  if (clientId !== undefined) azure.managed_identity_client_id = clientId;
  return azure;
}

// Tokens for ARM travel to this endpoint: plain http only to this machine (the emulator).
function endpointProblem(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `expected a URL such as https://management.azure.com, got "${clip(endpoint)}"`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return `expected an https:// URL (http:// only on loopback), got "${clip(endpoint)}"`;
}

/** Reads a top-level list of mappings, bounded by {@link MAX_LIST_ENTRIES}. */
function readList<T>(
  issues: Issues,
  field: Field | undefined,
  readItem: (issues: Issues, node: unknown, path: string) => Read<T> | undefined,
): List<T> {
  if (field === undefined || isEmpty(field.value)) return { reads: [], complete: true };
  const seq = readSeq(issues, field.value, field.path);
  if (seq === undefined) return { reads: [], complete: false };
  if (seq.items.length > MAX_LIST_ENTRIES) {
    issues.error(
      seq,
      field.path,
      `too many entries: ${seq.items.length}; azdb.yaml may list at most ${MAX_LIST_ENTRIES} ${field.name}`,
    );
    return { reads: [], complete: false };
  }
  const list: List<T> = { reads: [], complete: true };
  seq.items.forEach((item, index) => {
    const path = `${field.path}[${index}]`;
    const read = readItem(issues, item, path);
    if (read === undefined) list.complete = false;
    list.reads.push(read ?? { value: undefined, path, node: item });
  });
  return list;
}

function readDiscovery(issues: Issues, node: unknown, path: string): Read<DiscoveryMatcher> | undefined {
  const fields = readMapping(issues, node, path, DISCOVERY_KEYS);
  if (fields === undefined) return undefined;
  requireKeys(issues, node, path, fields, ['types']);
  const typesField = fields.get('types');
  if (typesField !== undefined && isEmpty(typesField.value)) {
    issues.error(typesField.key, typesField.path, `expected a list of ${PROTOCOLS.join(', ')}, got an empty value`);
  }
  const typeNames = readStringList(issues, typesField, { nonEmpty: true });
  const typeItems = isSeq(typesField?.value) ? typesField.value.items : [];
  const types: Protocol[] = [];
  typeNames?.forEach((name, index) => {
    if (!isProtocol(name)) {
      issues.error(
        typeItems[index],
        `${path}.types[${index}]`,
        `expected ${PROTOCOLS.join(' or ')}, got "${clip(name)}"${didYouMean(name, PROTOCOLS)}`,
      );
    } else if (!types.includes(name)) {
      types.push(name);
    }
  });
  const orAny = (key: string): string[] => readStringList(issues, fields.get(key), { nonEmpty: true }) ?? [WILDCARD];
  const matcher: DiscoveryMatcher = {
    types,
    regions: orAny('regions'),
    subscriptions: orAny('subscriptions'),
    resource_groups: orAny('resource_groups'),
    tags: readLabelMatcher(issues, fields.get('tags')) ?? { [WILDCARD]: WILDCARD },
    source: issues.position(node),
  };
  return { value: types.length === 0 ? undefined : matcher, path, node };
}

function isProtocol(name: string): name is Protocol {
  return (PROTOCOLS as readonly string[]).includes(name);
}

function readDatabase(issues: Issues, node: unknown, path: string): Read<DatabaseConfig> | undefined {
  const fields = readMapping(issues, node, path, DATABASE_KEYS);
  if (fields === undefined) return undefined;
  requireKeys(issues, node, path, fields, ['name', 'protocol', 'uri']);

  const nameField = fields.get('name');
  let name = readString(issues, nameField, { required: true });
  if (name !== undefined && nameField !== undefined && !DATABASE_NAME.test(name)) {
    issues.error(
      nameField.value,
      nameField.path,
      `"${clip(name)}" is not a valid database name: use letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
    name = undefined;
  }
  const protocol = readEnum(issues, fields.get('protocol'), PROTOCOLS, { required: true });
  const uriField = fields.get('uri');
  const uri = readString(issues, uriField, { required: true });
  let hostPort: { host: string; port: number } | undefined;
  if (uri !== undefined && uriField !== undefined) {
    const parsed = parseHostPort(uri);
    if (parsed.ok) hostPort = parsed;
    else issues.error(uriField.value, uriField.path, parsed.reason);
  }
  const azure = readDatabaseAzure(issues, fields.get('azure'));
  const tls = readTls(issues, fields.get('tls'), name ?? path);
  const labels = readStringRecord(issues, fields.get('labels')) ?? {};
  const read: Read<DatabaseConfig> = { value: undefined, path, node };
  if (name !== undefined) read.name = { text: name, node: nameField?.value };
  if (name === undefined || protocol === undefined || uri === undefined || hostPort === undefined) return read;
  const db: DatabaseConfig = {
    name,
    protocol,
    uri,
    host: hostPort.host,
    port: hostPort.port,
    tls,
    labels,
    source: issues.position(node),
  };
  if (azure !== undefined) db.azure = azure;
  read.value = db;
  return read;
}

function readDatabaseAzure(issues: Issues, field: Field | undefined): DatabaseConfig['azure'] {
  if (field === undefined || isEmpty(field.value)) return undefined;
  const fields = readMapping(issues, field.value, field.path, DATABASE_AZURE_KEYS);
  if (fields === undefined) return undefined;
  requireKeys(issues, field.value, field.path, fields, DATABASE_AZURE_KEYS);
  const server_kind = readEnum(issues, fields.get('server_kind'), SERVER_KINDS, { required: true });
  const server_name = readString(issues, fields.get('server_name'), { required: true });
  if (server_kind === undefined || server_name === undefined) return undefined;
  return { server_kind, server_name };
}

function readTls(issues: Issues, field: Field | undefined, database: string): DatabaseConfig['tls'] {
  const tls: DatabaseConfig['tls'] = { mode: 'verify-full' };
  if (field === undefined || isEmpty(field.value)) return tls;
  const fields = readMapping(issues, field.value, field.path, TLS_KEYS);
  if (fields === undefined) return tls;
  const modeField = fields.get('mode');
  tls.mode = readEnum(issues, modeField, TLS_MODES) ?? 'verify-full';
  if (tls.mode === 'insecure' && modeField !== undefined) {
    issues.warn(
      modeField.value,
      modeField.path,
      `database "${database}" uses tls.mode insecure: the server certificate is not verified; use it only for the demo`,
    );
  }
  const caFile = readString(issues, fields.get('ca_file'));
  if (caFile !== undefined) tls.ca_file = caFile;
  const serverName = readString(issues, fields.get('server_name'));
  if (serverName !== undefined) tls.server_name = serverName;
  return tls;
}

function readRole(issues: Issues, node: unknown, path: string): Read<RoleConfig> | undefined {
  const fields = readMapping(issues, node, path, ROLE_KEYS);
  if (fields === undefined) return undefined;
  requireKeys(issues, node, path, fields, ['version', 'kind', 'metadata']);

  const versionField = fields.get('version');
  const version = readString(issues, versionField, { required: true });
  if (version !== undefined && version !== ROLE_VERSION && versionField !== undefined) {
    issues.error(versionField.value, versionField.path, `unsupported role version "${clip(version)}"; expected ${ROLE_VERSION}`);
  }
  const kindField = fields.get('kind');
  const kind = readString(issues, kindField, { required: true });
  if (kind !== undefined && kind !== ROLE_KIND && kindField !== undefined) {
    issues.error(kindField.value, kindField.path, `expected kind: ${ROLE_KIND}, got "${clip(kind)}"`);
  }

  let name: string | undefined;
  let nameNode: unknown;
  const metadataField = fields.get('metadata');
  if (metadataField !== undefined) {
    const metadata = readMapping(issues, metadataField.value, metadataField.path, METADATA_KEYS);
    if (metadata !== undefined && requireKeys(issues, metadataField.value, metadataField.path, metadata, ['name'])) {
      nameNode = metadata.get('name')?.value;
      name = readString(issues, metadata.get('name'), { required: true });
    }
  }

  const spec: RoleConfig['spec'] = { allow: {}, deny: {} };
  const specField = fields.get('spec');
  if (specField !== undefined && !isEmpty(specField.value)) {
    const specFields = readMapping(issues, specField.value, specField.path, SPEC_KEYS);
    if (specFields !== undefined) {
      spec.allow = readConditions(issues, specFields.get('allow'));
      spec.deny = readConditions(issues, specFields.get('deny'));
    }
  }
  const read: Read<RoleConfig> = { value: undefined, path, node };
  if (name === undefined) return read;
  read.name = { text: name, node: nameNode };
  if (version === ROLE_VERSION && kind === ROLE_KIND) {
    read.value = { version: ROLE_VERSION, kind: ROLE_KIND, metadata: { name }, spec, source: issues.position(node) };
  }
  return read;
}

function readConditions(issues: Issues, field: Field | undefined): RoleConditions {
  const conditions: RoleConditions = {};
  if (field === undefined || isEmpty(field.value)) return conditions;
  const fields = readMapping(issues, field.value, field.path, CONDITION_KEYS);
  if (fields === undefined) return conditions;
  const labels = readLabelMatcher(issues, fields.get('db_labels'));
  if (labels !== undefined) conditions.db_labels = labels;
  const names = readStringList(issues, fields.get('db_names'));
  if (names !== undefined) conditions.db_names = names;
  const users = readStringList(issues, fields.get('db_users'));
  if (users !== undefined) conditions.db_users = users;
  return conditions;
}

interface BrokerRead {
  value: BrokerConfig;
  roleNodes: unknown[];
  listeners: List<ListenerConfig>;
}

function readBroker(issues: Issues, field: Field | undefined): BrokerRead {
  const broker: BrokerConfig = { listeners: [], audit: { queries: false }, http: {} };
  const read: BrokerRead = { value: broker, roleNodes: [], listeners: { reads: [], complete: true } };
  if (field === undefined || isEmpty(field.value)) return read;
  const fields = readMapping(issues, field.value, field.path, BROKER_KEYS);
  if (fields === undefined) return read;

  const rolesField = fields.get('roles');
  const roles = readStringList(issues, rolesField);
  if (roles !== undefined) {
    broker.roles = roles;
    read.roleNodes = (rolesField?.value as YAMLSeq<unknown>).items;
  }
  read.listeners = readList(issues, fields.get('listeners'), readListener);
  broker.listeners = values(read.listeners);

  const auditField = fields.get('audit');
  if (auditField !== undefined && !isEmpty(auditField.value)) {
    const audit = readMapping(issues, auditField.value, auditField.path, AUDIT_KEYS);
    if (audit !== undefined) {
      const path = readString(issues, audit.get('path'));
      if (path !== undefined) broker.audit.path = path;
      broker.audit.queries = readBoolean(issues, audit.get('queries')) ?? false;
    }
  }

  const httpField = fields.get('http');
  if (httpField !== undefined && !isEmpty(httpField.value)) {
    const http = readMapping(issues, httpField.value, httpField.path, HTTP_KEYS);
    const addressField = http?.get('address');
    const address = readString(issues, addressField);
    if (address !== undefined && addressField !== undefined) {
      const parsed = parseHostPort(address);
      if (parsed.ok) broker.http.address = address;
      else issues.error(addressField.value, addressField.path, parsed.reason);
    }
  }
  return read;
}

function readListener(issues: Issues, node: unknown, path: string): Read<ListenerConfig> | undefined {
  const fields = readMapping(issues, node, path, LISTENER_KEYS);
  if (fields === undefined) return undefined;
  requireKeys(issues, node, path, fields, ['database', 'port']);
  const databaseField = fields.get('database');
  const database = readString(issues, databaseField, { required: true });
  const hostField = fields.get('host');
  const host = readString(issues, hostField) ?? DEFAULT_LISTENER_HOST;
  const port = readPort(issues, fields.get('port'), { required: true });
  const listener: Partial<ListenerConfig> = { database, host, port };
  for (const key of ['db_user', 'db_name', 'password_file', 'cert_file', 'key_file'] as const) {
    const value = readString(issues, fields.get(key));
    if (value !== undefined) listener[key] = value;
  }
  if ((listener.cert_file === undefined) !== (listener.key_file === undefined)) {
    issues.error(node, path, 'cert_file and key_file go together: give both or neither');
  }
  // Beyond this machine, clients must prove a password only they know and talk TLS.
  const missing = isLoopbackHost(host)
    ? []
    : [listener.password_file === undefined ? 'a password_file' : '', listener.cert_file === undefined ? 'a cert_file/key_file for client TLS' : ''].filter(Boolean);
  if (missing.length > 0) {
    issues.error(
      hostField?.value ?? node,
      hostField?.path ?? path,
      `listener on non-loopback host "${clip(host)}" needs ${missing.join(' and ')} (without them it must listen on 127.0.0.1 or ::1)`,
    );
  }
  const read: Read<ListenerConfig> = { value: undefined, path, node };
  if (database !== undefined) read.name = { text: database, node: databaseField?.value };
  if (database !== undefined && port !== undefined) {
    read.value = { ...listener, database, host, port, source: issues.position(node) };
  }
  return read;
}

/** Reports the second and later entries with an already used name, naming the first one's line. */
function checkUnique(issues: Issues, entries: Read<unknown>[], what: string, key: string): void {
  const first = new Map<string, SourcePosition>();
  for (const { name, path } of entries) {
    if (name === undefined) continue;
    const earlier = first.get(name.text);
    if (earlier === undefined) {
      first.set(name.text, issues.position(name.node));
    } else {
      issues.error(
        name.node,
        `${path}.${key}`,
        `duplicate ${what} name "${clip(name.text)}" (first defined at line ${earlier.line})`,
      );
    }
  }
}

function checkReferences(
  issues: Issues,
  input: {
    databases: List<DatabaseConfig>;
    roles: List<RoleConfig>;
    broker: BrokerRead;
    discoveryConfigured: boolean;
  },
): void {
  // When some entry could not be read, its name is unknown: a "not defined" would only be noise.
  const roleNames = names(input.roles);
  input.broker.value.roles?.forEach((name, index) => {
    if (roleNames.includes(name) || !allNamed(input.roles)) return;
    const known = roleNames.length === 0 ? 'no roles are defined' : `defined: ${listed(roleNames)}`;
    issues.error(
      input.broker.roleNodes[index],
      `broker.roles[${index}]`,
      `role "${clip(name)}" is not defined under roles${didYouMean(name, roleNames)} (${known})`,
    );
  });

  const databaseNames = names(input.databases);
  const endpoints = new Map<string, SourcePosition>();
  for (const { name, path, value, node } of input.broker.listeners.reads) {
    if (name !== undefined && !databaseNames.includes(name.text) && allNamed(input.databases)) {
      const message = `database "${clip(name.text)}" is not defined under databases${didYouMean(name.text, databaseNames)}`;
      // A discovered database has no static entry; it can only be checked once discovery runs.
      if (input.discoveryConfigured) {
        issues.warn(name.node, `${path}.database`, `${message}; it must be found by discovery`);
      } else {
        const known = databaseNames.length === 0 ? 'none are defined' : `defined: ${listed(databaseNames)}`;
        issues.error(name.node, `${path}.database`, `${message} (${known})`);
      }
    }
    if (value === undefined) continue;
    const endpoint = `${value.host}:${value.port}`;
    const earlier = endpoints.get(endpoint);
    if (earlier === undefined) endpoints.set(endpoint, value.source);
    else issues.error(node, path, `${endpoint} is already used by the listener at line ${earlier.line}`);
  }
}

function names(list: List<unknown>): string[] {
  return [...new Set(list.reads.flatMap((read) => (read.name === undefined ? [] : [read.name.text])))];
}

function listed(all: string[], max = 10): string {
  return all.length <= max ? all.join(', ') : `${all.slice(0, max).join(', ')}, … (${all.length} in all)`;
}
