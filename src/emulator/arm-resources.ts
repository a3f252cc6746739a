/**
 * The JSON that Azure Resource Manager returns for subscriptions and for Azure Database for
 * PostgreSQL / MySQL servers (flexible and single), built from the emulator's plain description of
 * a server. Pure: no I/O. Shapes follow the REST API reference ("Servers - List",
 * "Subscriptions - List"): single servers report `userVisibleState`, flexible servers `state`;
 * MySQL flexible servers carry `replicationRole` None | Source | Replica; `location` is passed
 * through as given, since ARM returns either "eastus" or the display form "East US".
 */

export type EmulatedServerType =
  | 'Microsoft.DBforPostgreSQL/flexibleServers'
  | 'Microsoft.DBforPostgreSQL/servers'
  | 'Microsoft.DBforMySQL/flexibleServers'
  | 'Microsoft.DBforMySQL/servers';

export const SERVER_TYPES: readonly EmulatedServerType[] = [
  'Microsoft.DBforPostgreSQL/flexibleServers',
  'Microsoft.DBforPostgreSQL/servers',
  'Microsoft.DBforMySQL/flexibleServers',
  'Microsoft.DBforMySQL/servers',
];

export interface EmulatedServer {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  type: EmulatedServerType;
  /** As ARM would return it: "eastus" or "East US". */
  location: string;
  tags: Record<string, string>;
  /** Engine version: "16", "11", "8.0.21", "5.7". */
  version: string;
  /** "Ready", "Stopped", "Disabled", "Updating", ... */
  state: string;
  fqdn: string;
  /** MySQL flexible: None | Source | Replica; PostgreSQL flexible: Primary | AsyncReplica. */
  replicationRole?: string;
}

export interface EmulatedSubscription {
  subscriptionId: string;
  displayName: string;
  /** @default 'Enabled' */
  state?: 'Enabled' | 'Warned' | 'PastDue' | 'Disabled' | 'Deleted';
}

export type Json = Record<string, unknown>;

const ADMIN_LOGIN = 'azdbadmin';
const EARLIEST_RESTORE_DATE = '2024-01-01T00:00:00.0000000+00:00';

export function serverResourceId(server: EmulatedServer): string {
  return `/subscriptions/${server.subscriptionId}/resourceGroups/${server.resourceGroup}/providers/${server.type}/${server.name}`;
}

export function isFlexible(type: EmulatedServerType): boolean {
  return type.endsWith('/flexibleServers');
}

/** A server as `GET .../providers/<type>` lists it. */
export function serverResource(server: EmulatedServer, tenantId: string): Json {
  return {
    sku: sku(server.type),
    properties: serverProperties(server, tenantId),
    location: server.location,
    tags: { ...server.tags },
    id: serverResourceId(server),
    name: server.name,
    type: server.type,
  };
}

function sku(type: EmulatedServerType): Json {
  if (isFlexible(type)) return { name: 'Standard_D2ds_v4', tier: 'GeneralPurpose' };
  return { name: 'GP_Gen5_2', tier: 'GeneralPurpose', family: 'Gen5', capacity: 2 };
}

function serverProperties(server: EmulatedServer, tenantId: string): Json {
  switch (server.type) {
    case 'Microsoft.DBforPostgreSQL/flexibleServers':
      return {
        administratorLogin: ADMIN_LOGIN,
        version: server.version,
        state: server.state,
        fullyQualifiedDomainName: server.fqdn,
        availabilityZone: '1',
        storage: { storageSizeGB: 128, autoGrow: 'Disabled', tier: 'P10', iops: 500 },
        authConfig: { activeDirectoryAuth: 'Enabled', passwordAuth: 'Disabled', tenantId },
        dataEncryption: { type: 'SystemManaged' },
        backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled', earliestRestoreDate: EARLIEST_RESTORE_DATE },
        network: { publicNetworkAccess: 'Enabled' },
        highAvailability: { mode: 'Disabled', state: 'NotEnabled' },
        maintenanceWindow: { customWindow: 'Disabled', dayOfWeek: 0, startHour: 0, startMinute: 0 },
        replicationRole: server.replicationRole ?? 'Primary',
        replicaCapacity: 5,
      };
    case 'Microsoft.DBforMySQL/flexibleServers':
      return {
        administratorLogin: ADMIN_LOGIN,
        version: server.version,
        state: server.state,
        fullyQualifiedDomainName: server.fqdn,
        availabilityZone: '1',
        storage: { storageSizeGB: 20, iops: 360, autoGrow: 'Enabled', autoIoScaling: 'Disabled', storageSku: 'Premium_LRS' },
        dataEncryption: { type: 'SystemManaged' },
        backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled', earliestRestoreDate: EARLIEST_RESTORE_DATE },
        network: { publicNetworkAccess: 'Enabled' },
        highAvailability: { mode: 'Disabled', state: 'NotEnabled' },
        maintenanceWindow: { customWindow: 'Disabled', dayOfWeek: 0, startHour: 0, startMinute: 0 },
        replicationRole: server.replicationRole ?? 'None',
        replicaCapacity: 10,
      };
    case 'Microsoft.DBforPostgreSQL/servers':
    case 'Microsoft.DBforMySQL/servers':
      return {
        administratorLogin: ADMIN_LOGIN,
        storageProfile: { storageMB: 5120, backupRetentionDays: 7, geoRedundantBackup: 'Disabled', storageAutogrow: 'Enabled' },
        version: server.version,
        sslEnforcement: 'Enabled',
        minimalTlsVersion: 'TLS1_2',
        userVisibleState: server.state,
        fullyQualifiedDomainName: server.fqdn,
        earliestRestoreDate: EARLIEST_RESTORE_DATE,
        replicationRole: server.replicationRole ?? 'None',
        masterServerId: '',
        replicaCapacity: 5,
        publicNetworkAccess: 'Enabled',
        privateEndpointConnections: [],
        infrastructureEncryption: 'Disabled',
        byokEnforcement: 'Disabled',
      };
  }
}

/** A subscription as `GET /subscriptions` lists it. */
export function subscriptionResource(subscription: EmulatedSubscription, tenantId: string): Json {
  return {
    id: `/subscriptions/${subscription.subscriptionId}`,
    authorizationSource: 'RoleBased',
    managedByTenants: [],
    subscriptionId: subscription.subscriptionId,
    tenantId,
    displayName: subscription.displayName,
    state: subscription.state ?? 'Enabled',
    subscriptionPolicies: {
      locationPlacementId: 'Public_2014-09-01',
      quotaId: 'PayAsYouGo_2014-09-01',
      spendingLimit: 'Off',
    },
  };
}
