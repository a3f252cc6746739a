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
