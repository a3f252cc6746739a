/**
 * The Azure clouds azdb knows: where Entra ID signs in, where ARM lives, and which audience the
 * open-source relational databases (PostgreSQL/MySQL, "ossrdbms") accept tokens for.
 */
export type CloudName = 'AzureCloud' | 'AzureUSGovernment' | 'AzureChinaCloud';

export interface Cloud {
  name: CloudName;
  authorityHost: string;
  resourceManagerEndpoint: string;
  /** Audience (resource) of database tokens; the scope is this plus `/.default`. */
  databaseResource: string;
  /** DNS suffixes of server FQDNs, for hints and discovery. */
  postgresSuffix: string;
  mysqlSuffix: string;
}

export const CLOUDS: Readonly<Record<CloudName, Cloud>> = {
  AzureCloud: {
    name: 'AzureCloud',
    authorityHost: 'https://login.microsoftonline.com',
    resourceManagerEndpoint: 'https://management.azure.com',
    databaseResource: 'https://ossrdbms-aad.database.windows.net',
    postgresSuffix: 'postgres.database.azure.com',
    mysqlSuffix: 'mysql.database.azure.com',
  },
  AzureUSGovernment: {
    name: 'AzureUSGovernment',
    authorityHost: 'https://login.microsoftonline.us',
    resourceManagerEndpoint: 'https://management.usgovcloudapi.net',
    databaseResource: 'https://ossrdbms-aad.database.usgovcloudapi.net',
    postgresSuffix: 'postgres.database.usgovcloudapi.net',
    mysqlSuffix: 'mysql.database.usgovcloudapi.net',
  },
  AzureChinaCloud: {
    name: 'AzureChinaCloud',
    authorityHost: 'https://login.chinacloudapi.cn',
    resourceManagerEndpoint: 'https://management.chinacloudapi.cn',
    databaseResource: 'https://ossrdbms-aad.database.chinacloudapi.cn',
    postgresSuffix: 'postgres.database.chinacloudapi.cn',
    mysqlSuffix: 'mysql.database.chinacloudapi.cn',
  },
};

export function isCloudName(value: string): value is CloudName {
  return Object.hasOwn(CLOUDS, value);
}

/**
 * Where Entra ID signs in: `AZURE_AUTHORITY_HOST` when set, as every Azure SDK reads it, else the
 * cloud's. Set but empty counts as set, as @azure/identity takes it (`??`, no trimming).
 */
export function authorityHost(cloud: Cloud, env: NodeJS.ProcessEnv = process.env): string {
  return env.AZURE_AUTHORITY_HOST ?? cloud.authorityHost;
}

export function databaseScope(cloud: Cloud): string {
  return `${cloud.databaseResource}/.default`;
}

export function resourceManagerScope(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/.default`;
}
