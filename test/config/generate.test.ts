import { describe, expect, it } from 'vitest';
import { buildConfig, DEFAULT_HEADER, renderConfig } from '../../src/config/generate.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { AzdbConfig, ConfigInput, Protocol } from '../../src/config/schema.js';

/** A config without what depends on where it was written. */
function portable(config: AzdbConfig): unknown {
  return JSON.parse(
    JSON.stringify({ ...config, warnings: config.warnings.map((w) => w.path) }, (key, value: unknown) =>
      key === 'source' ? undefined : value,
    ),
  );
}

const RICH: ConfigInput = {
  version: 'v1',
  azure: {
    cloud: 'AzureChinaCloud',
    resource_manager_endpoint: 'https://management.chinacloudapi.cn',
    managed_identity_client_id: '00000000-0000-0000-0000-000000000001',
  },
  discovery: [
    { types: ['postgres', 'mysql'], regions: ['eastus', 'westeurope'] },
    { types: ['mysql'], subscriptions: ['sub-1'], resource_groups: ['rg'], tags: { env: ['prod', 'staging'], team: '^db-.*$' } },
  ],
  databases: [
    {
      name: 'orders',
      protocol: 'postgres',
      uri: 'orders.postgres.database.azure.com:5432',
      azure: { server_kind: 'single', server_name: 'orders' },
      tls: { mode: 'verify-full', ca_file: '/etc/azdb/ca.pem' },
      // Values YAML would read as other types unless quoted.
      labels: { version: '14', enabled: 'true', empty: '', star: '*', 'team/name': 'a: b' },
    },
    { name: 'v6', protocol: 'mysql', uri: '[::1]:3306', tls: { mode: 'insecure', server_name: 'localhost' } },
  ],
  roles: [
    {
      metadata: { name: 'azure-database-access' },
      spec: {
        allow: {
          db_labels: {
            engine: [
              'Microsoft.DBforMySQL/servers',
              'Microsoft.DBforMySQL/flexibleServers',
              'Microsoft.DBforPostgreSQL/servers',
              'Microsoft.DBforPostgreSQL/flexibleServers',
            ],
          },
          db_names: ['*'],
          db_users: ['teleport'],
        },
        deny: { db_users: ['postgres'] },
      },
    },
    { version: 'v7', kind: 'role', metadata: { name: 'nothing' } },
  ],
  broker: {
    roles: ['azure-database-access', 'nothing'],
    listeners: [
      { database: 'orders', port: 15432, db_user: 'teleport', db_name: 'orders' },
      { database: 'v6', host: '::1', port: 13306, password_file: '/run/pw', cert_file: 'c.pem', key_file: 'k.pem' },
    ],
    audit: { path: '/var/log/azdb.jsonl', queries: true, on_failure: 'drop' },
    http: { address: '[::1]:9464' },
  },
};

describe('renderConfig', () => {
  it('starts with the comment header', () => {
    const text = renderConfig({});
    expect(text.startsWith(DEFAULT_HEADER.split('\n').map((line) => `# ${line}`).join('\n'))).toBe(true);
    expect(renderConfig({}, { header: 'made by the demo\n\nline three' }).split('\n').slice(0, 4)).toEqual([
      '# made by the demo',
      '',
      '# line three',
      '',
    ]);
  });

  it('parses back to the same normalized config', () => {
    const first = parseConfig(renderConfig(RICH), 'a.yaml');
    const again = parseConfig(renderConfig(first), 'a.yaml');
    expect(portable(again)).toEqual(portable(first));
    expect(first.databases[0]?.labels).toEqual({ version: '14', enabled: 'true', empty: '', star: '*', 'team/name': 'a: b' });
    expect(first.databases[1]).toMatchObject({ host: '::1', port: 3306, tls: { mode: 'insecure', server_name: 'localhost' } });
    expect(first.discovery[1]?.tags).toEqual({ env: ['prod', 'staging'], team: '^db-.*$' });
    expect(first.roles[0]?.spec.deny).toEqual({ db_users: ['postgres'] });
    expect(first.broker.http.address).toBe('[::1]:9464');
    expect(first.warnings.map((w) => w.path)).toEqual(['databases[1].tls.mode']);
  });

  it('is stable: a normalized config renders to text that parses back to itself', () => {
    const normalized = renderConfig(parseConfig(renderConfig(RICH), 'a.yaml'));
    expect(renderConfig(parseConfig(normalized, 'a.yaml'))).toBe(normalized);
    // Defaults are written out once applied.
    expect(normalized).toContain('      host: 127.0.0.1\n');
  });

  it('writes what `azdb config create` needs in the documented style', () => {
    const text = renderConfig({
      discovery: [{ types: ['postgres'], regions: ['eastus'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' } }],
    });
    expect(text).toContain('version: v1\n');
    expect(text).toContain('  cloud: AzureCloud\n');
    expect(text).toContain('  - types: [postgres]\n');
    expect(text).toContain('    regions: [eastus]\n');
    expect(text).toContain('    tags: {"*": "*"}\n');
    expect(text).not.toContain('databases:');
    expect(text).not.toContain('broker:');
    const config = parseConfig(text, 'new.yaml');
    expect(config.discovery[0]).toMatchObject({ types: ['postgres'], regions: ['eastus'], subscriptions: ['*'] });
  });

  it('keeps an empty broker.roles (nothing allowed) apart from none (allow-all)', () => {
    expect(parseConfig(renderConfig({ broker: { roles: [] } }), 'a.yaml').broker.roles).toEqual([]);
    expect(parseConfig(renderConfig({ broker: {} }), 'a.yaml').broker.roles).toBeUndefined();
  });

  it('leaves out defaults that only add noise', () => {
    const text = renderConfig({
      databases: [{ name: 'a', protocol: 'postgres', uri: 'a:5432', tls: { mode: 'verify-full' }, labels: {} }],
      broker: { audit: { queries: false }, listeners: [] },
    });
    expect(text).not.toContain('tls');
    expect(text).not.toContain('labels');
    expect(text).not.toContain('broker');
  });
});

describe('buildConfig', () => {
  it('returns a validated config', () => {
    const config = buildConfig({ databases: [{ name: 'a', protocol: 'mysql', uri: 'a:3306' }] });
    expect(config.databases[0]).toMatchObject({ name: 'a', host: 'a', port: 3306, tls: { mode: 'verify-full' } });
  });

  it('rejects what a file could not say', () => {
    expect(() => buildConfig({ databases: [{ name: 'a', protocol: 'oracle' as Protocol, uri: 'a:1521' }] })).toThrow(ConfigError);
  });
});

describe('renderConfig: a shared broker for people', () => {
  it('writes the client_auth keys and subjects so they read back the same, defaults left out', () => {
    const text = renderConfig({
      databases: [{ name: 'orders', protocol: 'postgres', uri: 'orders:5432' }],
      roles: [{ metadata: { name: 'people' }, spec: { allow: { db_labels: { '*': '*' }, db_names: ['*'], db_users: ['{{external.upn}}'], subjects: { groups: ['g-1'] } }, deny: { subjects: { users: ['bob@contoso.com'] } } } }],
      broker: {
        listeners: [
          { database: 'orders', port: 1, client_auth: 'entra', allowed_tenants: ['72f988bf-86f1-41af-91ab-2d7cd011db47'], upstream_identity: 'client', disconnect_expired: true },
          { database: 'orders', port: 2, client_auth: 'password', upstream_identity: 'broker', disconnect_expired: false },
        ],
      },
    });
    expect(text).not.toContain('client_auth: password');
    const config = parseConfig(text, 'azdb.yaml');
    expect(config.broker.listeners.map((l) => [l.client_auth, l.allowed_tenants, l.upstream_identity, l.disconnect_expired])).toEqual([
      ['entra', ['72f988bf-86f1-41af-91ab-2d7cd011db47'], 'client', true],
      ['password', undefined, 'broker', false],
    ]);
    expect(config.roles[0]?.spec).toMatchObject({ allow: { subjects: { groups: ['g-1'] }, db_users: ['{{external.upn}}'] }, deny: { subjects: { users: ['bob@contoso.com'] } } });
  });
});
