/** What `azdb setup` starts from: the config in use, with its cloud, ARM endpoint and server addresses. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownAddress, loadSetupBasis } from '../../src/core/setup/basis.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'azdb-setup-basis-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const GOV_CONFIG = `version: v1
azure:
  cloud: AzureUSGovernment
  resource_manager_endpoint: https://127.0.0.1:4443
databases:
  - name: orders
    protocol: postgres
    uri: 127.0.0.1:15432
    azure: {server_kind: flexible, server_name: orders}
roles:
  - version: v7
    kind: role
    metadata: {name: dev}
    spec:
      allow: {db_labels: {'*': '*'}, db_users: ['*', app-user], db_names: ['*']}
broker:
  roles: [dev]
`;

describe('the setup basis', () => {
  it('takes the cloud, the ARM endpoint, the database user and the static addresses of the first readable config', async () => {
    const file = join(dir, 'gov.yaml');
    await writeFile(file, GOV_CONFIG);
    const basis = await loadSetupBasis([join(dir, 'missing.yaml'), file]);
    expect(basis).toMatchObject({ cloud: 'AzureUSGovernment', armEndpoint: 'https://127.0.0.1:4443', dbUser: 'app-user', source: file });
    expect(knownAddress(basis, { name: 'orders', protocol: 'postgres', azure: { server_kind: 'flexible', server_name: 'orders' } })?.uri).toBe('127.0.0.1:15432');
    expect(knownAddress(basis, { name: 'orders', protocol: 'mysql', azure: { server_kind: 'flexible', server_name: 'orders' } })).toBeUndefined();
    expect(knownAddress(basis, { name: 'inventory', protocol: 'postgres' })).toBeUndefined();
  });

  it('falls back to the public cloud and no addresses when no config can be read', async () => {
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'version: v9\n');
    expect(await loadSetupBasis([join(dir, 'missing.yaml'), broken])).toEqual({ cloud: 'AzureCloud', knownDatabases: [] });
  });
});
