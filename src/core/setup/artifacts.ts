/**
 * What step 2 hands a person to paste, built from the answers and the identity: the custom role
 * for discovery and its `az` commands; and how the answers' lists are read. Pure. (Step 3's SQL
 * and script: principal-grants.ts, principal-script.ts.)
 */
import { serverTypesFor } from '../../azure/discovery-servers.js';
import type { Protocol } from '../../config/schema.js';
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
