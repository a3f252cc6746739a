/**
 * What the database commands share: the loaded config, one credential and token cache for the
 * process, the audit sink, and lookups of a database by name with its access rules.
 */
import { homedir } from 'node:os';
import { resolveConfigPath, resolveStateDir } from '../config/paths.js';
import { loadConfig } from '../config/load.js';
import type { AzdbConfig, DatabaseConfig, RoleConfig } from '../config/schema.js';
import { CLOUDS, databaseScope } from '../azure/clouds.js';
import { createCredential } from '../azure/credential.js';
import { TokenCache } from '../azure/token-cache.js';
import { createFileAuditSink, NO_AUDIT, type AuditSink } from '../broker/audit.js';
import { BUILTIN_LOCAL_ROLE, allowedValues, checkAccess, type AllowedValues } from '../access/index.js';
import type { AccessDecision } from '../broker/postgres/session.js';
import { UserError } from '../errors.js';
import type { CliContext } from './main.js';

export interface Runtime {
  config: AzdbConfig;
  stateDir: string;
  tokens: TokenCache;
  /** The Entra scope of database tokens in the configured cloud. */
  databaseScope: string;
  audit: AuditSink;
  roles: RoleConfig[];
  database(name: string): DatabaseConfig;
  allowed(db: DatabaseConfig): AllowedValues;
  authorize(db: DatabaseConfig): (dbUser: string, dbName: string) => AccessDecision;
  close(): Promise<void>;
}

export async function loadRuntime(ctx: CliContext): Promise<Runtime> {
  const file = resolveConfigPath({ flag: ctx.configFlag, env: ctx.env, homedir: homedir() });
  const config = await loadConfig(file);
  for (const warning of config.warnings) ctx.out.warn(`${warning.file}:${warning.line}:${warning.column}: ${warning.message}`);
  const cloud = CLOUDS[config.azure.cloud];
  const tokens = new TokenCache({
    credential: createCredential({
      cloud: config.azure.cloud,
      ...(config.azure.managed_identity_client_id ? { managedIdentityClientId: config.azure.managed_identity_client_id } : {}),
    }, ctx.env),
  });
  const audit = config.broker.audit.path ? createFileAuditSink(config.broker.audit.path, { queries: config.broker.audit.queries }) : NO_AUDIT;
  const roles = selectRoles(config);
  const database = (name: string): DatabaseConfig => {
    const found = config.databases.find((db) => db.name === name);
    if (!found) {
      const names = config.databases.map((db) => db.name).sort();
      throw new UserError(`no database named "${name}" in ${file}`, {
        usage: true,
        hint: names.length > 0 ? `Known databases: ${names.join(', ')}. \`azdb db ls\` lists them with what you may use.` : 'Add it under `databases:` or configure discovery (`azdb config create`).',
      });
    }
    return found;
  };
  return {
    config,
    stateDir: resolveStateDir(ctx.env, homedir(), process.getuid?.()),
    tokens,
    databaseScope: databaseScope(cloud),
    audit,
    roles,
    database,
    allowed: (db) => allowedValues(roles, { name: db.name, labels: db.labels, protocol: db.protocol }),
    authorize: (db) => (dbUser, dbName) => {
      const decision = checkAccess(roles, { name: db.name, labels: db.labels, protocol: db.protocol }, { dbUser, dbName });
      return decision.allowed ? { allowed: true } : { allowed: false, reason: decision.reason };
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
