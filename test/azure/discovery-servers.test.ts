import { describe, expect, it } from 'vitest';
import { normalizeRegion, readServer, serverTypeInfo, toDatabases, matchesFilters, type ListedServer } from '../../src/azure/discovery-servers.js';

const SOURCE = { file: 'azdb.yaml', line: 1, column: 1 };
const PG_FLEX = serverTypeInfo('Microsoft.DBforPostgreSQL/flexibleServers')!;
const PG_SINGLE = serverTypeInfo('microsoft.dbforpostgresql/SERVERS')!;
const MY_FLEX = serverTypeInfo('Microsoft.DBforMySQL/flexibleServers')!;

function listed(name: string, type = PG_FLEX, overrides: Partial<ListedServer> = {}): ListedServer {
  return {
    id: `/subscriptions/s1/resourceGroups/rg/providers/${type.type}/${name}`,
    name,
    type,
    location: 'eastus',
    tags: {},
    version: '16',
    state: 'Ready',
    fqdn: `${name}.example`,
    replicationRole: undefined,
    subscriptionId: 's1',
    resourceGroup: 'rg',
    ...overrides,
  };
}

describe('normalizeRegion', () => {
  it.each([
    ['East US', 'eastus'],
    ['eastus', 'eastus'],
    ['West Europe', 'westeurope'],
    ['  East  US 2 ', 'eastus2'],
    ['EASTUS', 'eastus'],
  ])('%j → %j', (input, output) => expect(normalizeRegion(input)).toBe(output));
});

describe('readServer', () => {
  it('reads state from `state` on flexible and `userVisibleState` on single servers', () => {
    const id = '/subscriptions/S/resourceGroups/RG-A/providers/Microsoft.DBforPostgreSQL/servers/old';
    const single = readServer({ id, name: 'old', location: 'East US', tags: { a: 'b', n: 1 }, properties: { userVisibleState: 'Ready', state: 'Stopped', version: '11', fullyQualifiedDomainName: 'old.x' } }, PG_SINGLE);
    expect(single).toMatchObject({ state: 'Ready', version: '11', fqdn: 'old.x', subscriptionId: 'S', resourceGroup: 'RG-A', tags: { a: 'b' } });
    const flex = readServer({ id: id.replace('servers', 'flexibleServers'), name: 'old', properties: { userVisibleState: 'Ready', state: 'Stopped' } }, PG_FLEX);
    expect(flex?.state).toBe('Stopped');
  });

  it('ignores items that are not servers', () => {
    expect(readServer(null, PG_FLEX)).toBeUndefined();
    expect(readServer({ name: 'x' }, PG_FLEX)).toBeUndefined();
    expect(readServer({ id: '/not/an/arm/id', name: 'x' }, PG_FLEX)).toBeUndefined();
  });
});

describe('toDatabases', () => {
  it('suffixes the engine only on a clash between engines, and stays unique otherwise', () => {
    const dbs = toDatabases(
      [listed('a'), listed('a', MY_FLEX), listed('b'), listed('c'), listed('c', PG_FLEX, { id: '/subscriptions/s2/resourceGroups/rg2/providers/x/c', resourceGroup: 'RG2', subscriptionId: 's2' })],
      SOURCE,
    );
    expect(dbs.map((d) => d.name)).toEqual(['a-mysql', 'a-postgres', 'b', 'c', 'c-rg2']);
    expect(dbs.find((d) => d.name === 'a-mysql')).toMatchObject({ uri: 'a.example:3306', azure: { server_name: 'a' }, discovered: { serverName: 'a' } });
  });

  it('lets the Azure labels win over tags of the same name; replication-role only for MySQL flexible', () => {
    const [pg] = toDatabases([listed('a', PG_FLEX, { tags: { region: 'mars', engine: 'x', keep: 'y' }, location: 'East US' })], SOURCE);
    expect(pg!.labels).toEqual({ region: 'eastus', engine: 'Microsoft.DBforPostgreSQL/flexibleServers', keep: 'y', 'engine-version': '16', 'resource-group': 'rg', 'subscription-id': 's1' });
    const [my] = toDatabases([listed('m', MY_FLEX)], SOURCE);
    expect(my!.labels['replication-role']).toBe('None');
  });
});

describe('matchesFilters', () => {
  const base = { regions: ['*'], resource_groups: ['*'], tags: { '*': '*' } };
  it.each([
    [{ ...base, regions: ['East US'] }, true],
    [{ ...base, regions: ['westus'] }, false],
    [{ ...base, resource_groups: ['RG'] }, true],
    [{ ...base, resource_groups: ['other'] }, false],
    [{ ...base, tags: { env: 'prod' } }, true],
    [{ ...base, tags: { env: ['dev', 'prod'] } }, true],
    [{ ...base, tags: { env: '^pro.$' } }, true],
    [{ ...base, tags: { env: 'dev' } }, false],
    [{ ...base, tags: {} }, false],
  ])('%j → %s', (matcher, expected) => {
    expect(matchesFilters(listed('a', PG_FLEX, { tags: { env: 'prod' } }), matcher)).toBe(expected);
  });
});
