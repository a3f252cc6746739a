import { describe, expect, it } from 'vitest';
import { buildConfig, starterConfig } from '../../src/config/generate.js';

describe('starterConfig (azdb config create)', () => {
  it('writes one discovery entry per engine flag, normalized regions, and the guide role for those engines', () => {
    const config = buildConfig(starterConfig({ postgresRegion: 'East US', mysqlRegion: 'westeurope', subscription: 'sub', resourceGroup: 'rg', tags: { env: ['prod', 'stage'], team: ['db'] } }));
    expect(config.discovery.map(({ source: _s, ...m }) => m)).toEqual([
      { types: ['mysql'], regions: ['westeurope'], subscriptions: ['sub'], resource_groups: ['rg'], tags: { env: ['prod', 'stage'], team: 'db' } },
      { types: ['postgres'], regions: ['eastus'], subscriptions: ['sub'], resource_groups: ['rg'], tags: { env: ['prod', 'stage'], team: 'db' } },
    ]);
    expect(config.roles[0]!.spec.allow).toEqual({
      db_labels: { engine: ['Microsoft.DBforMySQL/servers', 'Microsoft.DBforMySQL/flexibleServers', 'Microsoft.DBforPostgreSQL/servers', 'Microsoft.DBforPostgreSQL/flexibleServers'] },
      db_names: ['*'],
      db_users: ['teleport'],
    });
    expect(config.broker.roles).toEqual(['azure-database-access']);
  });

  it('allows only the engine discovered', () => {
    const config = buildConfig(starterConfig({ postgresRegion: 'eastus' }));
    expect(config.discovery).toHaveLength(1);
    expect(config.roles[0]!.spec.allow.db_labels).toEqual({ engine: ['Microsoft.DBforPostgreSQL/servers', 'Microsoft.DBforPostgreSQL/flexibleServers'] });
  });

  it('discovers both engines everywhere without engine flags', () => {
    const config = buildConfig(starterConfig());
    expect(config.discovery.map(({ source: _s, ...m }) => m)).toEqual([{ types: ['postgres', 'mysql'], regions: ['*'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' } }]);
  });
});
