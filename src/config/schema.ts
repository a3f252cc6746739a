/**
 * azdb.yaml (version v1), declared once: the valibot schemas below say what each key may hold,
 * which keys are required and what the defaults are, and the types azdb uses are inferred from
 * them. {@link ConfigInput} is what a file or a program may say; {@link AzdbConfig} is what the
 * rest of azdb receives (defaults applied, positions kept). Key names are the file's own
 * (snake_case) so a config, a log line and the docs read the same.
 */
import * as v from 'valibot';
import { isLoopbackHost, parseHostPort } from './address.js';
import { clip, describe, expected, written } from './messages.js';
import { POOL_DEFAULTS, POOL_MODES } from './pool-defaults.js';
import {
  anyText,
  boolean,
  choice,
  count,
  duration,
  entryList,
  list,
  mapping,
  pick,
  port,
  refine,
  stringMap,
  text,
  textItem,
  textList,
} from './schema-parts.js';

export const CONFIG_VERSION = 'v1';
export const ROLE_VERSION = 'v7';
export const ROLE_KIND = 'role';

export const AZURE_CLOUDS = ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'] as const;

export const PROTOCOLS = ['postgres', 'mysql'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** `single` servers log in as `user@server_name`. */
export const SERVER_KINDS = ['flexible', 'single'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

/** `insecure` skips certificate verification; meant for the demo and always warned about. */
export const TLS_MODES = ['verify-full', 'insecure'] as const;
/** `broker.audit.on_failure`: hold sessions while the audit cannot take lines, or drop (and count) lines. */
export const AUDIT_FAILURE_POLICIES = ['block', 'drop'] as const;
export type AuditFailurePolicy = (typeof AUDIT_FAILURE_POLICIES)[number];

export const CLIENT_AUTH_MODES = ['password', 'entra'] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];
export const UPSTREAM_IDENTITIES = ['broker', 'client'] as const;
export type UpstreamIdentity = (typeof UPSTREAM_IDENTITIES)[number];

export const WILDCARD = '*';
export const DEFAULT_LISTENER_HOST = '127.0.0.1';

/** Bounds on input, so a wrong file (a log, a dump) fails fast instead of eating memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Where something was written: 1-based line and column. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** One problem (error or warning) in a config file. `path` is like `databases[2].uri`. */
export interface ConfigIssue extends SourcePosition {
  path: string;
  message: string;
}

// ---- values ------------------------------------------------------------------------------------

// Names end up on command lines and in connection strings: keep them shell- and URL-safe.
const DATABASE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function databaseNameProblem(name: string): string | undefined {
  if (DATABASE_NAME_PATTERN.test(name)) return undefined;
  return `"${clip(name)}" is not a valid database name: use letters, digits, ".", "_" and "-", starting with a letter or digit`;
}

function hostPortProblem(text: string): string | undefined {
  const parsed = parseHostPort(text);
  return parsed.ok ? undefined : parsed.reason;
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

/** Label values written `^…$` are regular expressions (Teleport semantics). */
function regexProblem(text: string): string | undefined {
  if (!(text.startsWith('^') && text.endsWith('$'))) return undefined;
  try {
    new RegExp(text);
    return undefined;
  } catch (error) {
    return `"${clip(text)}" is not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`;
  }
}

// ---- the schema ----------------------------------------------------------------------------------

const labelPattern = v.pipe(anyText('a string or a list of strings'), refine(regexProblem));

/** Label values of a role or a discovery tag filter: a glob, a `^regex$`, or a list of them. */
const LabelMatcherSchema = stringMap(v.lazy((value) => (Array.isArray(value) ? v.array(labelPattern) : labelPattern)));

const AzureSchema = mapping({
  cloud: v.optional(choice(AZURE_CLOUDS), 'AzureCloud'),
  resource_manager_endpoint: v.optional(v.pipe(text(), refine(endpointProblem))),
  managed_identity_client_id: v.optional(text()),
});

const DiscoverySchema = mapping({
  types: v.pipe(
    list(v.pipe(textItem<Protocol>(), pick(PROTOCOLS)), {
      nonEmpty: true,
      // An empty `types:` is worth saying what the list is of.
      message: (issue) => (issue.input === null ? `expected a list of ${PROTOCOLS.join(', ')}, got an empty value` : expected('a list')(issue)),
    }),
    v.transform((types) => [...new Set(types)]),
  ),
  regions: v.optional(textList({ nonEmpty: true }), [WILDCARD]),
  subscriptions: v.optional(textList({ nonEmpty: true }), [WILDCARD]),
  resource_groups: v.optional(textList({ nonEmpty: true }), [WILDCARD]),
  tags: v.optional(LabelMatcherSchema, { [WILDCARD]: WILDCARD }),
});

// Exported, with RoleNameSchema and ListenerEndpointSchema, for the checks between entries, which
// read names before the whole file is valid.
export const DatabaseNameSchema = v.pipe(text(), refine(databaseNameProblem));

export { POOL_DEFAULTS, POOL_MODES };

/** Server connections shared by clients (session or transaction mode, PostgreSQL and MySQL). */
const PoolSchema = v.pipe(
  mapping({
    mode: v.optional(choice(POOL_MODES), POOL_DEFAULTS.mode),
    max_server_connections: v.optional(count(1), POOL_DEFAULTS.max_server_connections),
    min_idle: v.optional(count(0), POOL_DEFAULTS.min_idle),
    idle_timeout: v.optional(duration(), POOL_DEFAULTS.idle_timeout),
    server_lifetime: v.optional(duration(), POOL_DEFAULTS.server_lifetime),
    max_client_wait: v.optional(duration(), POOL_DEFAULTS.max_client_wait),
    /** Transaction mode: protocol-level prepared statements per server connection; 0 pins a client that prepares one. */
    max_prepared_statements: v.optional(count(0), POOL_DEFAULTS.max_prepared_statements),
  }),
  v.forward(
    v.partialCheck(
      [['min_idle'], ['max_server_connections']],
      (pool) => pool.min_idle <= pool.max_server_connections,
      (issue) => {
        const pool = issue.input as { min_idle: number; max_server_connections: number };
        return `min_idle (${pool.min_idle}) cannot exceed max_server_connections (${pool.max_server_connections})`;
      },
    ),
    ['min_idle'],
  ),
);

const DatabaseSchema = v.pipe(
  mapping({
    name: DatabaseNameSchema,
    protocol: choice(PROTOCOLS),
    /** As written: `host:port`, IPv6 in brackets. */
    uri: v.pipe(text(), refine(hostPortProblem)),
    azure: v.optional(mapping({ server_kind: choice(SERVER_KINDS), server_name: text() })),
    tls: v.optional(
      mapping({ mode: v.optional(choice(TLS_MODES), 'verify-full'), ca_file: v.optional(text()), server_name: v.optional(text()) }),
      {},
    ),
    labels: v.optional(stringMap(anyText()), {}),
    pool: v.optional(PoolSchema),
  }),
  // Host (IPv6 without brackets, ready for `net.connect`) and port, from the `uri` checked above.
  v.transform((db) => {
    const { host, port } = parseHostPort(db.uri) as { host: string; port: number };
    return { ...db, host, port };
  }),
);

/** Traits of the person a `db_users` entry may name (`{{external.upn}}`), from their Entra token. */
export const PERSON_TRAITS = ['upn', 'oid', 'appid'] as const;
export type PersonTrait = (typeof PERSON_TRAITS)[number];
/** A `{{…}}` in a `db_users` entry; group 1 is what stands between the braces. */
export const TRAIT_PATTERN = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The person trait `external.upn` (what a `{{…}}` holds) names, or undefined when it names none. */
export function personTrait(name: string): PersonTrait | undefined {
  const trait = name.startsWith('external.') ? name.slice('external.'.length) : undefined;
  return PERSON_TRAITS.find((known) => known === trait);
}

function traitProblem(entry: string): string | undefined {
  for (const [, name] of entry.matchAll(TRAIT_PATTERN)) {
    if (personTrait(name!) === undefined) {
      return `unknown trait "{{${clip(name!)}}}": use ${PERSON_TRAITS.map((t) => `{{external.${t}}}`).join(', ')}`;
    }
  }
  return undefined;
}

const RoleConditionsSchema = mapping({
  db_labels: v.optional(LabelMatcherSchema),
  db_names: v.optional(textList()),
  db_users: v.optional(v.pipe(textList(), refine((entries: string[]) => entries.map(traitProblem).find((p) => p !== undefined)))),
  /** People this rule is about (client_auth: entra listeners): object ids or UPNs, and group object ids. */
  subjects: v.optional(mapping({ users: v.optional(textList()), groups: v.optional(textList()) })),
});

export const RoleNameSchema = text();

const RoleSchema = mapping({
  version: v.pipe(
    text<typeof ROLE_VERSION>(),
    v.literal(ROLE_VERSION, (issue) => `unsupported role version "${clip(String(issue.input))}"; expected ${ROLE_VERSION}`),
  ),
  kind: v.pipe(text<typeof ROLE_KIND>(), v.literal(ROLE_KIND, (issue) => `expected kind: ${ROLE_KIND}, got "${clip(String(issue.input))}"`)),
  metadata: mapping({ name: RoleNameSchema }),
  spec: v.optional(mapping({ allow: v.optional(RoleConditionsSchema, {}), deny: v.optional(RoleConditionsSchema, {}) }), {}),
});

const LISTENER_ENTRIES = {
  database: text(),
  host: v.optional(text(), DEFAULT_LISTENER_HOST),
  port: port(),
  db_user: v.optional(text()),
  db_name: v.optional(text()),
  password_file: v.optional(text()),
  cert_file: v.optional(text()),
  key_file: v.optional(text()),
  /** Replaces the database's `pool` as a whole for this listener's clients. */
  pool: v.optional(PoolSchema),
  /** `entra`: clients log in with their own Entra access token as the password (a shared broker). */
  client_auth: v.optional(choice(CLIENT_AUTH_MODES), 'password'),
  allowed_tenants: v.optional(v.pipe(textList({ nonEmpty: true }), refine((tenants: string[]) => tenants.map(tenantIdProblem).find((p) => p !== undefined)))),
  /** `client`: the person's own token goes upstream; `broker`: the broker's identity logs in. */
  upstream_identity: v.optional(choice(UPSTREAM_IDENTITIES), 'broker'),
  /** End a session at its next transaction boundary once the client's token has expired. */
  disconnect_expired: v.optional(boolean(), false),
};

export const ListenerEndpointSchema = v.pick(v.object(LISTENER_ENTRIES), ['database', 'host', 'port']);

// Beyond this machine, clients must prove a password only they know (or their Entra token) and talk TLS.
function offLoopbackNeeds(listener: { host: string; password_file?: string; cert_file?: string; client_auth?: ClientAuthMode }): string[] {
  if (isLoopbackHost(listener.host)) return [];
  const needs: string[] = [];
  if (listener.password_file === undefined && listener.client_auth !== 'entra') needs.push('a password_file');
  if (listener.cert_file === undefined) needs.push('a cert_file/key_file for client TLS');
  return needs;
}

// A token's `tid` is always the tenant's id: a domain name here would never match.
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tenantIdProblem(tenant: string): string | undefined {
  if (TENANT_ID.test(tenant)) return undefined;
  return `"${clip(tenant)}" is not a tenant id: give the directory (tenant) id, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 (az account show --query tenantId)`;
}

interface ListenerEntraKeys {
  client_auth?: ClientAuthMode;
  allowed_tenants?: string[];
  upstream_identity?: UpstreamIdentity;
  disconnect_expired?: boolean;
  password_file?: string;
}

/** Keys that mean something only with the other client_auth. */
function entraOnlyKeys(listener: ListenerEntraKeys): string[] {
  if (listener.client_auth === 'entra') return listener.password_file === undefined ? [] : ['password_file'];
  const set: string[] = [];
  if (listener.allowed_tenants !== undefined) set.push('allowed_tenants');
  if (listener.upstream_identity === 'client') set.push('upstream_identity: client');
  if (listener.disconnect_expired) set.push('disconnect_expired');
  return set;
}

const ListenerSchema = v.pipe(
  mapping(LISTENER_ENTRIES),
  v.partialCheck(
    [['cert_file'], ['key_file']],
    (listener) => (listener.cert_file === undefined) === (listener.key_file === undefined),
    'cert_file and key_file go together: give both or neither',
  ),
  v.forward(
    v.partialCheck(
      [['client_auth'], ['allowed_tenants']],
      (listener) => listener.client_auth !== 'entra' || (listener.allowed_tenants?.length ?? 0) > 0,
      'client_auth: entra needs allowed_tenants: the Entra tenant ids whose people may sign in',
    ),
    ['client_auth'],
  ),
  v.forward(
    v.partialCheck(
      [['client_auth'], ['allowed_tenants'], ['upstream_identity'], ['disconnect_expired'], ['password_file']],
      (listener) => entraOnlyKeys(listener).length === 0,
      (issue) => {
        const listener = issue.input as ListenerEntraKeys;
        return listener.client_auth === 'entra'
          ? 'password_file is not used with client_auth: entra (clients log in with their Entra token); remove it'
          : `${entraOnlyKeys(listener).join(', ')} need client_auth: entra`;
      },
    ),
    ['client_auth'],
  ),
  v.forward(
    v.partialCheck(
      [['host'], ['password_file'], ['cert_file'], ['client_auth']],
      (listener) => offLoopbackNeeds(listener).length === 0,
      (issue) => {
        const listener = issue.input as { host: string };
        const needs = offLoopbackNeeds(listener).join(' and ');
        return `listener on non-loopback host "${clip(listener.host)}" needs ${needs} (without them it must listen on 127.0.0.1 or ::1)`;
      },
    ),
    ['host'],
  ),
);

const BrokerSchema = mapping({
  /** Absent: the built-in allow-all local role. An empty list allows nothing. */
  roles: v.optional(textList()),
  listeners: v.optional(entryList('listeners', ListenerSchema), []),
  audit: v.optional(
    mapping({ path: v.optional(text()), queries: v.optional(boolean(), false), on_failure: v.optional(choice(AUDIT_FAILURE_POLICIES), 'block') }),
    {},
  ),
  http: v.optional(mapping({ address: v.optional(v.pipe(text(), refine(hostPortProblem))) }), {}),
});

const CONFIG_ENTRIES = {
  version: v.optional(
    v.literal(CONFIG_VERSION, (issue) => `unsupported version ${written(issue.input)}; this azdb reads version: ${CONFIG_VERSION}`),
    CONFIG_VERSION,
  ),
  azure: v.optional(AzureSchema, {}),
  discovery: v.optional(entryList('discovery', DiscoverySchema), []),
  databases: v.optional(entryList('databases', DatabaseSchema), []),
  roles: v.optional(entryList('roles', RoleSchema), []),
  broker: v.optional(BrokerSchema, {}),
};

export const ConfigSchema = mapping(
  CONFIG_ENTRIES,
  (issue) => `the top level must be a mapping (${Object.keys(CONFIG_ENTRIES).join(', ')}), got ${describe(issue.input)}`,
);

// ---- types ----------------------------------------------------------------------------------------

type WithSource<T> = T & { source: SourcePosition };
type Parsed = v.InferOutput<typeof ConfigSchema>;

export type LabelMatcher = v.InferOutput<typeof LabelMatcherSchema>;
export type RoleConditions = v.InferOutput<typeof RoleConditionsSchema>;
export type DiscoveryMatcher = WithSource<v.InferOutput<typeof DiscoverySchema>>;
export type DatabaseConfig = WithSource<v.InferOutput<typeof DatabaseSchema>>;
export type RoleConfig = WithSource<v.InferOutput<typeof RoleSchema>>;
export type ListenerConfig = WithSource<v.InferOutput<typeof ListenerSchema>>;
export type PoolConfig = v.InferOutput<typeof PoolSchema>;
export type BrokerConfig = Omit<Parsed['broker'], 'listeners'> & { listeners: ListenerConfig[] };

export interface AzdbConfig extends Omit<Parsed, 'discovery' | 'databases' | 'roles' | 'broker'> {
  discovery: DiscoveryMatcher[];
  databases: DatabaseConfig[];
  roles: RoleConfig[];
  broker: BrokerConfig;
  /** The file this came from. */
  file: string;
  /** Accepted but worth telling the user (e.g. `tls.mode: insecure`). */
  warnings: ConfigIssue[];
}

export type DiscoveryInput = v.InferInput<typeof DiscoverySchema>;
export type DatabaseInput = v.InferInput<typeof DatabaseSchema>;
export type ListenerInput = v.InferInput<typeof ListenerSchema>;
export type BrokerInput = v.InferInput<typeof BrokerSchema>;

type RoleFile = v.InferInput<typeof RoleSchema>;
/** A role as a program writes it: the generator fills in `version` and `kind`. */
export type RoleInput = Omit<RoleFile, 'version' | 'kind'> & Partial<Pick<RoleFile, 'version' | 'kind'>>;

/** A config as a program builds it; an {@link AzdbConfig} is one too. */
export type ConfigInput = Omit<v.InferInput<typeof ConfigSchema>, 'roles'> & { roles?: RoleInput[] };
