/**
 * What the setup steps hand a person to paste, built from the answers and the identity: the
 * custom role for discovery and its `az` commands, the database-user SQL and how to run it. Pure.
 */
import { serverTypesFor } from '../../azure/discovery-servers.js';
import { upstreamLoginUser } from '../../broker/target.js';
import type { DatabaseConfig, Protocol } from '../../config/schema.js';
import { createPrincipalSql } from '../../diagnostics/principal-sql.js';
import type { TokenClaims } from '../../azure/token-claims.js';
import type { SetupAnswers } from '../api/setup.js';

export const ROLE_NAME = 'azdb-discovery';
export const SUBSCRIPTION_READ = 'Microsoft.Resources/subscriptions/read';

export function parseList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function chosenTypes(answers: SetupAnswers): Protocol[] {
  const types = parseList(answers.types.toLowerCase()).filter((t): t is Protocol => t === 'postgres' || t === 'mysql');
  return types.length > 0 ? [...new Set(types)] : ['postgres', 'mysql'];
}

/** The custom role of the guide's step 2 for the types and subscriptions chosen. Pure. */
export function discoveryRole(types: readonly Protocol[], subscriptions: readonly string[]): Record<string, unknown> {
  const actions = serverTypesFor(types).map((t) => t.permission).sort();
  return {
    properties: {
      roleName: ROLE_NAME,
      description: 'Allows azdb to discover Azure Database for MySQL and PostgreSQL servers',
      assignableScopes: subscriptions.map((s) => `/subscriptions/${s}`),
      permissions: [{ actions: [...actions, SUBSCRIPTION_READ], notActions: [], dataActions: [], notDataActions: [] }],
    },
  };
}

/** `az` commands that create the role and assign it to the identity. Pure. */
export function roleCommands(roleFile: string, clientId: string, subscriptions: readonly string[]): string[] {
  return [
    `az role definition create --role-definition @${roleFile}`,
    ...subscriptions.map((s) => `az role assignment create --assignee ${clientId} --role ${ROLE_NAME} --scope /subscriptions/${s}`),
  ];
}

/** The seed's SQL for one server, the identity's ids filled in. Pure. */
export function principalSql(protocol: Protocol, dbUser: string, claims: TokenClaims | undefined): string[] {
  if (protocol === 'postgres') {
    return [
      '-- As the server\'s Microsoft Entra admin, in the postgres database.',
      '-- Only for an identity of another tenant: SET aad_validate_oids_in_tenant = off;',
      createPrincipalSql('postgres', dbUser, claims),
    ];
  }
  return [
    '-- As the server\'s Microsoft Entra admin.',
    '-- Only for an identity of another tenant: SET aad_auth_validate_oids_in_tenant = OFF;',
    createPrincipalSql('mysql', dbUser, claims),
    `GRANT ALL ON \`%\`.* TO '${dbUser.replace(/'/g, "''")}'@'%';`,
  ];
}

/** How to run the SQL yourself, as the guide does (token from the Azure CLI as the password). */
export function adminCommand(db: Pick<DatabaseConfig, 'protocol' | 'host' | 'port' | 'azure'>, admin: string, sqlFile: string): string {
  const user = upstreamLoginUser({ serverKind: db.azure?.server_kind ?? 'flexible', ...(db.azure?.server_name ? { serverName: db.azure.server_name } : {}) }, admin);
  const token = 'TOKEN=$(az account get-access-token --resource-type oss-rdbms --output tsv --query accessToken)';
  if (db.protocol === 'postgres') {
    return `${token}; PGPASSWORD=$TOKEN psql "host=${db.host} port=${db.port} user=${user} sslmode=require dbname=postgres" -f ${sqlFile}`;
  }
  // MYSQL_PWD, not --password: a command line is visible to every user of the machine (ps).
  return `${token}; MYSQL_PWD=$TOKEN mysql -h ${db.host} -P ${db.port} -u ${user} --enable-cleartext-plugin < ${sqlFile}`;
}

