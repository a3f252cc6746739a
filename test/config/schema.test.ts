import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { ConfigSchema } from '../../src/config/schema.js';

const lines = (...text: string[]): string => `${text.join('\n')}\n`;

function errorsOf(text: string): string[] {
  try {
    parseConfig(text, 'azdb.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).errors.map((e) => `${e.line}:${e.column} ${e.message}`);
  }
  throw new Error('expected a ConfigError');
}

describe('ConfigSchema', () => {
  it('holds the defaults of every section', () => {
    expect(v.parse(ConfigSchema, {})).toEqual({
      version: 'v1',
      azure: { cloud: 'AzureCloud' },
      discovery: [],
      databases: [],
      roles: [],
      broker: { listeners: [], audit: { queries: false, on_failure: 'block' }, http: {} },
    });
    expect(v.parse(ConfigSchema, { discovery: [{ types: ['mysql', 'mysql'] }], databases: [{ name: 'a', protocol: 'mysql', uri: '[::1]:3306' }] })).toMatchObject({
      discovery: [{ types: ['mysql'], regions: ['*'], subscriptions: ['*'], resource_groups: ['*'], tags: { '*': '*' } }],
      databases: [{ host: '::1', port: 3306, tls: { mode: 'verify-full' }, labels: {} }],
    });
  });
});

describe('parseConfig: numbers as written', () => {
  it('keeps a label value as written, not as the number YAML reads', () => {
    const config = parseConfig(lines('databases:', '  - {name: a, protocol: postgres, uri: "a:5432", labels: {version: 14.10, zip: 01234}}'), 'a.yaml');
    expect(config.databases[0]?.labels).toEqual({ version: '14.10', zip: '01234' });
  });

  it('reads a port written with a leading zero as its value', () => {
    const config = parseConfig(lines('databases: [{name: a, protocol: postgres, uri: "a:5432"}]', 'broker: {listeners: [{database: a, port: 015432}]}'), 'a.yaml');
    expect(config.broker.listeners[0]?.port).toBe(15432);
  });
});

describe('parseConfig: one run names every problem', () => {
  it('reports each unknown key of one mapping', () => {
    expect(errorsOf(lines('databases:', '  - {name: a, protocol: postgres, uri: "a:5432", colour: red, nmae: b}'))).toEqual([
      '2:50 databases[0]: unknown key "colour". Allowed keys: name, protocol, uri, azure, tls, labels, pool',
      '2:63 databases[0]: unknown key "nmae". Did you mean "name"? Allowed keys: name, protocol, uri, azure, tls, labels, pool',
    ]);
  });

  it('names an undefined role in broker.roles by its own index after an invalid one', () => {
    expect(errorsOf(lines('roles: [{version: v7, kind: role, metadata: {name: dev}}]', 'broker: {roles: ["", dev, ops]}'))).toEqual([
      '2:18 broker.roles[0]: expected a non-empty string, got the string ""',
      '2:27 broker.roles[2]: role "ops" is not defined under roles (defined: dev)',
    ]);
  });

  it('checks the rules between entries even when the entries have other errors', () => {
    expect(
      errorsOf(lines('databases:', '  - {name: a, protocol: pg, uri: "a:1"}', 'broker:', '  listeners:', '    - {database: b, port: 1, host: 0.0.0.0}', '    - {database: a, port: 1, host: 0.0.0.0}')),
    ).toEqual([
      '2:25 databases[0].protocol: expected postgres or mysql, got "pg"',
      '5:18 broker.listeners[0].database: database "b" is not defined under databases; did you mean "a"? (defined: a)',
      '5:36 broker.listeners[0].host: listener on non-loopback host "0.0.0.0" needs a password_file and a cert_file/key_file for client TLS (without them it must listen on 127.0.0.1 or ::1)',
      '6:7 broker.listeners[1]: 0.0.0.0:1 is already used by the listener at line 5',
      '6:36 broker.listeners[1].host: listener on non-loopback host "0.0.0.0" needs a password_file and a cert_file/key_file for client TLS (without them it must listen on 127.0.0.1 or ::1)',
    ]);
  });
});

describe('parseConfig: a shared broker for people (client_auth: entra)', () => {
  const db = 'databases: [{name: a, protocol: postgres, uri: "a:5432"}]';

  it('reads the listener keys with their defaults, and roles that bind people', () => {
    const config = parseConfig(
      lines(
        db,
        'roles:',
        '  - {version: v7, kind: role, metadata: {name: people}, spec: {allow: {db_labels: {"*": "*"}, db_names: ["*"], db_users: ["{{external.upn}}"], subjects: {groups: [g-1]}}, deny: {subjects: {users: [bob@contoso.com]}}}}',
        'broker:',
        '  listeners:',
        '    - {database: a, port: 1, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], upstream_identity: client, disconnect_expired: true}',
        '    - {database: a, port: 2, host: 0.0.0.0, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], cert_file: c.pem, key_file: k.pem}',
        '    - {database: a, port: 3}',
      ),
      'a.yaml',
    );
    expect(config.broker.listeners.map((l) => [l.client_auth, l.allowed_tenants, l.upstream_identity, l.disconnect_expired])).toEqual([
      ['entra', ['72f988bf-86f1-41af-91ab-2d7cd011db47'], 'client', true],
      ['entra', ['72f988bf-86f1-41af-91ab-2d7cd011db47'], 'broker', false],
      ['password', undefined, 'broker', false],
    ]);
    expect(config.roles[0]?.spec.allow.subjects).toEqual({ groups: ['g-1'] });
    expect(config.roles[0]?.spec.deny.subjects).toEqual({ users: ['bob@contoso.com'] });
  });

  it('refuses an entra listener without tenants, off loopback without TLS, with a password file; entra keys without entra; unknown traits', () => {
    expect(
      errorsOf(
        lines(
          db,
          'roles: [{version: v7, kind: role, metadata: {name: r}, spec: {allow: {db_users: ["{{internal.logins}}"]}}}]',
          'broker:',
          '  listeners:',
          '    - {database: a, port: 1, client_auth: entra}',
          '    - {database: a, port: 2, host: 0.0.0.0, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47]}',
          '    - {database: a, port: 3, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], password_file: p}',
          '    - {database: a, port: 4, upstream_identity: client, disconnect_expired: true}',
        ),
      ),
    ).toEqual([
      '2:81 roles[0].spec.allow.db_users: unknown trait "{{internal.logins}}": use {{external.upn}}, {{external.oid}}, {{external.appid}}',
      '5:43 broker.listeners[0].client_auth: client_auth: entra needs allowed_tenants: the Entra tenant ids whose people may sign in',
      '6:36 broker.listeners[1].host: listener on non-loopback host "0.0.0.0" needs a cert_file/key_file for client TLS (without them it must listen on 127.0.0.1 or ::1)',
      '7:43 broker.listeners[2].client_auth: password_file is not used with client_auth: entra (clients log in with their Entra token); remove it',
      '8:7 broker.listeners[3].client_auth: upstream_identity: client, disconnect_expired need client_auth: entra',
    ]);
  });

  it('takes disconnect_expired on pooled listeners too', () => {
    const config = parseConfig(
      lines(
        'databases: [{name: a, protocol: postgres, uri: "a:5432"}, {name: m, protocol: mysql, uri: "m:3306", pool: {}}]',
        'broker:',
        '  listeners:',
        '    - {database: m, port: 1, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], disconnect_expired: true, cert_file: c, key_file: k}',
        '    - {database: a, port: 2, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47], disconnect_expired: true, pool: {}}',
      ),
      'azdb.yaml',
    );
    expect(config.broker.listeners.map((l) => l.disconnect_expired)).toEqual([true, true]);
  });

  it('takes only tenant ids (GUIDs) in allowed_tenants: a token names its tenant by id', () => {
    expect(errorsOf(lines(db, 'broker: {listeners: [{database: a, port: 1, client_auth: entra, allowed_tenants: [contoso.onmicrosoft.com]}]}'))).toEqual([
      '2:82 broker.listeners[0].allowed_tenants: "contoso.onmicrosoft.com" is not a tenant id: give the directory (tenant) id, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 (az account show --query tenantId)',
    ]);
  });

  it('refuses a MySQL entra listener without a certificate, on loopback too', () => {
    expect(
      errorsOf(lines('databases: [{name: m, protocol: mysql, uri: "m:3306"}]', 'broker:', '  listeners:', '    - {database: m, port: 1, client_auth: entra, allowed_tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47]}')),
    ).toEqual([
      '4:43 broker.listeners[0].client_auth: client_auth: entra on a mysql database needs cert_file/key_file: MySQL clients send the token as a clear-text password, which azdb takes only over TLS',
    ]);
  });
});
