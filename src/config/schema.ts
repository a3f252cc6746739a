/**
 * The shape of azdb.yaml (version v1): what a file may say ({@link ConfigInput}) and what the rest
 * of azdb receives after validation ({@link AzdbConfig}: defaults applied, positions kept).
 * Key names are the file's own (snake_case) so a config, a log line and the docs read the same.
 */

export const CONFIG_VERSION = 'v1';
export const ROLE_VERSION = 'v7';
export const ROLE_KIND = 'role';

export const AZURE_CLOUDS = ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'] as const;
export type AzureCloudName = (typeof AZURE_CLOUDS)[number];

export const PROTOCOLS = ['postgres', 'mysql'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** `single` servers log in as `user@server_name`. */
export const SERVER_KINDS = ['flexible', 'single'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

/** `insecure` skips certificate verification; meant for the demo and always warned about. */
export const TLS_MODES = ['verify-full', 'insecure'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const WILDCARD = '*';
export const DEFAULT_LISTENER_HOST = '127.0.0.1';

/** Bounds on input, so a wrong file (a log, a dump) fails fast instead of eating memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
export const MAX_LIST_ENTRIES = 10_000;

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

/** Label values of a role or a discovery tag filter: a glob, a `^regex$`, or a list of them. */
export type LabelMatcher = Record<string, string | string[]>;

// ---- normalized config -------------------------------------------------------------------------

export interface AzureSettings {
  cloud: AzureCloudName;
  resource_manager_endpoint?: string;
  managed_identity_client_id?: string;
}

export interface DiscoveryMatcher {
  types: Protocol[];
  regions: string[];
  subscriptions: string[];
  resource_groups: string[];
  tags: LabelMatcher;
  source: SourcePosition;
}

export interface DatabaseAzure {
  server_kind: ServerKind;
  server_name: string;
}

export interface DatabaseTls {
  mode: TlsMode;
  ca_file?: string;
  server_name?: string;
}

export interface DatabaseConfig {
  name: string;
  protocol: Protocol;
  /** As written: `host:port`, IPv6 in brackets. */
  uri: string;
  /** Parsed from `uri`; IPv6 without brackets, ready for `net.connect`. */
  host: string;
  port: number;
  azure?: DatabaseAzure;
  tls: DatabaseTls;
  labels: Record<string, string>;
  source: SourcePosition;
}

export interface RoleConditions {
  db_labels?: LabelMatcher;
  db_names?: string[];
  db_users?: string[];
}

export interface RoleConfig {
  version: typeof ROLE_VERSION;
  kind: typeof ROLE_KIND;
  metadata: { name: string };
  spec: { allow: RoleConditions; deny: RoleConditions };
  source: SourcePosition;
}

export interface ListenerConfig {
  database: string;
  host: string;
  port: number;
  db_user?: string;
  db_name?: string;
  password_file?: string;
  cert_file?: string;
  key_file?: string;
  source: SourcePosition;
}

export interface AuditSettings {
  path?: string;
  queries: boolean;
}

export interface HttpSettings {
  address?: string;
}

export interface BrokerConfig {
  /** Absent: the built-in allow-all local role. An empty list allows nothing. */
  roles?: string[];
  listeners: ListenerConfig[];
  audit: AuditSettings;
  http: HttpSettings;
}

export interface AzdbConfig {
  version: typeof CONFIG_VERSION;
  azure: AzureSettings;
  discovery: DiscoveryMatcher[];
  databases: DatabaseConfig[];
  roles: RoleConfig[];
  broker: BrokerConfig;
  /** The file this came from. */
  file: string;
  /** Accepted but worth telling the user (e.g. `tls.mode: insecure`). */
  warnings: ConfigIssue[];
}

// ---- input (what a file or a generator may give; defaults optional) ---------------------------

export interface DiscoveryInput {
  types: Protocol[];
  regions?: string[];
  subscriptions?: string[];
  resource_groups?: string[];
  tags?: LabelMatcher;
}

export interface DatabaseInput {
  name: string;
  protocol: Protocol;
  uri: string;
  azure?: DatabaseAzure;
  tls?: Partial<DatabaseTls>;
  labels?: Record<string, string>;
}

export interface RoleInput {
  version?: typeof ROLE_VERSION;
  kind?: typeof ROLE_KIND;
  metadata: { name: string };
  spec?: { allow?: RoleConditions; deny?: RoleConditions };
}

export interface ListenerInput {
  database: string;
  host?: string;
  port: number;
  db_user?: string;
  db_name?: string;
  password_file?: string;
  cert_file?: string;
  key_file?: string;
}

export interface BrokerInput {
  roles?: string[];
  listeners?: ListenerInput[];
  audit?: Partial<AuditSettings>;
  http?: HttpSettings;
}

/** A config as a program builds it; an {@link AzdbConfig} is one too. */
export interface ConfigInput {
  version?: typeof CONFIG_VERSION;
  azure?: Partial<AzureSettings>;
  discovery?: DiscoveryInput[];
  databases?: DatabaseInput[];
  roles?: RoleInput[];
  broker?: BrokerInput;
}
