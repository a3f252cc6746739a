/**
 * What `azdb setup` starts from: the config already in use (the file it is about to write when
 * that exists, else AZDB_CONFIG's). From it come the cloud (sovereign clouds included), an ARM
 * endpoint override, the database user its roles use, and the servers it reaches at an address
 * of their own (a private endpoint, a tunnel, a local emulator) rather than their Azure name.
 */
import type { CloudName } from '../../azure/clouds.js';
import { loadConfig } from '../../config/load.js';
import type { DatabaseConfig } from '../../config/schema.js';
import { WILDCARD } from '../../config/schema.js';

export interface SetupBasis {
  cloud: CloudName;
  managedIdentityClientId?: string;
  /** `azure.resource_manager_endpoint` of the config in use. */
  armEndpoint?: string;
  /** Its static databases: how those servers are reached. */
  knownDatabases: DatabaseConfig[];
  /** The first database user its roles name. */
  dbUser?: string;
  /** The file it came from; undefined when no config could be read. */
  source?: string;
}

export async function loadSetupBasis(candidates: readonly string[]): Promise<SetupBasis> {
  for (const file of [...new Set(candidates)]) {
    try {
      const config = await loadConfig(file);
      const dbUser = config.roles.flatMap((role) => role.spec.allow?.db_users ?? []).find((user) => user !== WILDCARD);
      return {
        cloud: config.azure.cloud,
        ...(config.azure.managed_identity_client_id ? { managedIdentityClientId: config.azure.managed_identity_client_id } : {}),
        ...(config.azure.resource_manager_endpoint ? { armEndpoint: config.azure.resource_manager_endpoint } : {}),
        knownDatabases: config.databases,
        ...(dbUser ? { dbUser } : {}),
        source: file,
      };
    } catch {
      // Not there or not valid: the next candidate, else the defaults.
    }
  }
  return { cloud: 'AzureCloud', knownDatabases: [] };
}

/** How the config in use reaches a server ARM lists, if it names one of its own. */
export function knownAddress(basis: SetupBasis, server: Pick<DatabaseConfig, 'name' | 'protocol' | 'azure'>): DatabaseConfig | undefined {
  const serverName = server.azure?.server_name ?? server.name;
  return basis.knownDatabases.find((db) => (db.azure?.server_name ?? db.name) === serverName && db.protocol === server.protocol);
}
